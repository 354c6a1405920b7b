//! The victim of the crash tests (tests/tests/it/crash.rs): writes to a database and reports
//! every acknowledged write on stdout until the parent kills it.
//!
//! `gnnrec-crash-child add DB` adds edges u{i%97} -click-> i{i} forever, printing `ack i`
//! after each returns; `gnnrec-crash-child load DB FILE` runs one LOAD, prints `loaded`, then
//! waits to be killed; `gnnrec-crash-child rounds DB` (on a trained database) turns the
//! worker to rounds of 5 edges and adds likes u{i%97} -> i{i%50} forever, printing `ack i`,
//! so that the kill lands in the middle of rounds.

use std::io::Write;
use std::process::ExitCode;

use gnnrec_engine::{Database, Interaction, Options};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gnnrec-crash-child: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (mode, db_path) = match args {
        [mode, db, ..] => (mode.as_str(), db),
        _ => return Err("usage: gnnrec-crash-child add DB | load DB FILE | rounds DB".into()),
    };
    let db = Database::open(db_path, Options::default())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    match (mode, args.get(2)) {
        ("add", None) => {
            for i in 0u64.. {
                db.add(&Interaction::new(format!("u{}", i % 97), "click", format!("i{i}")).at(i as i64))?;
                writeln!(out, "ack {i}")?;
                out.flush()?;
            }
            Ok(())
        }
        ("rounds", None) => {
            db.execute("SET worker = on; SET worker.batch = 5; SET worker.interval = 10ms")?;
            for i in 0u64.. {
                let (user, item) = (format!("u{}", i % 97), format!("i{}", i % 50));
                db.add(&Interaction::new(user, "like", item).at(1_800_000_000 + i as i64))?;
                writeln!(out, "ack {i}")?;
                out.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(())
        }
        ("load", Some(csv)) => {
            db.load_csv(csv, |_| {})?;
            writeln!(out, "loaded")?;
            out.flush()?;
            std::thread::sleep(std::time::Duration::from_secs(600));
            Ok(())
        }
        _ => Err(format!("unknown mode '{mode}'").into()),
    }
}

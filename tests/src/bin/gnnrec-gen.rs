//! `gnnrec-gen`: writes seeded synthetic interactions as CSV that gnnrec `LOAD` reads.
//!
//! Sizes not given on the command line follow `SynthConfig::for_edges`.

use std::fs::File;
use std::io;
use std::process::ExitCode;
use std::time::Instant;

use gnnrec_tests::synth::{default_communities, write_csv, SynthConfig};

const USAGE: &str = "\
gnnrec-gen: seeded synthetic e-commerce interactions (user,item,type,weight,timestamp CSV)

usage: gnnrec-gen --edges N [options]

options:
  --edges N        number of rows to write (required; `_` separators allowed)
  --users U        number of users (default: N/20, at least 50)
  --items I        number of items (default: N/100, at least 20)
  --communities C  number of taste communities (default: items/25, 2 to 32)
  --seed S         random seed (default: 42); the same options give the same bytes
  --days D         length of the time span in days (default: 30)
  --start TS       first timestamp, unix seconds (default: 1700000000)
  --out FILE       write to FILE instead of stdout
  -h, --help       print this help
";

/// What the command line asked for.
struct Args {
    cfg: SynthConfig,
    out: Option<String>,
}

/// Parses the arguments; `Ok(None)` means help was asked for.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut edges = None;
    let (mut users, mut items, mut communities) = (None, None, None);
    let (mut seed, mut days, mut start, mut out) = (42, None, None, None);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value =
            || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--edges" => edges = Some(number(&flag, &value()?)?),
            "--users" => users = Some(number(&flag, &value()?)?),
            "--items" => items = Some(number(&flag, &value()?)?),
            "--communities" => communities = Some(number(&flag, &value()?)?),
            "--seed" => seed = number(&flag, &value()?)?,
            "--days" => days = Some(number(&flag, &value()?)?),
            "--start" => start = Some(number(&flag, &value()?)?),
            "--out" => out = Some(value()?),
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    let edges = edges.ok_or("--edges is required")?;
    let mut cfg = SynthConfig::for_edges(edges, seed);
    if let Some(users) = users {
        cfg.users = users;
    }
    if let Some(items) = items {
        cfg.items = items;
        // Keep the default communities consistent with the chosen catalogue size.
        cfg.communities = default_communities(items);
    }
    if let Some(communities) = communities {
        cfg.communities = communities;
    }
    if let Some(days) = days {
        cfg.days = days;
    }
    if let Some(start) = start {
        cfg.start_ts = start;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(Some(Args { cfg, out }))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.replace('_', "").parse().map_err(|_| format!("{flag}: `{text}` is not a valid number"))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("gnnrec-gen: {message}\ntry `gnnrec-gen --help`");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let (result, target) = match &args.out {
        Some(path) => (File::create(path).and_then(|file| write_csv(&args.cfg, file)), path.as_str()),
        None => (write_csv(&args.cfg, io::stdout().lock()), "stdout"),
    };
    match result {
        Ok(summary) => {
            eprintln!(
                "gnnrec-gen: {summary} to {target} in {:.2} s (seed {})",
                started.elapsed().as_secs_f64(),
                args.cfg.seed
            );
            ExitCode::SUCCESS
        }
        // A closed pipe (`gnnrec-gen ... | head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gnnrec-gen: writing {target}: {e}");
            ExitCode::from(2)
        }
    }
}

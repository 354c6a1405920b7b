//! gnnrec-shell: the interactive shell and script runner of gnnrec.
//!
//! `main` only collects the process's arguments and streams and calls [`run`], so that tests
//! can drive the whole shell in-process. Statements come from the terminal (through a line
//! editor), from piped standard input, or from `-f FILE` and `-c TEXT`; all of them go through
//! one runner in `script.rs`.

mod args;
mod meta;
mod progress;
mod render;
mod repl;
mod script;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};

use gnnrec_engine::{Database, Options};

use crate::args::{Command, Source, USAGE};
use crate::script::{io_message, Flow, Runner};

/// The process's standard streams, and which of them are terminals.
pub struct Streams<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    /// Without a terminal on stdin there is no line editor: stdin is read as a script.
    pub stdin_is_terminal: bool,
    /// `LOAD` draws a progress bar only on a terminal.
    pub stderr_is_terminal: bool,
}

/// Runs the shell with `args` (without the program name) and returns the exit status:
/// 0 ok, 1 a statement failed, 2 a usage or I/O error.
pub fn run(args: &[String], streams: Streams<'_>) -> i32 {
    let Streams { stdin, stdout, stderr, stdin_is_terminal, stderr_is_terminal } = streams;
    let args = match args::parse(args) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => return print(stdout, USAGE),
        Ok(Command::Version) => return print(stdout, concat!("gnnrec-shell ", env!("CARGO_PKG_VERSION"))),
        Err(message) => {
            let _ = writeln!(stderr, "gnnrec-shell: {message}\ntry 'gnnrec-shell --help'");
            return 2;
        }
    };
    let interactive = args.sources.is_empty() && stdin_is_terminal;

    // Scripts are opened before the database, so that a misspelt file name creates nothing.
    let mut scripts = Vec::new();
    for source in &args.sources {
        let script = match source {
            Source::File(path) if path.as_os_str() == "-" => Script::Stdin,
            Source::File(path) => match File::open(path) {
                Ok(file) => Script::File(path.display().to_string(), BufReader::new(file)),
                Err(e) => {
                    let _ = writeln!(
                        stderr,
                        "gnnrec-shell: cannot read '{}': {}",
                        path.display(),
                        io_message(&e)
                    );
                    return 2;
                }
            },
            Source::Text(text) => Script::Text(text),
        };
        scripts.push(script);
    }

    let temp_dir;
    let path = match args.db_path {
        Some(path) => path,
        None => {
            temp_dir = match tempfile::Builder::new().prefix("gnnrec-shell-").tempdir() {
                Ok(dir) => dir,
                Err(e) => {
                    let _ = writeln!(
                        stderr,
                        "gnnrec-shell: cannot create a temporary database: {}",
                        io_message(&e)
                    );
                    return 2;
                }
            };
            if interactive {
                let _ = writeln!(
                    stderr,
                    "using a temporary database, removed on exit; give a path to keep one: gnnrec-shell DB_PATH"
                );
            }
            temp_dir.path().join("db")
        }
    };
    let db = match Database::open(&path, Options::default()) {
        Ok(db) => db,
        Err(e) => {
            let _ = writeln!(stderr, "gnnrec-shell: {e}");
            return 2;
        }
    };

    let mut runner = Runner::new(&db, stdout, stderr, args.json, args.keep_going, stderr_is_terminal);
    let mut status =
        if interactive { repl::run(&mut runner) } else { run_scripts(&mut runner, scripts, stdin) };
    if let Err(e) = db.close() {
        let _ = writeln!(stderr, "gnnrec-shell: {e}");
        status = 2;
    }
    if let Err(e) = stdout.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(stderr, "gnnrec-shell: cannot write the output: {}", io_message(&e));
            status = 2;
        }
    }
    status
}

/// A script to run, opened.
enum Script<'t> {
    Stdin,
    File(String, BufReader<File>),
    Text(&'t str),
}

/// Runs the scripts one after the other, standard input when there are none, and returns
/// the exit status.
fn run_scripts(runner: &mut Runner<'_>, scripts: Vec<Script<'_>>, stdin: &mut dyn BufRead) -> i32 {
    if scripts.is_empty() {
        runner.run_script("<stdin>", stdin);
    }
    for script in scripts {
        let flow = match script {
            Script::Stdin => runner.run_script("<stdin>", stdin),
            Script::File(name, mut reader) => runner.run_script(&name, &mut reader),
            Script::Text(text) => runner.run_script("<command>", &mut text.as_bytes()),
        };
        if flow != Flow::Continue {
            break;
        }
    }
    runner.status()
}

fn print(out: &mut dyn Write, text: &str) -> i32 {
    match writeln!(out, "{text}") {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

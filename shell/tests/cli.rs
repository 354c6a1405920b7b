//! The shell as its users run it: golden scripts, exit codes, and the in-process entry point.
//!
//! Each `tests/scripts/NAME.gq` runs on a fresh database, from `tests/` as the working
//! directory; its first line may be `-- args: FLAGS`, where `{script}` stands for the script's
//! path. Without `{script}` the script is piped to stdin. What it prints and its exit code are
//! compared with `NAME.out`; `UPDATE_EXPECT=1 cargo test` rewrites those files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gnnrec_engine::{Database, Options};

const SHELL: &str = env!("CARGO_BIN_EXE_gnnrec-shell");

fn tests_dir() -> PathBuf {
    // Cargo's run-time value first: a test binary compiled in another checkout that shares
    // the target directory carries that checkout's path.
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&manifest).join("tests")
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the shell in `tests/` with `stdin` piped in (`None`: an empty, closed stdin).
fn shell(args: &[&str], stdin: Option<&str>) -> Outcome {
    shell_with(Command::new(SHELL).args(args), stdin)
}

fn shell_with(command: &mut Command, stdin: Option<&str>) -> Outcome {
    let mut child = command
        .current_dir(tests_dir())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shell starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes()).expect("the shell reads its stdin");
    }
    let out = child.wait_with_output().expect("the shell finishes");
    Outcome {
        code: out.status.code().expect("the shell exits normally"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn db_in(dir: &tempfile::TempDir) -> String {
    dir.path().join("db").to_str().expect("temp paths are UTF-8").to_owned()
}

#[test]
fn golden_scripts() {
    let mut scripts: Vec<PathBuf> = fs::read_dir(tests_dir().join("scripts"))
        .expect("tests/scripts exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "gq"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no golden scripts found");
    let failures: Vec<String> = scripts.iter().filter_map(|script| check(script).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs one golden script and compares what it printed with its `.out` file.
fn check(script: &Path) -> Result<(), String> {
    let text = fs::read_to_string(script).expect("the script is readable");
    let name = script.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name");
    let flags = text.lines().next().and_then(|line| line.strip_prefix("-- args:")).unwrap_or("").trim();
    let relative = format!("scripts/{name}");
    let piped = !flags.contains("{script}");

    let dir = tempfile::tempdir().expect("a temp dir");
    let db = db_in(&dir);
    let mut args = vec![db.clone()];
    args.extend(flags.split_whitespace().map(|arg| arg.replace("{script}", &relative)));
    let outcome = shell_with(Command::new(SHELL).args(&args), piped.then_some(text.as_str()));

    let mut command = vec!["$ gnnrec-shell DB".to_owned()];
    command.extend((!flags.is_empty()).then(|| flags.replace("{script}", &relative)));
    command.extend(piped.then(|| format!("< {relative}")));
    let actual = format!(
        "{}\nexit code: {}\n--- stdout\n{}--- stderr\n{}",
        command.join(" "),
        outcome.code,
        outcome.stdout,
        outcome.stderr
    );
    let actual = hide_seconds(&actual.replace(&db, "DB"));

    let expected_path = script.with_extension("out");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        fs::write(&expected_path, &actual).expect("the expected file is writable");
        return Ok(());
    }
    let expected = fs::read_to_string(&expected_path).unwrap_or_default();
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "{} does not match (UPDATE_EXPECT=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
            expected_path.display()
        ))
    }
}

/// LOAD's summary says how long it took ("in 0.01s"): that part varies from run to run.
fn hide_seconds(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(" in ") {
        let (head, tail) = rest.split_at(i + " in ".len());
        out.push_str(head);
        let number = tail.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(tail.len());
        rest = if number > 0 && tail[number..].starts_with('s') {
            out.push_str("[TIME]");
            &tail[number..]
        } else {
            tail
        };
    }
    out.push_str(rest);
    out
}

#[test]
fn several_statements_with_c_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out =
        shell(&[&db, "-c", "ADD a click b AT 10; ADD a buy b AT 20;", "--command", "SHOW USER a"], None);
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 0);
    let want = "\
added edge (seq 1), new user 'a', new item 'b'
added edge (seq 2)
 item | type  | weight | count | first_ts | last_ts
------+-------+--------+-------+----------+---------
 b    | click | 1.0000 |     1 |       10 |      10
 b    | buy   | 1.0000 |     1 |       20 |      20
user 'a': 2 edges

";
    assert_eq!(out.stdout, want);
}

#[test]
fn a_failed_statement_exits_1_and_stops_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out = shell(&[&db, "-c", "ADD a click b AT 1;\nSHOW USER x; ADD c click d AT 1"], None);
    assert_eq!((out.code, out.stderr.as_str()), (1, "<command>:2: unknown user 'x'\n"));
    let db = Database::open(&db, Options::default()).unwrap();
    assert_eq!(db.stats().unwrap().edges, 1, "the statement after the failure did not run");
}

#[test]
fn keep_going_runs_every_statement_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out = shell(
        &[&db, "--keep-going", "-c", "SHOW USER x; ADD c click d AT 1; SIMILAR d TOP 3; ADD e click f AT 1"],
        None,
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "<command>:1: unknown user 'x'\n<command>:1: no model yet: run TRAIN first\n");
    let db = Database::open(&db, Options::default()).unwrap();
    assert_eq!(db.stats().unwrap().edges, 2);
}

#[test]
fn piped_stdin_is_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out = shell(&[&db], Some("ADD a click b AT 1;\n\nSHOW\n  USER nobody;\nADD c click d AT 1;\n"));
    assert_eq!((out.code, out.stderr.as_str()), (1, "<stdin>:3: unknown user 'nobody'\n"));
    assert_eq!(out.stdout, "added edge (seq 1), new user 'a', new item 'b'\n");

    let out = shell(&[&db, "-c", "ADD x click y AT 1", "-f", "-"], Some("SHOW USER x;"));
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert!(out.stdout.ends_with("user 'x': 1 edge\n\n"), "{}", out.stdout);
}

#[test]
fn data_outlives_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    assert_eq!(shell(&[&db, "-c", "ADD a click b AT 1"], None).code, 0);
    let out = shell(&[&db, "-c", "SHOW STATS"], None);
    assert_eq!(out.code, 0);
    let edges = out.stdout.lines().find(|line| line.starts_with(" edges ")).expect("an edges row");
    assert!(edges.ends_with(" 1"), "{}", out.stdout);
}

#[test]
fn without_a_path_the_database_is_temporary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = shell_with(
        Command::new(SHELL).env("TMPDIR", tmp.path()).args(["-c", "ADD a click b AT 1; SHOW STATS"]),
        None,
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert!(out.stdout.starts_with("added edge (seq 1)"), "{}", out.stdout);
    let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the temporary database was not removed: {left:?}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out = shell(&[&db, "--frobnicate"], None);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr, "gnnrec-shell: unknown option '--frobnicate'\ntry 'gnnrec-shell --help'\n");
    let out = shell(&[&db, "-c"], None);
    assert_eq!((out.code, out.stderr.lines().next()), (2, Some("gnnrec-shell: option '-c' needs a value")));
    assert!(!Path::new(&db).exists(), "a usage error created the database");
}

#[test]
fn a_missing_script_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out = shell(&[&db, "-f", "no/such/script.gq"], None);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr, "gnnrec-shell: cannot read 'no/such/script.gq': no such file or directory\n");
    assert!(!Path::new(&db).exists());
}

#[test]
fn a_regular_file_is_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    fs::write(&file, "hello").unwrap();
    let out = shell(&[file.to_str().unwrap(), "-c", "SHOW STATS"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is not a gnnrec database"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
}

#[test]
fn a_database_open_in_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let held = Database::open(&db, Options::default()).unwrap();
    let out = shell(&[&db, "-c", "SHOW STATS"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("gnnrec-shell: database is locked"), "{}", out.stderr);
    held.close().unwrap();
    assert_eq!(shell(&[&db, "-c", "SHOW STATS"], None).code, 0);
}

#[test]
fn help_and_version() {
    let out = shell(&["--help"], None);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("usage: gnnrec-shell [OPTIONS] [DB_PATH]\n"), "{}", out.stdout);
    let out = shell(&["-V"], None);
    assert_eq!((out.code, out.stdout), (0, format!("gnnrec-shell {}\n", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn a_script_reading_itself_stops() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let script = dir.path().join("loop.gq");
    fs::write(&script, format!("ADD a click b AT 1;\n.read {}\n", script.display())).unwrap();
    let out = shell(&[&db, "-f", script.to_str().unwrap()], None);
    assert_eq!(out.code, 1);
    let want = format!("{}:2: more than 16 nested .read commands\n", script.display());
    assert_eq!(out.stderr, want);
}

#[test]
fn run_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let args = [db, "--json".to_owned()];
    let status = gnnrec_shell::run(
        &args,
        gnnrec_shell::Streams {
            stdin: &mut "ADD a click b AT 5;\nSHOW ITEM zz;\n".as_bytes(),
            stdout: &mut stdout,
            stderr: &mut stderr,
            stdin_is_terminal: false,
            stderr_is_terminal: false,
        },
    );
    assert_eq!(status, 1);
    assert_eq!(
        String::from_utf8(stdout).unwrap(),
        "{\"columns\":[],\"rows\":[],\"summary\":\"added edge (seq 1), new user 'a', new item 'b'\"}\n\
         {\"error\":\"unknown item 'zz'\",\"file\":\"<stdin>\",\"line\":2}\n"
    );
    assert_eq!(String::from_utf8(stderr).unwrap(), "<stdin>:2: unknown item 'zz'\n");
}

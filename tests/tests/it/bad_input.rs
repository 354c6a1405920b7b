//! Bad input is an error message that names the problem, and changes nothing.

use std::path::Path;

use gnnrec_engine::{Database, Error, Interaction, Options, Stats};

fn fresh() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db"), Options::default()).unwrap();
    db.add(&Interaction::new("alice", "click", "sku-1").at(10)).unwrap();
    (dir, db)
}

/// Loads `content` and returns the error message; asserts nothing changed.
fn load_error(content: &[u8]) -> String {
    let (dir, db) = fresh();
    let before: Stats = db.stats().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, content).unwrap();
    let err = db.load_csv(&path, |_| {}).expect_err("a malformed file must not load");
    assert_eq!(db.stats().unwrap(), before, "a failed load changed the database");
    assert!(matches!(err, Error::Csv { .. } | Error::Io { .. }), "unexpected error kind: {err:?}");
    err.to_string().replace(&path.display().to_string(), "bad.csv")
}

#[test]
fn broken_csv_files_are_rejected_with_line_numbers() {
    let header = "user,item,type,weight,timestamp\n";
    let cases: &[(Vec<u8>, &str)] = &[
        (b"".to_vec(), "bad.csv:1: empty file"),
        (b"\n".to_vec(), "bad.csv:1: empty file"),
        (b"user,item\nalice,x\n".to_vec(), "bad.csv:1: bad header 'user,item'"),
        (b"who,what,type\nalice,x,click\n".to_vec(), "bad.csv:1: bad header"),
        (
            format!("{header}a,b,click,1,5\na,b,click,1\n").into_bytes(),
            "bad.csv:3: expected 5 columns, found 4",
        ),
        (format!("{header}a,b,click,1,5,6\n").into_bytes(), "bad.csv:2: expected 5 columns, found 6"),
        (format!("{header}a,b,click,heavy,5\n").into_bytes(), "bad.csv:2: bad weight 'heavy'"),
        (format!("{header}a,b,click,inf,5\n").into_bytes(), "bad.csv:2: bad weight 'inf'"),
        (format!("{header}a,b,click,1,yesterday\n").into_bytes(), "bad.csv:2: bad timestamp 'yesterday'"),
        (
            format!("{header}a,b,click,1,5\na,b,view,1,5\n").into_bytes(),
            "bad.csv:3: unknown edge type 'view'",
        ),
        (format!("{header}a,,click,1,5\n").into_bytes(), "bad.csv:2: empty item id"),
        (format!("{header}a,\"b,click,1,5\n").into_bytes(), "bad.csv:2: unterminated quoted field"),
        (b"user,item,type\na,b,click\n\xff\xfe,b,click\n".to_vec(), "bad.csv:3: not valid UTF-8"),
    ];
    for (content, expected) in cases {
        let message = load_error(content);
        assert!(message.starts_with(expected), "expected '{expected}...', got '{message}'");
    }
}

#[test]
fn a_ten_megabyte_line_is_an_error_not_a_hang() {
    let mut content = b"user,item,type\na,b,click\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 10 << 20));
    content.extend(b",b,click\n");
    let message = load_error(&content);
    assert!(message.starts_with("bad.csv:3: user id is 10485760 bytes long"), "{message}");
}

#[test]
fn bad_rows_deep_in_a_large_file_report_the_right_line() {
    // Large enough to be cut into pieces parsed on several threads.
    let mut content = String::from("user,item,type,weight,timestamp\n");
    for i in 0..200_000 {
        content.push_str(&format!("u{},i{},click,1,{i}\n", i % 1000, i % 777));
    }
    content.push_str("u1,i1,click,one,5\n");
    let message = load_error(content.as_bytes());
    assert!(message.starts_with("bad.csv:200002: bad weight 'one'"), "{message}");
}

#[test]
fn a_missing_file_is_an_io_error() {
    let (dir, db) = fresh();
    let err = db.load_csv(dir.path().join("nope.csv"), |_| {}).unwrap_err();
    assert!(err.to_string().contains("nope.csv"), "{err}");
}

#[test]
fn failed_statements_change_nothing() {
    let (_dir, db) = fresh();
    let before = db.stats().unwrap();
    for bad in [
        "ADD alice view sku-1",
        "ADD '' click sku-1",
        "DELETE alice click sku-404",
        "DELETE USER nobody",
        "DELETE ITEM nothing",
        "SHOW USER nobody",
        "CREATE TYPE click",
        "ADD alice click",
        "TRAIN WITH dim = 0",
        "TRAIN WITH loss = 'squared'",
        "TRAIN WITH covisit = 5000",
        "TRAIN WITH covisit_weight = -1",
        "RECOMMEND alice TOP 10 EXCLUDE SEEN",
        "SCORE alice sku-1",
        "SET durability = maybe",
    ] {
        let err = db.execute(bad).expect_err(bad);
        assert!(!err.to_string().is_empty());
        assert_eq!(db.stats().unwrap(), before, "'{bad}' changed the database");
    }
}

#[test]
fn errors_name_the_offender() {
    let (_dir, db) = fresh();
    let msg = |text: &str| db.execute(text).unwrap_err().to_string();
    assert_eq!(msg("SHOW USER bob"), "unknown user 'bob'");
    assert_eq!(msg("SHOW ITEM sku-9"), "unknown item 'sku-9'");
    assert_eq!(msg("ADD alice view sku-1"), "unknown edge type 'view'");
    assert_eq!(msg("SIMILAR sku-1 TOP 3"), "no model yet: run TRAIN first");
    assert_eq!(msg("SYNC"), "no model yet: run TRAIN first");
    assert_eq!(msg("SET worker = maybe"), "worker is 'on', 'off' or 'manual', not 'maybe'");
    assert!(msg("SET worker.batch = 0").starts_with("worker.batch is a number of edges above 0"));
    assert!(msg("SET worker.epochs = 0").starts_with("worker.epochs is a number of passes from 1 to 100"));
    assert!(msg("SET worker.epochs = fast").starts_with("worker.epochs is a number of passes from 1 to 100"));
    assert!(msg("SET worker.interval = 5h").starts_with("worker.interval is a duration"));
    assert!(msg("SET worker.interval = 0s").starts_with("worker.interval is a duration"));
    assert!(msg("ADD alice click").contains("line 1, column"));
}

#[test]
fn opening_something_else_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "hello").unwrap();
    let err = Database::open(&file, Options::default()).unwrap_err();
    assert!(err.to_string().contains("is not a gnnrec database (not a directory)"), "{err}");

    let other = dir.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), "meow").unwrap();
    let err = Database::open(&other, Options::default()).unwrap_err();
    assert!(err.to_string().contains("is not a gnnrec database"), "{err}");
    assert!(other.join("cat.jpg").exists() && std::fs::read_dir(&other).unwrap().count() == 1);
}

#[test]
fn a_second_open_is_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let _first = Database::open(&path, Options::default()).unwrap();
    let err = Database::open(&path, Options::default()).unwrap_err();
    assert!(err.to_string().starts_with("database is locked by another process"), "{err}");
}

#[test]
fn a_second_process_is_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut holder = std::process::Command::new(env!("CARGO_BIN_EXE_gnnrec-crash-child"))
        .arg("add")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader stays open until the child is killed: a closed pipe would end the child
    // (and free the lock) at its next write.
    let mut output = std::io::BufReader::new(holder.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut output, &mut first).unwrap();
    assert_eq!(first.trim(), "ready");
    let err = Database::open(&path, Options::default()).unwrap_err();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(err.to_string().starts_with("database is locked by another process"), "{err}");
    assert!(Path::new(&path).exists());
}

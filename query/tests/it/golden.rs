//! Parser goldens, rust-analyzer style: every `test_data/ok/*.gq` parses to the statements in
//! its `.ast`, every `test_data/err/*.gq` fails with the error in its `.err`. With
//! `UPDATE_EXPECT=1` the expected files are written instead of compared.

use std::fs;
use std::path::{Path, PathBuf};

use gnnrec_query::{parse, parse_statement, split_statements};

/// The `.gq` files of `test_data/<dir>`, sorted.
pub(crate) fn gq_files(dir: &str) -> Vec<PathBuf> {
    // Cargo's run-time value first: a test binary compiled in another checkout that shares
    // the target directory carries that checkout's path.
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let dir = Path::new(&manifest).join("test_data").join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "gq"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .gq files in {}", dir.display());
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parses every golden and compares the outcome with its expected file.
fn check() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for (dir, extension) in [("ok", "ast"), ("err", "err")] {
        for gq in gq_files(dir) {
            let actual = match (parse(&read(&gq)), dir) {
                (Ok(statements), "ok") => {
                    let statements: Vec<_> = statements.into_iter().map(|s| s.statement).collect();
                    format!("{statements:#?}\n")
                }
                (Err(error), "err") => format!("{error}\n"),
                (Ok(statements), _) => {
                    failures.push(format!("{}: parsed, to {statements:?}", gq.display()));
                    continue;
                }
                (Err(error), _) => {
                    failures.push(format!("{}: failed:\n{error}", gq.display()));
                    continue;
                }
            };
            let expected_path = gq.with_extension(extension);
            let expected = fs::read_to_string(&expected_path).ok();
            if expected.as_deref() == Some(actual.as_str()) {
                continue;
            }
            if update {
                fs::write(&expected_path, &actual)
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_path.display()));
            } else {
                failures.push(format!(
                    "{} differs (UPDATE_EXPECT=1 rewrites it)\n--- expected\n{}--- actual\n{actual}",
                    expected_path.display(),
                    expected.as_deref().unwrap_or("(missing)\n"),
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn goldens() {
    check();
}

#[test]
fn ok_goldens_print_back_to_themselves() {
    for gq in gq_files("ok") {
        let text = read(&gq);
        let statements = parse(&text).unwrap_or_else(|e| panic!("{}:\n{e}", gq.display()));
        for parsed in statements {
            let printed = parsed.statement.to_string();
            assert_eq!(parse_statement(&printed), Ok(parsed.statement), "{}: {printed}", gq.display());
        }
    }
}

#[test]
fn ok_goldens_split_where_they_parse() {
    for gq in gq_files("ok") {
        let text = read(&gq);
        let parsed: Vec<_> = parse(&text).expect("ok golden").iter().map(|s| s.span).collect();
        assert_eq!(split_statements(&text), parsed, "{}", gq.display());
    }
}

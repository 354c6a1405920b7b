//! The dependency graph is part of the architecture: `shell -> engine -> {storage, query}`,
//! and each heavy package stays in the one crate that owns its job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    // Cargo's run-time value first: a test binary compiled in another checkout that shares
    // the target directory carries that checkout's path.
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&manifest).parent().expect("the tests crate sits in the workspace").to_path_buf()
}

/// The names under every `[*dependencies]` table of a manifest, with the table they are in.
fn dependencies(manifest: &str) -> Vec<(String, String)> {
    let mut table = String::new();
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            table = header.trim_end_matches(']').trim().to_owned();
            // `[dependencies.foo]` names a dependency in its header.
            if let Some((section, name)) = table.clone().split_once('.') {
                if section.ends_with("dependencies") {
                    out.push((section.to_owned(), name.trim_matches('"').to_owned()));
                }
            }
            continue;
        }
        if table.ends_with("dependencies") {
            if let Some((key, _)) = line.split_once('=') {
                let name = key.trim().split('.').next().unwrap_or("").trim_matches('"');
                out.push((table.clone(), name.to_owned()));
            }
        }
    }
    out
}

fn members() -> BTreeMap<&'static str, Vec<(String, String)>> {
    ["storage", "query", "engine", "shell", "tests"]
        .into_iter()
        .map(|m| {
            let path = workspace_root().join(m).join("Cargo.toml");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (m, dependencies(&text))
        })
        .collect()
}

#[test]
fn dependency_direction_holds() {
    // Which workspace members each member may depend on (any table, dev included).
    let allowed: &[(&str, &[&str])] = &[
        ("storage", &[]),
        ("query", &[]),
        ("engine", &["gnnrec-storage", "gnnrec-query"]),
        ("shell", &["gnnrec-engine", "gnnrec-query"]),
        ("tests", &["gnnrec-engine", "gnnrec-storage", "gnnrec-query", "gnnrec-shell"]),
    ];
    // Which packages only one member may name.
    let owned: &[(&str, &str)] = &[
        ("rocksdb", "storage"),
        ("librocksdb-sys", "storage"),
        ("dfdx", "engine"),
        ("hnsw_rs", "engine"),
        ("rustyline", "shell"),
        ("anyhow", "shell"),
    ];
    let mut problems = Vec::new();
    for (member, deps) in members() {
        let ok_members = allowed.iter().find(|(m, _)| *m == member).map(|(_, a)| *a).unwrap_or(&[]);
        for (table, dep) in deps {
            if dep.starts_with("gnnrec-") && !ok_members.contains(&dep.as_str()) {
                problems.push(format!("{member} depends on {dep} in [{table}]"));
            }
            if let Some((_, owner)) = owned.iter().find(|(p, _)| *p == dep) {
                if *owner != member {
                    problems.push(format!("{dep} belongs in {owner}, but {member} names it in [{table}]"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "the dependency graph is broken:\n{}", problems.join("\n"));
}

#[test]
fn manifest_reader_sees_every_form() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nrocksdb.workspace = true\n\"quoted\" = \"1\"\n\
                    [dev-dependencies.gnnrec-shell]\npath = \"../shell\"\n[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n";
    let names: Vec<String> = dependencies(manifest).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["rocksdb", "quoted", "gnnrec-shell", "libc"]);
}

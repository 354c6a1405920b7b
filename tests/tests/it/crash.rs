//! Crash tests: a child process (`gnnrec-crash-child`) writes to a database and is killed
//! with SIGKILL at a random point; the parent reopens the database and checks that nothing
//! acknowledged was lost and no half-write is visible.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gnnrec_engine::{Database, Interaction, Options};

use gnnrec_storage::Store;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn spawn_child(mode: &str, db: &Path, csv: Option<&Path>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gnnrec-crash-child"));
    cmd.arg(mode).arg(db).stdout(Stdio::piped()).stderr(Stdio::null());
    if let Some(csv) = csv {
        cmd.arg(csv);
    }
    cmd.spawn().expect("spawn child")
}

/// Waits for the child's `ready`, then keeps reading its `ack N` lines on a thread that
/// returns the last N once the child is gone.
fn read_acks(child: &mut Child) -> std::thread::JoinHandle<Option<u64>> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                let _ = tx.send(());
            }
            if let Some(n) = line.strip_prefix("ack ") {
                acked = n.parse::<u64>().ok();
            }
        }
        acked
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("child started");
    reader
}

fn check_invariants(db: &Path) -> Store {
    let store = Store::open(db).expect("reopen after crash");
    store.check_integrity().expect("invariants after crash");
    store
}

#[test]
fn acknowledged_adds_survive_sigkill() {
    for seed in 0..5u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let mut child = spawn_child("add", &db, None);
        let kill_after = Duration::from_millis(rng.gen_range(20..400));
        let reader = read_acks(&mut child);
        std::thread::sleep(kill_after);
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        let store = check_invariants(&db);
        let Some(last) = acked else { continue };
        for i in 0..=last {
            let user = store.node_id(gnnrec_storage::NodeKind::User, &format!("u{}", i % 97)).unwrap();
            let item = store.node_id(gnnrec_storage::NodeKind::Item, &format!("i{i}")).unwrap();
            let (Some(user), Some(item)) = (user, item) else {
                panic!("seed {seed}: acknowledged edge {i} of {last} lost (node missing)")
            };
            assert!(store.edge(user, 0, item).unwrap().is_some(), "seed {seed}: acknowledged edge {i} lost");
        }
        assert!(store.last_seq() > last, "seed {seed}: event log shorter than the acknowledged adds");
    }
}

#[test]
fn interrupted_load_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    let cfg = gnnrec_tests::synth::SynthConfig::for_edges(300_000, 7);
    gnnrec_tests::synth::write_csv(&cfg, std::io::BufWriter::new(std::fs::File::create(&csv).unwrap()))
        .unwrap();

    // What the file adds to a database that holds one unrelated edge.
    let reference = dir.path().join("reference");
    let (before, after) = {
        let db = Database::open(&reference, Options::default()).unwrap();
        db.add(&Interaction::new("someone", "like", "something").at(1)).unwrap();
        let before = db.stats().unwrap();
        db.load_csv(&csv, |_| {}).unwrap();
        (before, db.stats().unwrap())
    };

    for seed in 0..6u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let db = dir.path().join(format!("db{seed}"));
        Database::open(&db, Options::default())
            .unwrap()
            .add(&Interaction::new("someone", "like", "something").at(1))
            .unwrap();
        let mut child = spawn_child("load", &db, Some(&csv));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..1500)));
        child.kill().unwrap();
        child.wait().unwrap();
        let elapsed = started.elapsed();

        let store = check_invariants(&db);
        let stats = store.stats().unwrap();
        let got = (stats.users, stats.items, stats.edges, stats.last_seq);
        let none = (before.users, before.items, before.edges, before.events);
        let all = (after.users, after.items, after.edges, after.events);
        assert!(
            got == none || got == all,
            "seed {seed} (killed after {elapsed:?}): partial load {got:?}, expected {none:?} or {all:?}"
        );
    }
}

/// The worker runs rounds (each one a model version: index saved, then model, embeddings
/// and `trained_through` in one batch) while the child adds likes; SIGKILL lands anywhere.
/// Reopened: every acknowledged edge is there, the model and `trained_through` come from one
/// round, the index of that version loads or is rebuilt, and SYNC trains through the rest.
#[test]
fn killed_during_worker_rounds_reopens_consistent() {
    use gnnrec_engine::{TrainConfig, WorkerMode};
    let quiet = || Options { worker: WorkerMode::Manual, ..Options::default() };
    let mut rounds_seen = 0;
    for seed in 0..4u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        {
            let setup = Database::open(&db, quiet()).unwrap();
            for i in 0..400u64 {
                let (user, item) = (format!("u{}", i % 97), format!("i{}", i % 50));
                setup.add(&Interaction::new(user, "like", item).at(i as i64)).unwrap();
            }
            setup.train(&TrainConfig { dim: 8, epochs: 1, ..TrainConfig::default() }, |_| {}).unwrap();
        }
        let mut child = spawn_child("rounds", &db, None);
        let reader = read_acks(&mut child);
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1500)));
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        drop(check_invariants(&db));
        let reopened = Database::open(&db, quiet()).unwrap();
        let stats = reopened.stats().unwrap();
        if let Some(last) = acked {
            assert!(stats.events > 400 + last, "seed {seed}: acknowledged likes lost");
            // Every acknowledged like is folded into its edge: count the adds per pair.
            let mut expected: std::collections::HashMap<(u64, u64), u32> = Default::default();
            for i in (0..400).chain(0..=last) {
                *expected.entry((i % 97, i % 50)).or_default() += 1;
            }
            for ((u, i), want) in expected {
                let edges = reopened.user(&format!("u{u}")).unwrap().edges;
                let got = edges.iter().find(|e| e.other == format!("i{i}") && e.edge_type == "like");
                assert!(got.is_some_and(|e| e.count >= want), "seed {seed}: u{u} like i{i} lost adds");
            }
        }
        let report = reopened.model_report().unwrap().unwrap();
        rounds_seen += report.rounds;
        assert_eq!(report.trained_through, stats.trained_through, "seed {seed}: model and meta disagree");
        assert!(report.trained_through <= stats.events);
        assert!(reopened.index_info().is_ok(), "seed {seed}: the index neither loads nor rebuilds");
        assert_eq!(reopened.recommend("u1", 5, true, None).unwrap().items.len(), 5);
        reopened.sync().unwrap();
        let stats = reopened.stats().unwrap();
        assert_eq!(stats.trained_through, stats.events, "seed {seed}: SYNC did not catch up");
    }
    assert!(rounds_seen > 0, "no kill landed after a round: the test did not test rounds");
}

//! The background worker: new items placed and the model fine-tuned as edges arrive, SYNC,
//! the off and manual modes, and readers and writers while rounds run.

use std::path::Path;
use std::time::{Duration, Instant};

use gnnrec_engine::{Database, Interaction, Options, Strategy, TrainConfig, WorkerMode};
use gnnrec_tests::synth::{self, SynthConfig};

fn open(dir: &Path, mode: WorkerMode) -> Database {
    Database::open(dir.join("db"), Options { worker: mode, ..Options::default() }).unwrap()
}

/// ~300 items and ~1,500 users from the seeded generator, trained briefly.
fn trained(dir: &Path, mode: WorkerMode) -> (Database, SynthConfig) {
    let cfg = SynthConfig::for_edges(30_000, 3);
    let csv = dir.join("events.csv");
    synth::write_csv(&cfg, std::fs::File::create(&csv).unwrap()).unwrap();
    let db = open(dir, mode);
    db.load_csv(&csv, |_| {}).unwrap();
    db.train(&TrainConfig { dim: 16, epochs: 3, batch: 256, ..TrainConfig::default() }, |_| {}).unwrap();
    (db, cfg)
}

fn version(db: &Database) -> u64 {
    db.model_report().unwrap().unwrap().model_version
}

/// Users with edges, of one community.
fn community(db: &Database, cfg: &SynthConfig, c: u32, n: usize) -> Vec<String> {
    (0..cfg.users)
        .filter(|&u| synth::community_of_user(cfg, u) == c)
        .map(|u| format!("u{u}"))
        .filter(|u| db.user(u).is_ok_and(|i| !i.edges.is_empty()))
        .take(n)
        .collect()
}

#[test]
fn sync_in_manual_mode_trains_through_everything_added() {
    let dir = tempfile::tempdir().unwrap();
    let (db, cfg) = trained(dir.path(), WorkerMode::Manual);
    let before = version(&db);
    let fans = community(&db, &cfg, 0, 30);
    for fan in &fans[..15] {
        db.add(&Interaction::new(fan.as_str(), "like", "new-item")).unwrap();
    }
    // A newcomer who clicked three items of community 1.
    let own: Vec<String> =
        (0..cfg.items).filter(|&i| synth::community_of_item(&cfg, i) == 1).map(|i| format!("i{i}")).collect();
    for item in own.iter().filter(|i| db.item(i).is_ok()).take(3) {
        db.add(&Interaction::new("newcomer", "click", item.as_str())).unwrap();
    }
    // Nothing happens on its own in manual mode.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(version(&db), before);
    assert!(db.score(&fans[20], "new-item", None).is_err(), "not placed before SYNC");

    let out = db.execute("SYNC").unwrap();
    assert!(out[0].summary.contains("trained through"), "{}", out[0].summary);
    assert_eq!(version(&db), before + 1);
    let stats = db.stats().unwrap();
    assert_eq!(stats.trained_through, stats.events);
    let status = db.worker_status().unwrap().unwrap();
    assert_eq!((status.lag_edges, status.rounds), (0, 1));

    // The new item is placed, and closer to its fans' community than to the other.
    let others = community(&db, &cfg, 1, 30);
    let mean = |users: &[String]| -> f32 {
        users[15..].iter().map(|u| db.score(u, "new-item", None).unwrap().raw).sum::<f32>() / 15.0
    };
    assert!(mean(&fans) > mean(&others));
    // The newcomer's recommendations come from community 1.
    let recs = db.recommend("newcomer", 10, true, None).unwrap();
    let from_own = recs
        .items
        .iter()
        .filter(|r| synth::community_of_item(&cfg, r.item[1..].parse().unwrap_or(u32::MAX)) == 1)
        .count();
    assert!(from_own >= 6, "{from_own} of 10 from the newcomer's community: {:?}", recs.items);
}

#[test]
fn with_the_worker_off_nothing_changes_until_it_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = trained(dir.path(), WorkerMode::Off);
    let before = version(&db);
    db.execute("SET worker.interval = 10ms; SET worker.batch = 1").unwrap();
    for i in 0..5 {
        db.add(&Interaction::new("someone", "like", format!("i{i}"))).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(version(&db), before);
    let e = db.execute("SYNC").unwrap_err().to_string();
    assert!(e.contains("worker is off"), "{e}");
    let shown = db.execute("SHOW WORKER").unwrap();
    assert_eq!(shown[0].rows[0][1].to_string(), "off");

    db.execute("SET worker = on").unwrap();
    db.execute("SYNC").unwrap();
    assert_eq!(version(&db), before + 1);
    let stats = db.stats().unwrap();
    assert_eq!(stats.trained_through, stats.events);
}

/// SET worker.epochs reaches the rounds: a round of two passes adds two epochs to the model.
#[test]
fn a_round_makes_as_many_passes_as_worker_epochs_says() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = trained(dir.path(), WorkerMode::Manual);
    let epochs = |db: &Database| db.model_report().unwrap().unwrap().epochs;
    let before = epochs(&db);
    let out = db.execute("SET worker.epochs = 2").unwrap();
    assert_eq!(out[0].summary, "worker.epochs = 2");
    let shown = db.execute("SHOW WORKER").unwrap();
    let row = shown[0].rows.iter().find(|r| r[0].to_string() == "epochs").expect("an epochs row");
    assert_eq!(row[1].to_string(), "2");
    db.add(&Interaction::new("someone", "like", "i1")).unwrap();
    db.execute("SYNC").unwrap();
    assert_eq!(epochs(&db), before + 2);
}

#[test]
fn the_worker_catches_up_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = trained(dir.path(), WorkerMode::On);
    let before = version(&db);
    db.execute("SET worker.batch = 10; SET worker.interval = 50ms").unwrap();
    for i in 0..25 {
        db.add(&Interaction::new(format!("u{i}"), "like", format!("i{}", i + 7))).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = db.worker_status().unwrap().unwrap();
        if s.lag_edges == 0 && !s.busy {
            assert!(s.rounds >= 1 && s.model_version > before, "{s:?}");
            assert_eq!(s.last_error, None);
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not catch up: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    db.close().unwrap();
}

/// Writers add edges while the worker runs rounds and readers recommend: no reader fails,
/// and each reader sees model versions only go up.
#[test]
fn readers_and_writers_while_rounds_run() {
    let dir = tempfile::tempdir().unwrap();
    let (db, cfg) = trained(dir.path(), WorkerMode::On);
    db.execute("SET worker.batch = 20; SET worker.interval = 20ms").unwrap();
    let users = community(&db, &cfg, 0, 8);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|t| {
                let (db, users, done) = (&db, &users, &done);
                scope.spawn(move || {
                    let mut last = 0;
                    let mut n = t;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let mut o = gnnrec_engine::RecommendOptions::new(10);
                        o.exclude_seen = true;
                        o.strategy = if n % 2 == 0 { Strategy::Index } else { Strategy::Exact };
                        let r = db.recommend_with(&users[n % users.len()], &o).unwrap();
                        assert!(
                            r.model_version >= last,
                            "version went back from {last} to {}",
                            r.model_version
                        );
                        last = r.model_version;
                        n += 1;
                    }
                    last
                })
            })
            .collect();
        for i in 0..150u32 {
            db.add(&Interaction::new(format!("u{}", i % 40), "like", format!("i{}", (i * 7) % 250))).unwrap();
        }
        db.sync().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() >= 1);
        }
    });
    assert!(version(&db) > 1, "the worker published new versions");
    let stats = db.stats().unwrap();
    assert_eq!(stats.trained_through, stats.events);
    db.close().unwrap();
}

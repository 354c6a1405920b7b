//! RECOMMEND and SIMILAR through the item index: same order as exact scoring, EXCLUDE SEEN,
//! deletes, snapshots under retraining, restarts, and bad input.

use std::collections::HashSet;
use std::path::Path;

use gnnrec_engine::{
    Database, Error, IndexOrigin, Interaction, Method, Options, RecommendOptions, Strategy, TrainConfig,
    WorkerMode, MAX_K,
};
use gnnrec_tests::synth::{self, SynthConfig};

const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Database>();
};

/// A database of ~300 items and ~1,500 users from the seeded generator, trained briefly.
/// The catalogue is below `Options::index_from`: its index is built on the first query
/// that asks for it.
fn trained(dir: &Path) -> Database {
    trained_with(dir, quiet())
}

fn trained_with(dir: &Path, options: Options) -> Database {
    let cfg = SynthConfig::for_edges(30_000, 3);
    let csv = dir.join("events.csv");
    synth::write_csv(&cfg, std::fs::File::create(&csv).unwrap()).unwrap();
    let db = Database::open(dir.join("db"), options).unwrap();
    db.load_csv(&csv, |_| {}).unwrap();
    db.train(&config(), |_| {}).unwrap();
    db
}

/// The worker off: these tests look at the index and must not see it refresh items.
fn quiet() -> Options {
    Options { worker: WorkerMode::Off, ..Options::default() }
}

fn config() -> TrainConfig {
    TrainConfig { dim: 16, epochs: 3, batch: 256, ..TrainConfig::default() }
}

fn options(k: usize, strategy: Strategy) -> RecommendOptions {
    let mut o = RecommendOptions::new(k);
    o.exclude_seen = true;
    o.strategy = strategy;
    o
}

fn names(db: &Database, user: &str, o: &RecommendOptions) -> Vec<String> {
    db.recommend_with(user, o).unwrap().items.into_iter().map(|r| r.item).collect()
}

fn seen(db: &Database, user: &str) -> HashSet<String> {
    db.user(user).unwrap().edges.into_iter().map(|e| e.other).collect()
}

/// Users with edges, in id order.
fn active_users(db: &Database, n: usize) -> Vec<String> {
    (0..).map(|u| format!("u{u}")).filter(|u| db.user(u).is_ok_and(|i| !i.edges.is_empty())).take(n).collect()
}

#[test]
fn index_order_equals_exact_order_with_a_large_ef() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let mut index = options(20, Strategy::Index);
    index.ef = Some(1000);
    for user in active_users(&db, 60) {
        let fast = db.recommend_with(&user, &index).unwrap();
        let exact = db.recommend_with(&user, &options(20, Strategy::Exact)).unwrap();
        assert_eq!(fast.plan.method, Method::Index { ef: 1000 });
        assert_eq!(exact.plan.method, Method::Exact);
        assert_eq!(fast.items, exact.items, "user {user}");
        let seen = seen(&db, &user);
        assert!(fast.items.iter().all(|r| !seen.contains(&r.item)), "user {user} got a seen item");
    }
}

#[test]
fn a_user_who_has_seen_all_but_three_items_gets_those_three() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db"), quiet()).unwrap();
    // Three users share 40 items so that every item has a vector; "heavy" sees 37 of them.
    for u in 0..3 {
        for i in 0..40 {
            db.add(&Interaction::new(format!("u{u}"), "like", format!("i{i}"))).unwrap();
        }
    }
    for i in 0..37 {
        db.add(&Interaction::new("heavy", "like", format!("i{i}"))).unwrap();
    }
    db.train(&TrainConfig { dim: 8, epochs: 2, ..config() }, |_| {}).unwrap();
    let want: HashSet<String> = (37..40).map(|i| format!("i{i}")).collect();
    for strategy in [Strategy::Auto, Strategy::Index, Strategy::Exact] {
        let got: HashSet<String> = names(&db, "heavy", &options(10, strategy)).into_iter().collect();
        assert_eq!(got, want, "{strategy:?}");
    }
    let plan = db.explain_recommend("heavy", &options(10, Strategy::Auto)).unwrap();
    assert_eq!(plan.method, Method::Exact);
    assert_eq!(plan.excluded, 37);
}

#[test]
fn deleted_items_disappear_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let user = &active_users(&db, 1)[0];
    for strategy in [Strategy::Index, Strategy::Exact] {
        let before = names(&db, user, &options(5, strategy));
        db.delete_item(&before[0]).unwrap();
        let after = names(&db, user, &options(5, strategy));
        assert_eq!(after.len(), 5);
        assert!(!after.contains(&before[0]), "{strategy:?} returned a deleted item");
        assert_eq!(after[..4], before[1..], "{strategy:?}: the rest moves up");
        let similar = db.similar(&after[0], 50).unwrap();
        assert!(similar.items.iter().all(|r| r.item != before[0] && r.item != after[0]));
    }
}

#[test]
fn restart_gives_identical_results_and_a_damaged_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    // index_from 0: TRAIN builds and saves the index of even this small catalogue.
    let eager = || Options { index_from: 0, ..quiet() };
    let db = trained_with(dir.path(), eager());
    let users = active_users(&db, 30);
    let answers = |db: &Database| -> Vec<Vec<String>> {
        users.iter().map(|u| names(db, u, &options(10, Strategy::Index))).collect()
    };
    let before = answers(&db);
    assert!(matches!(db.index_info().unwrap().origin, IndexOrigin::Built { .. }));
    drop(db);

    let db = Database::open(dir.path().join("db"), eager()).unwrap();
    assert_eq!(answers(&db), before);
    assert!(matches!(db.index_info().unwrap().origin, IndexOrigin::Loaded { .. }));
    drop(db);

    // Flip a byte in the middle of every saved file: the checksum catches it.
    for entry in walk(&dir.path().join("db").join("index")) {
        let mut bytes = std::fs::read(&entry).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        std::fs::write(&entry, bytes).unwrap();
    }
    let db = Database::open(dir.path().join("db"), eager()).unwrap();
    let info = db.index_info().unwrap();
    assert!(matches!(info.origin, IndexOrigin::Rebuilt { saved: true, .. }), "{:?}", info.origin);
    let exact: Vec<Vec<String>> =
        users.iter().map(|u| names(&db, u, &options(10, Strategy::Exact))).collect();
    let mut large_ef = options(10, Strategy::Index);
    large_ef.ef = Some(1000);
    let rebuilt: Vec<Vec<String>> = users.iter().map(|u| names(&db, u, &large_ef)).collect();
    assert_eq!(rebuilt, exact);
}

#[test]
fn a_catalogue_the_planner_scores_exactly_gets_an_index_only_when_a_query_asks() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let info = db.index_info().unwrap();
    assert!(matches!(info.origin, IndexOrigin::NotBuilt { .. }), "{:?}", info.origin);
    assert!(!info.is_built());
    assert!(info.items > 0 && info.items < Options::default().index_from);
    assert_eq!((info.memory_bytes, info.disk_bytes), (0, 0));
    assert_eq!(saved_index_files(dir.path()), 0, "TRAIN saved an index nobody uses");

    let users = active_users(&db, 20);
    let exact: Vec<Vec<String>> =
        users.iter().map(|u| names(&db, u, &options(10, Strategy::Exact))).collect();
    for (user, want) in users.iter().zip(&exact) {
        let auto = db.recommend_with(user, &options(10, Strategy::Auto)).unwrap();
        assert_eq!(auto.plan.method, Method::Exact);
        assert_eq!(&auto.items.into_iter().map(|r| r.item).collect::<Vec<_>>(), want);
    }
    assert!(matches!(db.index_info().unwrap().origin, IndexOrigin::NotBuilt { .. }));

    // The first query that asks for the index builds it, in memory only.
    let mut large_ef = options(10, Strategy::Index);
    large_ef.ef = Some(1000);
    let through_index: Vec<Vec<String>> = users.iter().map(|u| names(&db, u, &large_ef)).collect();
    assert_eq!(through_index, exact);
    let info = db.index_info().unwrap();
    assert!(matches!(info.origin, IndexOrigin::OnDemand { .. }), "{:?}", info.origin);
    assert!(info.is_built() && info.memory_bytes > 0);
    assert_eq!(saved_index_files(dir.path()), 0);
    drop(db);

    // Reopened, the catalogue is still scored exactly: nothing is rebuilt at load.
    let db = Database::open(dir.path().join("db"), quiet()).unwrap();
    assert!(matches!(db.index_info().unwrap().origin, IndexOrigin::NotBuilt { .. }));
    assert_eq!(names(&db, &users[0], &options(10, Strategy::Auto)), exact[0]);
}

/// Files under the database's index directory, which may not exist.
fn saved_index_files(dir: &Path) -> usize {
    let index = dir.join("db").join("index");
    if index.exists() {
        walk(&index).len()
    } else {
        0
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    assert!(!files.is_empty() || !dir.ends_with("index"), "no index files under {}", dir.display());
    files
}

/// Readers on several threads while the model is retrained and its index rebuilt: every
/// answer is the answer of one model version, none fails.
#[test]
fn readers_see_one_version_while_the_model_is_retrained() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let users = active_users(&db, 20);
    let expected = |db: &Database| -> Vec<(u64, Vec<String>)> {
        users
            .iter()
            .map(|u| {
                let r = db.recommend_with(u, &options(10, Strategy::Index)).unwrap();
                (r.model_version, r.items.into_iter().map(|i| i.item).collect())
            })
            .collect()
    };
    let first = expected(&db);
    let done = std::sync::atomic::AtomicBool::new(false);
    let answers = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|t| {
                let (db, users, done) = (&db, &users, &done);
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    let mut n = t;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) || answers.len() < 50 {
                        let user = n % users.len();
                        let r = db.recommend_with(&users[user], &options(10, Strategy::Index)).unwrap();
                        answers.push((user, r.model_version, r.items.into_iter().map(|i| i.item).collect()));
                        n += 1;
                    }
                    answers
                })
            })
            .collect();
        db.train(&TrainConfig { seed: 7, ..config() }, |_| {}).unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        readers.into_iter().flat_map(|r| r.join().unwrap()).collect::<Vec<(usize, u64, Vec<String>)>>()
    });
    let second = expected(&db);
    assert_eq!(first[0].0 + 1, second[0].0);
    for (user, version, items) in answers {
        let want = if version == first[user].0 { &first[user].1 } else { &second[user].1 };
        assert!(version == first[user].0 || version == second[user].0, "unknown version {version}");
        assert_eq!(&items, want, "an answer of version {version} for user {user} mixes versions");
    }
}

#[test]
fn a_user_without_edges_gets_the_most_popular_items() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    db.add(&Interaction::new("newcomer", "click", "i0")).unwrap();
    db.delete_edge("newcomer", "click", "i0").unwrap();
    let r = db.recommend("newcomer", 5, true, None).unwrap();
    assert_eq!(r.plan.method, Method::Popular);
    assert_eq!(r.items.len(), 5);
    assert!(r.items.windows(2).all(|w| w[0].score >= w[1].score), "most popular first");
    let out = db.execute("RECOMMEND newcomer TOP 3").unwrap();
    assert_eq!(out[0].columns[2], "users");
    assert!(out[0].summary.contains("most popular"), "{}", out[0].summary);
}

#[test]
fn similar_and_explain_through_the_language() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let out = db.execute("SIMILAR i1 TOP 4").unwrap();
    assert_eq!(out[0].rows.len(), 4);
    assert!(out[0].rows.iter().all(|row| row[1].to_string() != "i1"));
    let user = &active_users(&db, 1)[0];
    let plan = db.execute(&format!("EXPLAIN RECOMMEND {user} TOP 10 EXCLUDE SEEN")).unwrap();
    assert_eq!(plan[0].rows[0][1].to_string(), "exact scoring", "a 300-item catalogue is scored exactly");
}

#[test]
fn bad_input_is_an_error_that_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db"), quiet()).unwrap();
    db.add(&Interaction::new("alice", "like", "sku-1")).unwrap();
    let untrained = db.recommend("alice", 5, true, None).unwrap_err().to_string();
    assert!(untrained.contains("run TRAIN"), "{untrained}");
    assert!(db.similar("sku-1", 5).unwrap_err().to_string().contains("run TRAIN"));
    db.add(&Interaction::new("bob", "like", "sku-2")).unwrap();
    db.train(&TrainConfig { dim: 4, epochs: 1, ..config() }, |_| {}).unwrap();

    let unknown = db.recommend("carol", 5, true, None).unwrap_err();
    assert!(unknown.to_string().contains("carol"), "{unknown}");
    assert!(db.similar("sku-9", 5).unwrap_err().to_string().contains("sku-9"));
    for k in [0, MAX_K + 1] {
        let e = db.recommend("alice", k, true, None).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
    }
    assert!(db.execute("RECOMMEND alice TOP 0").is_err());
    assert!(db.execute("RECOMMEND alice TOP 99999999999999999999").is_err());
    // More than the catalogue holds: what exists.
    assert_eq!(db.recommend("alice", 50, false, None).unwrap().items.len(), 2);
    assert_eq!(db.recommend("alice", 50, true, None).unwrap().items.len(), 1);
    assert_eq!(db.similar("sku-1", 50).unwrap().items.len(), 1);
}

#[test]
fn a_new_item_gets_a_vector_from_its_users_when_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let cfg = SynthConfig::for_edges(30_000, 3);
    let of = |c: u32| -> Vec<String> {
        active_users(&db, 400)
            .into_iter()
            .filter(|u| synth::community_of_user(&cfg, u[1..].parse().unwrap()) == c)
            .collect()
    };
    let (fans, others) = (of(0), of(1));
    for fan in &fans[..15] {
        db.add(&Interaction::new(fan.as_str(), "like", "fresh-item")).unwrap();
    }
    let e = db.score(&fans[20], "fresh-item", None).unwrap_err().to_string();
    assert!(e.contains("no vector yet"), "{e}");
    assert_eq!(db.refresh_items(&["fresh-item"]).unwrap(), 1);
    let mean = |users: &[String]| -> f32 {
        let users = &users[15..35.min(users.len())];
        users.iter().map(|u| db.score(u, "fresh-item", None).unwrap().raw).sum::<f32>() / users.len() as f32
    };
    let (own, other) = (mean(&fans), mean(&others));
    assert!(own > other, "community 0 scores the item {own}, community 1 {other}");
    let info = db.index_info().unwrap();
    assert_eq!((info.fresh, info.stale), (1, 0));
}

#[test]
fn refreshing_unchanged_items_keeps_their_scores() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let user = &active_users(&db, 1)[0];
    let before = db.recommend_with(user, &options(10, Strategy::Exact)).unwrap();
    let names: Vec<&str> = before.items.iter().map(|r| r.item.as_str()).collect();
    assert_eq!(db.refresh_items(&names).unwrap(), names.len());
    for r in &before.items {
        let now = db.score(user, &r.item, None).unwrap().raw;
        assert!((now - r.score).abs() < 1e-4, "{}: {} became {now}", r.item, r.score);
    }
}

/// Refreshing every item twice leaves more than REBUILD_STALE_SHARE of the points stale:
/// the index is rebuilt in the background while readers keep answering from the old one.
#[test]
fn stale_points_trigger_a_background_rebuild_that_readers_do_not_notice() {
    let dir = tempfile::tempdir().unwrap();
    let db = trained(dir.path());
    let users = active_users(&db, 10);
    let items: Vec<String> = (0..400).map(|i| format!("i{i}")).filter(|i| db.item(i).is_ok()).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut answered = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for user in &users {
                    let r = db.recommend_with(user, &options(10, Strategy::Index)).unwrap();
                    assert_eq!(r.items.len(), 10);
                    answered += 1;
                }
            }
            answered
        });
        for _ in 0..2 {
            db.refresh_items(&items).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while db.index_info().unwrap().rebuilding && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    let info = db.index_info().unwrap();
    assert!(matches!(info.origin, IndexOrigin::Compacted { .. }), "{:?}", info.origin);
    assert!(info.stale * 5 <= info.items, "{} stale of {}", info.stale, info.items);
    let mut large_ef = options(10, Strategy::Index);
    large_ef.ef = Some(1000);
    for user in &users {
        assert_eq!(names(&db, user, &large_ef), names(&db, user, &options(10, Strategy::Exact)), "{user}");
    }
}

#[test]
fn the_planner_takes_the_index_for_a_large_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        users: 5_000,
        items: 22_000,
        edges: 110_000,
        item_skew: 0.1,
        ..SynthConfig::for_edges(110_000, 5)
    };
    let csv = dir.path().join("events.csv");
    synth::write_csv(&cfg, std::fs::File::create(&csv).unwrap()).unwrap();
    let db = Database::open(dir.path().join("db"), quiet()).unwrap();
    db.load_csv(&csv, |_| {}).unwrap();
    db.train(&TrainConfig { dim: 8, epochs: 1, refit: 0, ..config() }, |_| {}).unwrap();
    let items = db.index_info().unwrap().items;
    assert!(items >= gnnrec_engine::EXACT_BELOW, "only {items} items");
    let user = &active_users(&db, 1)[0];
    let plan = db.explain_recommend(user, &options(10, Strategy::Auto)).unwrap();
    assert!(matches!(plan.method, Method::Index { .. }), "{plan:?}");
    let r = db.recommend_with(user, &options(10, Strategy::Auto)).unwrap();
    assert_eq!(r.plan, plan);
    assert_eq!(r.items.len(), 10);
    // A TOP k that is a large share of the catalogue is scored exactly.
    let plan = db.explain_recommend(user, &options(MAX_K, Strategy::Auto)).unwrap();
    assert_eq!(plan.method, Method::Exact, "{plan:?}");
}

//! The store checked against an in-memory reference: random writes, then every edge, every
//! node and the event log must agree, before and after a reopen.

use std::collections::BTreeMap;

use gnnrec_engine::{Database, Interaction, Options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Key = (String, String, String); // (user, type, item)

#[derive(Debug, Clone, Copy, PartialEq)]
struct Edge {
    weight: f32,
    count: u32,
    first_ts: i64,
    last_ts: i64,
}

#[derive(Default)]
struct Reference {
    edges: BTreeMap<Key, Edge>,
    users: std::collections::BTreeSet<String>,
    items: std::collections::BTreeSet<String>,
}

impl Reference {
    fn add(&mut self, u: &str, t: &str, i: &str, w: f32, ts: i64) {
        self.users.insert(u.into());
        self.items.insert(i.into());
        let e = self.edges.entry((u.into(), t.into(), i.into())).or_insert(Edge {
            weight: 0.0,
            count: 0,
            first_ts: ts,
            last_ts: ts,
        });
        e.weight += w;
        e.count += 1;
        e.first_ts = e.first_ts.min(ts);
        e.last_ts = e.last_ts.max(ts);
    }
}

fn check(db: &Database, reference: &Reference) {
    let stats = db.stats().unwrap();
    assert_eq!(stats.edges, reference.edges.len() as u64);
    assert_eq!(stats.users, reference.users.len() as u64);
    assert_eq!(stats.items, reference.items.len() as u64);
    let mut seen = BTreeMap::new();
    for user in &reference.users {
        for e in db.user(user).unwrap().edges {
            let edge = Edge { weight: e.weight, count: e.count, first_ts: e.first_ts, last_ts: e.last_ts };
            seen.insert((user.clone(), e.edge_type, e.other), edge);
        }
    }
    assert_eq!(seen, reference.edges);
    for item in &reference.items {
        let from_item: usize = db.item(item).unwrap().edges.len();
        assert_eq!(from_item, reference.edges.keys().filter(|(_, _, i)| i == item).count());
    }
}

#[test]
fn random_writes_match_the_reference() {
    for seed in 0..4u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut reference = Reference::default();
        let types = ["click", "cart", "like", "buy"];
        {
            let db = Database::open(&path, Options::default()).unwrap();
            for step in 0..1500 {
                let u = format!("u{}", rng.gen_range(0..25));
                let i = format!("i{}", rng.gen_range(0..40));
                let t = types[rng.gen_range(0..4)];
                match rng.gen_range(0..100) {
                    0..=84 => {
                        // Small integers keep the f32 sums exact in any order.
                        let w = rng.gen_range(1..4) as f32;
                        let ts = rng.gen_range(0..1000);
                        db.add(&Interaction::new(&u, t, &i).weight(w).at(ts)).unwrap();
                        reference.add(&u, t, &i, w, ts);
                    }
                    85..=94 => {
                        let key = (u.clone(), t.to_owned(), i.clone());
                        let result = db.delete_edge(&u, t, &i);
                        assert_eq!(result.is_ok(), reference.edges.remove(&key).is_some(), "step {step}");
                    }
                    95..=97 => {
                        let existed = reference.users.remove(&u);
                        assert_eq!(db.delete_user(&u).is_ok(), existed);
                        reference.edges.retain(|(eu, _, _), _| *eu != u);
                    }
                    _ => {
                        let existed = reference.items.remove(&i);
                        assert_eq!(db.delete_item(&i).is_ok(), existed);
                        reference.edges.retain(|(_, _, ei), _| *ei != i);
                    }
                }
                if step % 500 == 0 {
                    check(&db, &reference);
                }
            }
            check(&db, &reference);
        }
        let db = Database::open(&path, Options::default()).unwrap();
        check(&db, &reference);
    }
}

#[test]
fn a_load_equals_the_same_adds() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    let cfg = gnnrec_tests::synth::SynthConfig::for_edges(20_000, 3);
    let mut rows = Vec::new();
    gnnrec_tests::synth::generate(&cfg, |r| rows.push(*r)).unwrap();
    gnnrec_tests::synth::write_csv(&cfg, std::fs::File::create(&csv).unwrap()).unwrap();

    let loaded = Database::open(dir.path().join("loaded"), Options::default()).unwrap();
    let summary = loaded.load_csv(&csv, |_| {}).unwrap();
    assert_eq!(summary.edges, rows.len() as u64);

    let added = Database::open(dir.path().join("added"), Options::default()).unwrap();
    let mut reference = Reference::default();
    for r in &rows {
        let (u, i) = (format!("u{}", r.user), format!("i{}", r.item));
        added.add(&Interaction::new(&u, r.kind.as_str(), &i).weight(r.weight).at(r.ts)).unwrap();
        reference.add(&u, r.kind.as_str(), &i, r.weight, r.ts);
    }
    check(&loaded, &reference);
    check(&added, &reference);
    assert_eq!(loaded.stats().unwrap().events, added.stats().unwrap().events);
}

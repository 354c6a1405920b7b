//! TRAIN, SCORE, RECOMMEND and EVAL on a planted graph: two communities of users, each
//! interacting only with the items of its own community.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use gnnrec_engine::{Database, Interaction, Options, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const USERS: u32 = 60;
const ITEMS: u32 = 40;

fn community_of_user(u: u32) -> u32 {
    u % 2
}

fn community_of_item(i: u32) -> u32 {
    i % 2
}

/// Every user clicks and likes 10 random items of their own community (of 20). The
/// held-out CSV lists, for every user, the other 10 items of their community: a model that
/// has learned the communities ranks those above every item of the other community.
fn planted(dir: &std::path::Path, name: &str) -> (Database, std::path::PathBuf) {
    let db = Database::open(dir.join(name), Options::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let held_out_path = dir.join(format!("{name}-held-out.csv"));
    let mut held_out = std::fs::File::create(&held_out_path).unwrap();
    writeln!(held_out, "user,item,type").unwrap();
    for u in 0..USERS {
        let own = shuffled(
            (0..ITEMS).filter(|&i| community_of_item(i) == community_of_user(u)).collect(),
            &mut rng,
        );
        for (n, &i) in own.iter().enumerate() {
            if n < 10 {
                let ts = i64::from(u * 100 + n as u32);
                db.add(&Interaction::new(format!("u{u}"), "click", format!("i{i}")).at(ts)).unwrap();
                db.add(&Interaction::new(format!("u{u}"), "like", format!("i{i}")).at(ts + 1)).unwrap();
            } else {
                writeln!(held_out, "u{u},i{i},like").unwrap();
            }
        }
    }
    (db, held_out_path)
}

/// Small and fast. Hard-negative mining is off: in a 40-item catalogue a user's hardest
/// negatives are the unseen items of their own community, the very ones a community model
/// should recommend, so mining would teach it to bury them (on real catalogues the
/// default mining helps; see the quality benchmark).
fn config() -> TrainConfig {
    TrainConfig { dim: 16, epochs: 30, batch: 64, lr: 0.01, patience: 30, hard: 1, ..TrainConfig::default() }
}

#[test]
fn train_learns_the_communities() {
    let dir = tempfile::tempdir().unwrap();
    let (db, held_out) = planted(dir.path(), "db");
    let report = db.train(&config(), |_| {}).unwrap();
    assert_eq!(report.model_version, 1);
    assert_eq!(report.targets, ["like"]);

    let eval = db.evaluate(&held_out, 5, Some("like")).unwrap();
    assert_eq!(eval.users, USERS as usize);
    assert!(eval.metrics.auc > 0.9, "AUC {}", eval.metrics.auc);

    let mut wrong = Vec::new();
    for u in 0..USERS {
        let recs = db.recommend(&format!("u{u}"), 5, true, None).unwrap();
        assert_eq!(recs.items.len(), 5);
        for r in &recs.items {
            let item: u32 = r.item[1..].parse().unwrap();
            if community_of_item(item) != community_of_user(u) {
                wrong.push(format!("u{u}: {}", r.item));
            }
        }
    }
    assert!(wrong.is_empty(), "AUC {}, recommended from the other community: {wrong:?}", eval.metrics.auc);
}

/// With no validation slice (val_share = 0) nothing can stop training early: every epoch
/// runs and the last model is the one kept.
#[test]
fn without_validation_every_epoch_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (db, held_out) = planted(dir.path(), "db");
    let report = db.train(&TrainConfig { val_share: 0.0, patience: 1, ..config() }, |_| {}).unwrap();
    assert_eq!(report.validation_edges, 0);
    assert_eq!((report.epochs, report.best_epoch), (30, 30));
    let eval = db.evaluate(&held_out, 5, Some("like")).unwrap();
    assert!(eval.metrics.auc > 0.9, "AUC {}", eval.metrics.auc);
}

#[test]
fn exclude_seen_never_returns_a_seen_item() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = planted(dir.path(), "db");
    db.train(&TrainConfig { epochs: 3, ..config() }, |_| {}).unwrap();
    let seen: BTreeSet<String> = db.user("u3").unwrap().edges.into_iter().map(|e| e.other).collect();
    let catalogue = db.stats().unwrap().items as usize;
    let all = db.recommend("u3", 1000, true, None).unwrap();
    assert_eq!(all.items.len(), catalogue - seen.len(), "every unseen item and nothing else");
    assert!(all.items.iter().all(|r| !seen.contains(&r.item)));
    let with_seen = db.recommend("u3", 1000, false, None).unwrap();
    assert_eq!(with_seen.items.len(), catalogue);
}

#[test]
fn same_seed_same_scores_and_they_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { epochs: 5, seed: 7, ..config() };
    let scores = |db: &Database| -> Vec<f32> {
        (0..10).map(|n| db.score(&format!("u{n}"), &format!("i{}", n * 3), None).unwrap().raw).collect()
    };
    let (a, _) = planted(dir.path(), "a");
    let (b, _) = planted(dir.path(), "b");
    a.train(&cfg, |_| {}).unwrap();
    b.train(&cfg, |_| {}).unwrap();
    let first = scores(&a);
    assert_eq!(first, scores(&b), "same seed and data, different scores");
    drop(a);
    let reopened = Database::open(dir.path().join("a"), Options::default()).unwrap();
    assert_eq!(first, scores(&reopened), "scores changed across a reopen");
    let recs_a = reopened.recommend("u1", 5, true, None).unwrap();
    let recs_b = b.recommend("u1", 5, true, None).unwrap();
    assert_eq!(recs_a, recs_b);
}

#[test]
fn a_new_user_is_recommended_from_their_neighbourhood_without_retraining() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = planted(dir.path(), "db");
    db.train(&config(), |_| {}).unwrap();
    for (name, community) in [("newcomer-a", 0u32), ("newcomer-b", 1)] {
        for i in [0u32, 2, 4].map(|i| i + community) {
            db.add(&Interaction::new(name, "click", format!("i{i}")).at(99_999)).unwrap();
        }
        let recs = db.recommend(name, 5, true, None).unwrap();
        assert_eq!(recs.model_version, 1);
        for r in &recs.items {
            let item: u32 = r.item[1..].parse().unwrap();
            assert_eq!(community_of_item(item), community, "{name} got {}", r.item);
        }
        let s = db.score(name, &format!("i{}", 6 + community), None).unwrap();
        assert!((0.0..=1.0).contains(&s.probability));
    }
}

#[test]
fn eval_equals_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let (db, held_out) = planted(dir.path(), "db");
    db.train(&TrainConfig { epochs: 2, ..config() }, |_| {}).unwrap();
    let k = 5;
    let eval = db.evaluate(&held_out, k, Some("like")).unwrap();

    // The same protocol, written out from SCORE: candidates are every item minus the
    // user's own, ranked by score, ties by id bytes.
    let text = std::fs::read_to_string(&held_out).unwrap();
    let mut truth: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        truth.entry(f[0].to_owned()).or_default().insert(f[1].to_owned());
    }
    let (mut recall, mut ndcg) = (0.0, 0.0);
    // Held-out items the graph does not know cannot be ranked; EVAL skips them too.
    for relevant in truth.values_mut() {
        relevant.retain(|i| db.item(i).is_ok());
    }
    truth.retain(|_, relevant| !relevant.is_empty());
    for (user, relevant) in &truth {
        let own: BTreeSet<String> = db.user(user).unwrap().edges.into_iter().map(|e| e.other).collect();
        let mut ranked: Vec<(f32, String)> = (0..ITEMS)
            .map(|i| format!("i{i}"))
            .filter(|i| !own.contains(i) && db.item(i).is_ok())
            .map(|i| (db.score(user, &i, Some("like")).unwrap().raw, i))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.as_bytes().cmp(b.1.as_bytes())));
        let hits: Vec<bool> = ranked.iter().take(k).map(|(_, i)| relevant.contains(i)).collect();
        let ideal = relevant.len().min(k);
        recall += hits.iter().filter(|h| **h).count() as f64 / ideal as f64;
        let dcg: f64 =
            hits.iter().enumerate().filter(|(_, h)| **h).map(|(r, _)| 1.0 / ((r + 2) as f64).log2()).sum();
        let idcg: f64 = (0..ideal).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
        ndcg += dcg / idcg;
    }
    let n = truth.len() as f64;
    assert!(
        (eval.metrics.recall - recall / n).abs() < 1e-9,
        "recall {} vs {}",
        eval.metrics.recall,
        recall / n
    );
    assert!((eval.metrics.ndcg - ndcg / n).abs() < 1e-9, "ndcg {} vs {}", eval.metrics.ndcg, ndcg / n);
}

#[test]
fn model_statements_explain_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = planted(dir.path(), "db");
    let msg = |text: &str| db.execute(text).unwrap_err().to_string();
    assert_eq!(msg("SCORE u1 i1"), "no model yet: run TRAIN first");
    assert_eq!(msg("RECOMMEND u1 TOP 3 EXCLUDE SEEN"), "no model yet: run TRAIN first");
    assert_eq!(msg("TRAIN WITH dim = 0"), "dim must be a whole number from 1 to 1024");
    assert_eq!(msg("TRAIN WITH flavour = 'vanilla'"), "unknown TRAIN setting 'flavour'");
    db.execute("TRAIN EPOCHS 1 WITH dim = 8").unwrap();
    assert_eq!(msg("SCORE nobody i1"), "unknown user 'nobody'");
    assert_eq!(msg("SCORE u1 nothing"), "unknown item 'nothing'");
    assert_eq!(msg("RECOMMEND u1 TOP 0"), "TOP k needs k of at least 1");
    assert_eq!(
        msg("RECOMMEND u1 TOP 3 FOR buy"),
        "model version 1 does not predict 'buy'; its targets are like"
    );
    let out = db.execute("SHOW MODEL").unwrap();
    assert_eq!(out[0].rows[0][1].to_string(), "1");
}

#[test]
fn a_deleted_item_is_never_recommended_and_k_items_still_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = planted(dir.path(), "db");
    db.train(&TrainConfig { epochs: 3, ..config() }, |_| {}).unwrap();
    let before = db.recommend("u0", 3, true, None).unwrap();
    let gone = before.items[0].item.clone();
    db.delete_item(&gone).unwrap();
    let after = db.recommend("u0", 3, true, None).unwrap();
    assert_eq!(after.items.len(), 3);
    assert!(after.items.iter().all(|r| r.item != gone));
    assert_eq!(after.items[0], before.items[1]);
}

/// A score is the GNN's inner product plus `covisit_weight` times the mean, over the items
/// of the user's `recent` latest edges, of their co-visitation similarity to the item
/// scored: the users who touched both at most `covisit_window` places apart in their
/// history, over the root of the product of the two items' user counts. Checked against
/// that definition, computed here from the edges the database reports.
#[test]
fn the_covisitation_term_is_the_mean_similarity_of_the_latest_items() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db"), Options::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for u in 0..30u32 {
        let items = shuffled((0..20).collect(), &mut rng);
        for (n, &i) in items[..8].iter().enumerate() {
            let at = i64::from(u * 100) + 2 * n as i64;
            db.add(&Interaction::new(format!("u{u}"), "like", format!("i{i}")).at(at)).unwrap();
        }
    }
    let base = TrainConfig { val_share: 0.0, epochs: 3, ..config() };
    let (recent, window, weight) = (5, 2, 6.0);
    let terms = covisit_terms(&db, &TrainConfig { recent, covisit_window: window, ..base }, weight, 30, 20);

    // Every user's items, oldest first.
    let history: Vec<Vec<String>> = (0..30)
        .map(|u| {
            let mut edges = db.user(&format!("u{u}")).unwrap().edges;
            edges.sort_by_key(|e| e.last_ts);
            edges.into_iter().map(|e| e.other).collect()
        })
        .collect();
    let place = |h: &[String], item: &str| h.iter().position(|x| x == item);
    let users_of = |item: &str| history.iter().filter(|h| place(h, item).is_some()).count() as f32;
    let similarity = |j: &str, i: &str| -> f32 {
        if i == j {
            return 0.0; // an item is not its own neighbour
        }
        let near = history
            .iter()
            .filter(|h| matches!((place(h, j), place(h, i)), (Some(a), Some(b)) if a.abs_diff(b) <= window))
            .count() as f32;
        near / (users_of(i) * users_of(j)).sqrt()
    };
    let mut boosted = 0;
    for (u, h) in history.iter().enumerate() {
        let latest = &h[h.len() - recent..];
        for i in 0..20 {
            let item = format!("i{i}");
            let want = weight * latest.iter().map(|j| similarity(j, &item)).sum::<f32>() / recent as f32;
            let got = terms[u * 20 + i];
            assert!((got - want).abs() < 1e-4, "u{u} {item}: term {got}, by definition {want}");
            boosted += usize::from(want > 0.0);
        }
    }
    assert!(boosted > 150, "only {boosted} of 600 pairs have a co-visitation term");
}

/// Edges of one second have no order: when the cut of a user's `recent` latest edges falls
/// inside a second, all of that second's edges count. Without timestamps (every edge of
/// the same second) that is the whole history.
#[test]
fn without_timestamps_the_covisitation_term_reads_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db"), Options::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for u in 0..20u32 {
        let items = shuffled((0..15).collect(), &mut rng);
        for &i in &items[..7] {
            db.add(&Interaction::new(format!("u{u}"), "like", format!("i{i}")).at(1_700_000_000)).unwrap();
        }
    }
    let base = TrainConfig { val_share: 0.0, epochs: 2, recent: 3, covisit_window: 0, ..config() };
    let weight = 6.0;
    let terms = covisit_terms(&db, &base, weight, 20, 15);
    let users_of = |item: &str| -> BTreeSet<String> {
        db.item(item).unwrap().edges.into_iter().map(|e| e.other).collect()
    };
    for u in 0..20 {
        let own: Vec<String> =
            db.user(&format!("u{u}")).unwrap().edges.into_iter().map(|e| e.other).collect();
        assert_eq!(own.len(), 7);
        for i in 0..15 {
            let item = format!("i{i}");
            let users = users_of(&item);
            let cosine = |j: &String| {
                if *j == item {
                    return 0.0;
                }
                let other = users_of(j);
                users.intersection(&other).count() as f32 / ((users.len() * other.len()) as f32).sqrt()
            };
            let want = weight * own.iter().map(cosine).sum::<f32>() / own.len() as f32;
            let got = terms[u * 15 + i];
            assert!((got - want).abs() < 1e-4, "u{u} {item}: term {got}, over all 7 items {want}");
        }
    }
}

/// The values in a seeded random order.
fn shuffled(mut values: Vec<u32>, rng: &mut ChaCha8Rng) -> Vec<u32> {
    for i in (1..values.len()).rev() {
        values.swap(i, rng.gen_range(0..=i));
    }
    values
}

/// SCORE of users `u0..` and items `i0..` (users x items, row-major) with the term at
/// `weight`, less the same with the term off. Training does not see the term, and without
/// a validation slice every epoch runs: the two models share their GNN and differ in the
/// term alone.
fn covisit_terms(db: &Database, base: &TrainConfig, weight: f32, users: usize, items: usize) -> Vec<f32> {
    let scores = |config: &TrainConfig| -> Vec<f32> {
        db.train(config, |_| {}).unwrap();
        (0..users)
            .flat_map(|u| (0..items).map(move |i| (u, i)))
            .map(|(u, i)| db.score(&format!("u{u}"), &format!("i{i}"), None).unwrap().raw)
            .collect()
    };
    let without = scores(&TrainConfig { covisit_weight: 0.0, ..base.clone() });
    let with = scores(&TrainConfig { covisit_weight: weight, ..base.clone() });
    with.iter().zip(&without).map(|(a, b)| a - b).collect()
}

//! TRAIN, SCORE, RECOMMEND and EVAL: the model between storage and the user.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bincode::{Decode, Encode};
use gnnrec_query::{Setting, SettingValue};
use gnnrec_storage::{EdgeRecord, Event, NodeId, NodeKind, TrainingCommit, TypeId};
use rand::SeedableRng;

use crate::database::{now, Database};
use crate::error::{Error, Result};
use crate::graph::{history, Graph};
use crate::metrics::{rank_user, MetricTotals, Metrics};
use crate::model::train::{Example, Trainer, Validation};
use crate::model::{boost_of, dot, Loss, Model, Sampler, MAX_TYPES};
use crate::serving::{
    build_index, item_count, most_popular, not_placed, remove_other_indexes, save_index, IndexOrigin,
    Snapshot,
};

pub use crate::model::train::EpochReport;
pub use crate::model::Hyper as TrainConfig;

/// Validation users are capped so that early stopping stays cheap on large graphs.
const MAX_VALIDATION_USERS: usize = 2000;

/// A trained model as stored: the model, the report of the training that made it, and
/// the most popular items at training time (id, number of users), for users without edges.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub(crate) struct Checkpoint {
    pub model: Model,
    pub report: TrainReport,
    pub popular: Vec<(NodeId, u32)>,
}

/// The first bytes of a stored checkpoint: a tag and the layout's version, raised whenever
/// `Checkpoint` changes shape. Checkpoints of the first layout carry no tag.
const CHECKPOINT_TAG: &[u8; 8] = b"gnnrecM\x03";

impl Checkpoint {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut bytes = CHECKPOINT_TAG.to_vec();
        bincode::encode_into_std_write(self, &mut bytes, bincode::config::standard())
            .map_err(|e| Error::Invalid(format!("cannot encode the model: {e}")))?;
        Ok(bytes)
    }

    /// A stored checkpoint; one of another layout is an error that says to TRAIN again.
    pub(crate) fn decode(version: u64, bytes: &[u8]) -> Result<Checkpoint> {
        let older = || {
            Error::Invalid(format!(
                "model version {version} was stored by another version of gnnrec in a layout this one \
                 does not read: run TRAIN to train a new model"
            ))
        };
        let body = match bytes.strip_prefix(CHECKPOINT_TAG.as_slice()) {
            Some(body) => body,
            None => return Err(older()),
        };
        let (checkpoint, read) = bincode::decode_from_slice(body, bincode::config::standard())
            .map_err(|e| Error::Invalid(format!("model version {version} does not decode: {e}")))?;
        if read != body.len() {
            return Err(Error::Invalid(format!("model version {version} has trailing bytes")));
        }
        Ok(checkpoint)
    }
}

/// What a TRAIN did; `SHOW MODEL` prints it.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct TrainReport {
    pub model_version: u64,
    /// Unix seconds when training finished.
    pub trained_at: i64,
    pub seconds: f64,
    pub users: u64,
    pub items: u64,
    /// Edges in the training graph, and positive examples among them (target types).
    pub edges: u64,
    pub examples: u64,
    pub validation_edges: u64,
    pub epochs: u64,
    pub best_epoch: u64,
    pub loss: f64,
    /// NDCG@20 on the validation edges at the best epoch of the last full TRAIN (worker
    /// rounds have no validation slice).
    pub val_ndcg: f64,
    pub trained_through: u64,
    pub targets: Vec<String>,
    /// Worker rounds since the last full TRAIN: 0 for a TRAIN, n for the n-th round after it.
    pub rounds: u64,
    /// `trained_through` of the last full TRAIN.
    pub base_trained_through: u64,
}

/// The answer to SCORE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The model's raw score (an inner product).
    pub raw: f32,
    /// The raw score through a sigmoid: in [0, 1], higher is likelier.
    pub probability: f32,
    pub model_version: u64,
}

/// The answer to EVAL.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub k: usize,
    pub users: usize,
    pub edges: usize,
    /// Held-out rows skipped because their user or item is not in the graph.
    pub skipped: usize,
    pub metrics: Metrics,
    pub model_version: u64,
}

impl TrainConfig {
    /// Applies `TRAIN WITH key = value` settings.
    pub fn apply(&mut self, settings: &[Setting]) -> Result<()> {
        for s in settings {
            let key = s.key.to_ascii_lowercase();
            let bad = |what: &str| Error::Invalid(format!("{key} must be {what}"));
            let int = |min: i64, max: i64| match s.value {
                SettingValue::Int(i) if (min..=max).contains(&i) => Ok(i),
                _ => Err(bad(&format!("a whole number from {min} to {max}"))),
            };
            let float = |min: f64, max: f64| match s.value {
                SettingValue::Int(i) if (min..=max).contains(&(i as f64)) => Ok(i as f64),
                SettingValue::Float(x) if (min..=max).contains(&x) => Ok(x),
                _ => Err(bad(&format!("a number from {min} to {max}"))),
            };
            let word = || match &s.value {
                SettingValue::Word(w) | SettingValue::Str(w) => Ok(w.to_ascii_lowercase()),
                _ => Err(bad("a word")),
            };
            match key.as_str() {
                "dim" => self.dim = int(1, 1024)? as usize,
                "epochs" => self.epochs = int(1, 10_000)? as usize,
                "lr" => self.lr = float(1e-6, 10.0)? as f32,
                "batch" => self.batch = int(1, 1 << 20)? as usize,
                "negatives" => self.negatives = int(1, 1000)? as usize,
                "margin" => self.margin = float(0.0, 100.0)? as f32,
                "hard" => self.hard = int(1, 1000)? as usize,
                "fanout" => self.fanout = int(1, 100_000)? as usize,
                "reg" => self.reg = float(0.0, 10.0)? as f32,
                "patience" => self.patience = int(1, 10_000)? as usize,
                "val_share" => self.val_share = float(0.0, 0.9)? as f32,
                "refit" => self.refit = int(0, 1000)? as usize,
                "recency" => self.recency = float(0.0, 100.0)? as f32,
                "item_context" => self.item_context = float(0.0, 100.0)? as f32,
                "own" => self.own = float(0.0, 100.0)? as f32,
                "fresh" => self.fresh = float(0.0, 100.0)? as f32,
                "weight_power" => self.weight_power = float(0.0, 10.0)? as f32,
                "recent" => self.recent = int(0, 1000)? as usize,
                "covisit" => self.covisit = int(0, 1000)? as usize,
                "covisit_window" => self.covisit_window = int(0, 1_000_000)? as usize,
                "covisit_weight" => self.covisit_weight = float(0.0, 100.0)? as f32,
                "seed" => self.seed = int(0, i64::MAX)? as u64,
                "loss" => {
                    self.loss = match word()?.as_str() {
                        "hinge" => Loss::Hinge,
                        "bpr" => Loss::Bpr,
                        "bce" => Loss::Bce,
                        _ => return Err(bad("hinge, bpr or bce")),
                    }
                }
                "negative_sampler" | "sampler" => {
                    self.sampler = match word()?.as_str() {
                        "uniform" => Sampler::Uniform,
                        "popularity" => Sampler::Popularity,
                        _ => return Err(bad("uniform or popularity")),
                    }
                }
                "targets" | "target" => {
                    let list = match &s.value {
                        SettingValue::Word(w) | SettingValue::Str(w) => w.clone(),
                        _ => return Err(bad("edge type names, e.g. 'like,buy'")),
                    };
                    self.targets =
                        list.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
                }
                _ => return Err(Error::Invalid(format!("unknown TRAIN setting '{}'", s.key))),
            }
        }
        Ok(())
    }
}

impl Database {
    /// Trains a model on every edge in the database and stores it, with the final
    /// embedding of every node, as a new model version.
    pub fn train(&self, config: &TrainConfig, mut progress: impl FnMut(EpochReport)) -> Result<TrainReport> {
        let report = {
            let _one_writer = self.training.lock().unwrap_or_else(|e| e.into_inner());
            self.train_now(config, &mut progress)?
        };
        // From the first model on, the worker keeps it fresh. Starting it can only fail to
        // spawn a thread; the model is committed either way, and SHOW WORKER shows none.
        let _ = self.start_worker();
        Ok(report)
    }

    fn train_now(&self, config: &TrainConfig, mut progress: impl FnMut(EpochReport)) -> Result<TrainReport> {
        let started = Instant::now();
        let trained_through = self.store.last_seq();
        let types = self.store.types();
        if types.len() > MAX_TYPES {
            return Err(Error::Invalid(format!(
                "the model weighs at most {MAX_TYPES} edge types, the database has {}",
                types.len()
            )));
        }
        let edges: Vec<EdgeRecord> = self.store.edges().collect::<std::result::Result<_, _>>()?;
        if edges.is_empty() {
            return Err(Error::Invalid("there is nothing to train on: the database has no edges".into()));
        }
        let targets = self.resolve_targets(config, &edges)?;
        let users = self.store.node_id_bound(NodeKind::User) as usize;
        let items = self.store.node_id_bound(NodeKind::Item) as usize;

        let (train_edges, validation, validation_edges) = split_validation(&edges, &targets, config, users);
        let graph = Graph::from_edges(users, items, &train_edges, config.recency, config.weight_power);
        let examples = examples_of(&train_edges, &targets);
        drop(train_edges);
        if examples.is_empty() {
            return Err(Error::Invalid("no edge of a target type is left to train on".into()));
        }
        let type_weight: Vec<f32> = types.iter().map(|t| t.weight).collect();
        let trainer = Trainer::new(&graph, config.clone(), targets.len(), &type_weight);
        let outcome = trainer.fit(examples, &validation, targets.clone(), &mut progress);
        drop(graph);

        // Final embeddings come from the whole graph, validation edges included; a refit
        // also learns from those edges, which are each user's latest.
        let full = Graph::from_edges(users, items, &edges, config.recency, config.weight_power);
        let all_examples = examples_of(&edges, &targets);
        let example_count = all_examples.len();
        let model = if config.refit > 0 && validation_edges > 0 {
            Trainer::resume(&full, &outcome.model, config.seed).run(
                all_examples,
                config.refit,
                outcome.epochs + 1,
                targets.clone(),
                &mut progress,
            )
        } else {
            outcome.model
        };
        let epochs = outcome.epochs + if validation_edges > 0 { config.refit } else { 0 };
        self.publish(Trained {
            model,
            full: &full,
            started,
            edges: edges.len(),
            examples: example_count,
            validation_edges,
            epochs,
            best_epoch: outcome.best_epoch,
            loss: outcome.loss,
            val_ndcg: outcome.val_ndcg,
            trained_through,
            rounds: 0,
            base_trained_through: trained_through,
        })
    }

    /// One round of the background worker: fine-tunes the current model for `epochs` passes
    /// over the target edges added since it was trained, mixed with `replay` times as many
    /// older ones drawn at random (so that old preferences are not forgotten), and publishes
    /// it as the next version. `None` when nothing was added since.
    pub(crate) fn fine_tune(&self, replay: usize, epochs: usize) -> Result<Option<TrainReport>> {
        let _one_writer = self.training.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let snapshot = self.snapshot()?;
        let since = snapshot.report.trained_through;
        let trained_through = self.store.last_seq();
        if trained_through <= since {
            return Ok(None);
        }
        let model = &snapshot.model;
        let mut added: HashSet<(NodeId, TypeId, NodeId)> = HashSet::new();
        for entry in self.store.events_since(since) {
            let (seq, event) = entry?;
            if seq > trained_through {
                break;
            }
            if let Event::AddEdge { user, edge_type, item, .. } = event {
                added.insert((user, edge_type, item));
            }
        }
        let edges: Vec<EdgeRecord> = self.store.edges().collect::<std::result::Result<_, _>>()?;
        let users = self.store.node_id_bound(NodeKind::User) as usize;
        let items = self.store.node_id_bound(NodeKind::Item) as usize;
        let hyper = &model.hyper;
        let full = Graph::from_edges(users, items, &edges, hyper.recency, hyper.weight_power);
        let (mut examples, older): (Vec<Example>, Vec<Example>) = examples_of(&edges, &model.targets)
            .into_iter()
            .partition(|e| added.contains(&(e.user, model.targets[e.target as usize], e.item)));
        let fresh = examples.len();
        let seed = hyper.seed ^ snapshot.version.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let replayed = (fresh * replay).min(older.len());
        examples
            .extend(rand::seq::index::sample(&mut rng, older.len(), replayed).into_iter().map(|i| older[i]));
        let mut loss = 0.0;
        let passes = epochs.max(1);
        let tuned = if examples.is_empty() {
            // Only non-target edges arrived: nothing to learn from, but their users and
            // items are embedded from the new graph and the version records how far it got.
            model.clone()
        } else {
            let epoch = snapshot.report.epochs as usize + 1;
            Trainer::resume(&full, model, seed).run(
                examples.clone(),
                passes,
                epoch,
                model.targets.clone(),
                &mut |r| loss = r.loss,
            )
        };
        let report = self.publish(Trained {
            model: tuned,
            full: &full,
            started,
            edges: edges.len(),
            examples: examples.len(),
            validation_edges: 0,
            epochs: snapshot.report.epochs as usize + passes,
            best_epoch: snapshot.report.best_epoch as usize,
            loss,
            val_ndcg: snapshot.report.val_ndcg,
            trained_through,
            rounds: snapshot.report.rounds + 1,
            base_trained_through: snapshot.report.base_trained_through,
        })?;
        Ok(Some(report))
    }

    /// Stores a trained model as the next version: the final embedding of every node, the
    /// checkpoint and `trained_through` in one batch, the index saved before that; then
    /// swaps the snapshot in.
    pub(crate) fn publish(&self, t: Trained<'_>) -> Result<TrainReport> {
        let Trained { model, full, .. } = t;
        let (users, items) = (full.users, full.items);
        let mut embeddings = Vec::with_capacity(users + items);
        for u in 0..users as u32 {
            let range = full.by_user.range(u);
            if range.is_empty() {
                continue;
            }
            let neighbours =
                range.map(|p| (full.by_user.other[p], full.by_user.edge_type[p], full.by_user.strength[p]));
            embeddings.push((NodeKind::User, u, model.user_vector(u, neighbours)));
        }
        for i in 0..items as u32 {
            if full.by_item.degree(i) > 0 {
                if let Some(e) = model.item_vector(i) {
                    embeddings.push((NodeKind::Item, i, e.to_vec()));
                }
            }
        }
        let types = self.store.types();
        let version = self.store.latest_model_version()?.map_or(1, |v| v + 1);
        let report = TrainReport {
            model_version: version,
            trained_at: now(),
            seconds: t.started.elapsed().as_secs_f64(),
            users: embeddings.iter().filter(|e| e.0 == NodeKind::User).count() as u64,
            items: embeddings.iter().filter(|e| e.0 == NodeKind::Item).count() as u64,
            edges: t.edges as u64,
            examples: t.examples as u64,
            validation_edges: t.validation_edges as u64,
            epochs: t.epochs as u64,
            best_epoch: t.best_epoch as u64,
            loss: t.loss,
            val_ndcg: t.val_ndcg,
            trained_through: t.trained_through,
            targets: model.targets.iter().map(|&t| types[t as usize].name.clone()).collect(),
            rounds: t.rounds,
            base_trained_through: t.base_trained_through,
        };
        let popular = most_popular((0..items as NodeId).map(|i| full.by_item.degree(i) as u32));
        let checkpoint = Checkpoint { model, report: report.clone(), popular };
        let bytes = checkpoint.encode()?;
        // The index is on disk before the model version that owns it is committed; a
        // catalogue the planner scores exactly gets none.
        let (index, index_origin) = if item_count(&checkpoint.model) < self.index_from {
            (None, IndexOrigin::NotBuilt { index_from: self.index_from })
        } else {
            let indexing = Instant::now();
            let index = build_index(&checkpoint.model, checkpoint.report.rounds > 0)?;
            let build_seconds = indexing.elapsed().as_secs_f64();
            save_index(self.store.path(), version, &index)?;
            let save_seconds = indexing.elapsed().as_secs_f64() - build_seconds;
            (Some(index), IndexOrigin::Built { build_seconds, save_seconds })
        };
        self.store.commit_training(&TrainingCommit {
            model_version: version,
            checkpoint: &bytes,
            embeddings: &embeddings,
            trained_through: t.trained_through,
        })?;
        remove_other_indexes(self.store.path(), version);
        self.model.store(Some(Arc::new(Snapshot::new(checkpoint, version, index, index_origin))));
        self.versions.send_replace(version);
        Ok(report)
    }

    fn resolve_targets(&self, config: &TrainConfig, edges: &[EdgeRecord]) -> Result<Vec<TypeId>> {
        if !config.targets.is_empty() {
            return config
                .targets
                .iter()
                .map(|name| {
                    self.store
                        .type_id(name)
                        .ok_or_else(|| Error::Invalid(format!("unknown edge type '{name}' in targets")))
                })
                .collect();
        }
        let present: HashSet<TypeId> = edges.iter().map(|e| e.edge_type).collect();
        let preferred: Vec<TypeId> = ["like", "buy"]
            .iter()
            .filter_map(|n| self.store.type_id(n))
            .filter(|t| present.contains(t))
            .collect();
        if preferred.is_empty() {
            let mut all: Vec<TypeId> = present.into_iter().collect();
            all.sort_unstable();
            Ok(all)
        } else {
            Ok(preferred)
        }
    }

    /// The report of the newest model, or `None` before the first TRAIN.
    pub fn model_report(&self) -> Result<Option<TrainReport>> {
        if self.store.latest_model_version()?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.snapshot()?.report.clone()))
    }

    pub(crate) fn target_index(&self, snapshot: &Snapshot, target: Option<&str>) -> Result<Option<usize>> {
        let Some(name) = target else { return Ok(None) };
        let t =
            self.store.type_id(name).ok_or_else(|| Error::Invalid(format!("unknown edge type '{name}'")))?;
        match snapshot.model.targets.iter().position(|&x| x == t) {
            Some(i) => Ok(Some(i)),
            None => Err(Error::Invalid(format!(
                "model version {} does not predict '{name}'; its targets are {}",
                snapshot.version,
                snapshot.report.targets.join(", ")
            ))),
        }
    }

    /// What a user's scores are made of: the query vector, from the model and the user's
    /// current edges (so that a user who arrived after training is scored from their
    /// neighbourhood), and the co-visitation term of their latest items.
    pub(crate) fn user_query(
        &self,
        snapshot: &Snapshot,
        user: NodeId,
        target: Option<usize>,
    ) -> Result<UserQuery> {
        let model = &snapshot.model;
        let edges: Vec<EdgeRecord> = self
            .store
            .neighbours(NodeKind::User, user, None)?
            .into_iter()
            .map(|n| EdgeRecord { user, edge_type: n.edge_type, item: n.node, value: n.value })
            .collect();
        let past = history(&edges, model.hyper.recency, model.hyper.weight_power);
        let h =
            model.user_vector(user, edges.iter().zip(&past.strength).map(|(e, &s)| (e.item, e.edge_type, s)));
        let places = past.rank.iter().zip(&past.tie);
        let recent = model.recent_items(edges.iter().zip(places).map(|(e, (&r, &t))| (e.item, r, t)));
        Ok(UserQuery {
            vector: model.query_vector(&h, &model.relation(target)),
            boost: model.covisit_boost(&recent),
        })
    }

    /// The model's score of one user-item pair.
    pub fn score(&self, user: &str, item: &str, target: Option<&str>) -> Result<Score> {
        let snapshot = self.snapshot()?;
        let u = self.store.require_node(NodeKind::User, user)?;
        let i = self.store.require_node(NodeKind::Item, item)?;
        let t = self.target_index(&snapshot, target)?;
        let query = self.user_query(&snapshot, u, t)?;
        let items = snapshot.read_items();
        let e = items.vector(&snapshot.model, i).ok_or_else(|| not_placed(item, snapshot.version))?;
        let raw = query.score(i, e);
        Ok(Score { raw, probability: 1.0 / (1.0 + (-raw).exp()), model_version: snapshot.version })
    }

    /// Ranks every item for the users of a held-out file and measures the rankings, as
    /// the benchmark protocol defines: candidates are the items of the graph minus the
    /// user's own; ties go to the smaller item id (byte order).
    pub fn evaluate(&self, path: impl AsRef<Path>, k: usize, target: Option<&str>) -> Result<EvalReport> {
        if k == 0 {
            return Err(Error::Invalid("TOP k needs k of at least 1".into()));
        }
        let snapshot = self.snapshot()?;
        let t = self.target_index(&snapshot, target)?;
        let model = &snapshot.model;
        // Item vectors as RECOMMEND sees them, refreshed ones included.
        let items = snapshot.read_items();
        let path = path.as_ref();
        let type_filter = match target {
            Some(name) => Some(
                self.store
                    .type_id(name)
                    .ok_or_else(|| Error::Invalid(format!("unknown edge type '{name}'")))?,
            ),
            None => None,
        };
        // Rows of types the database does not know are still held-out rows; they only
        // never match a FOR filter.
        let type_id = |name: &str| self.store.type_id(name).or(Some(TypeId::MAX));
        let load = crate::csv_load::parse_file(path, &type_id, now())?;
        let mut held_out: HashMap<NodeId, HashSet<NodeId>> = HashMap::new();
        let mut skipped = 0;
        let mut edges = 0;
        for e in &load.edges {
            if type_filter.is_some_and(|t| t != e.edge_type) {
                continue;
            }
            let user = self.store.node_id(NodeKind::User, &load.users[e.user as usize])?;
            let item = self.store.node_id(NodeKind::Item, &load.items[e.item as usize])?;
            match (user, item) {
                (Some(u), Some(i)) if items.vector(model, i).is_some() => {
                    if held_out.entry(u).or_default().insert(i) {
                        edges += 1;
                    }
                }
                _ => skipped += 1,
            }
        }
        // Candidates: every item with an edge that the model knows.
        let mut candidates = Vec::new();
        let mut names: HashMap<NodeId, String> = HashMap::new();
        for entry in self.store.nodes(NodeKind::Item) {
            let (id, name) = entry?;
            if items.vector(model, id).is_some()
                && !self.store.neighbours(NodeKind::Item, id, None)?.is_empty()
            {
                candidates.push(id);
                names.insert(id, name);
            }
        }
        let mut totals = MetricTotals::default();
        let mut users: Vec<&NodeId> = held_out.keys().collect();
        users.sort_unstable();
        for &u in users {
            let relevant = &held_out[&u];
            let own: HashSet<NodeId> =
                self.store.neighbours(NodeKind::User, u, None)?.into_iter().map(|n| n.node).collect();
            let query = self.user_query(&snapshot, u, t)?;
            let mut scored: Vec<(NodeId, f32)> = candidates
                .iter()
                .filter(|i| !own.contains(i))
                .filter_map(|&i| Some((i, query.score(i, items.vector(model, i)?))))
                .collect();
            let empty = String::new();
            if let Some(m) = rank_user(
                &mut scored,
                |i| relevant.contains(&i),
                |i| names.get(&i).unwrap_or(&empty).as_bytes(),
                k,
            ) {
                totals.add(&m);
            }
        }
        Ok(EvalReport {
            k,
            users: totals.users,
            edges,
            skipped,
            metrics: totals.mean(),
            model_version: snapshot.version,
        })
    }
}

/// A user's side of every score: see [`Database::user_query`].
pub(crate) struct UserQuery {
    pub vector: Vec<f32>,
    /// The co-visitation term of every item it is not zero for, sorted by item.
    pub boost: Vec<(NodeId, f32)>,
}

impl UserQuery {
    /// The score of an item with the given vector.
    pub fn score(&self, item: NodeId, vector: &[f32]) -> f32 {
        dot(&self.vector, vector) + boost_of(&self.boost, item)
    }
}

/// A finished training run, for [`Database::publish`].
pub(crate) struct Trained<'a> {
    pub model: Model,
    /// The graph of every edge the model was trained through.
    pub full: &'a Graph,
    pub started: Instant,
    pub edges: usize,
    pub examples: usize,
    pub validation_edges: usize,
    pub epochs: usize,
    pub best_epoch: usize,
    pub loss: f64,
    pub val_ndcg: f64,
    pub trained_through: u64,
    pub rounds: u64,
    pub base_trained_through: u64,
}

/// The positive examples: every edge of a target type.
fn examples_of(edges: &[EdgeRecord], targets: &[TypeId]) -> Vec<Example> {
    edges
        .iter()
        .filter_map(|e| {
            let t = targets.iter().position(|&t| t == e.edge_type)?;
            Some(Example { user: e.user, item: e.item, target: t as u32 })
        })
        .collect()
}

/// Holds out each user's latest target edges for early stopping. Users with fewer than
/// five target edges keep all of theirs. A validation user's other edges later than the
/// first held-out one are in neither part: what the user did after must not tell the model
/// what they did then. (Edges of the same second stay: data loaded without timestamps has
/// nothing but ties.) Returns the training edges, the validation set and the number of
/// held-out edges.
fn split_validation(
    edges: &[EdgeRecord],
    targets: &[TypeId],
    config: &TrainConfig,
    users: usize,
) -> (Vec<EdgeRecord>, Validation, usize) {
    if config.val_share <= 0.0 {
        return (edges.to_vec(), Validation::default(), 0);
    }
    let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); users];
    for (n, e) in edges.iter().enumerate() {
        if targets.contains(&e.edge_type) {
            by_user[e.user as usize].push(n);
        }
    }
    // Spread the capped validation users over the id range, deterministically.
    let eligible: Vec<usize> = (0..users).filter(|&u| by_user[u].len() >= 5).collect();
    let stride = eligible.len().div_ceil(MAX_VALIDATION_USERS).max(1);
    let mut held = vec![false; edges.len()];
    let mut cutoff: Vec<Option<i64>> = vec![None; users];
    let mut validation = Validation::default();
    for &u in eligible.iter().step_by(stride) {
        let list = &mut by_user[u];
        list.sort_by_key(|&n| (edges[n].value.last_ts, edges[n].item));
        let n_out = ((list.len() as f32 * config.val_share).ceil() as usize).clamp(1, list.len() - 1);
        cutoff[u] = Some(edges[list[list.len() - n_out]].value.last_ts);
        let mut items: Vec<u32> = Vec::with_capacity(n_out);
        for &n in &list[list.len() - n_out..] {
            held[n] = true;
            items.push(edges[n].item);
        }
        validation.users.push((u as u32, items));
    }
    // An item held out for a user must not reach the user through another edge type.
    let held_pairs: HashSet<(u32, u32)> =
        edges.iter().zip(&held).filter(|(_, h)| **h).map(|(e, _)| (e.user, e.item)).collect();
    let before = |e: &EdgeRecord| cutoff[e.user as usize].is_none_or(|t0| e.value.last_ts <= t0);
    let train: Vec<EdgeRecord> =
        edges.iter().filter(|e| !held_pairs.contains(&(e.user, e.item)) && before(e)).copied().collect();
    let count = held.iter().filter(|&&h| h).count();
    (train, validation, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        let model = Model {
            hyper: TrainConfig::default(),
            targets: vec![2],
            type_weight: vec![0.5; MAX_TYPES],
            users: 1,
            items: 1,
            user_emb: vec![0.25; 64],
            item_emb: vec![-0.5; 64],
            item_out: Vec::new(),
            rel_emb: vec![1.0; 64],
            covisit: Default::default(),
        };
        let report = TrainReport {
            model_version: 3,
            trained_at: 0,
            seconds: 1.5,
            users: 1,
            items: 1,
            edges: 1,
            examples: 1,
            validation_edges: 0,
            epochs: 2,
            best_epoch: 2,
            loss: 0.25,
            val_ndcg: 0.0,
            trained_through: 7,
            targets: vec!["like".into()],
            rounds: 0,
            base_trained_through: 7,
        };
        Checkpoint { model, report, popular: vec![(0, 1)] }
    }

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        let stored = checkpoint();
        assert_eq!(Checkpoint::decode(3, &stored.encode().unwrap()).unwrap(), stored);
    }

    /// A checkpoint of the first layout (no tag) or a damaged one is an error that says what
    /// to do, never a panic or a model read wrongly.
    #[test]
    fn a_checkpoint_of_another_layout_says_to_train_again() {
        let untagged = bincode::encode_to_vec(checkpoint(), bincode::config::standard()).unwrap();
        let err = Checkpoint::decode(3, &untagged).unwrap_err().to_string();
        assert!(err.contains("model version 3") && err.contains("run TRAIN"), "{err}");
        let mut cut = checkpoint().encode().unwrap();
        cut.truncate(cut.len() / 2);
        let err = Checkpoint::decode(3, &cut).unwrap_err().to_string();
        assert!(err.contains("does not decode"), "{err}");
        let mut longer = checkpoint().encode().unwrap();
        longer.push(0);
        assert!(Checkpoint::decode(3, &longer).is_err());
    }

    /// The latest tenth of a user's likes is held out; their other edges after it are in
    /// neither part; a user with fewer than five likes keeps everything.
    #[test]
    fn validation_holds_out_the_latest_likes_and_drops_what_came_after() {
        let (like, view) = (0, 1);
        let at = |user, edge_type, item, ts| EdgeRecord {
            user,
            edge_type,
            item,
            value: gnnrec_storage::EdgeValue { weight: 1.0, count: 1, first_ts: ts, last_ts: ts },
        };
        let mut edges: Vec<EdgeRecord> = (0..10).map(|n| at(0, like, n, 10 * i64::from(n))).collect();
        edges.push(at(0, view, 20, 85)); // before the held-out like at 90: kept
        edges.push(at(0, view, 21, 90)); // in its second: kept
        edges.push(at(0, view, 22, 95)); // after it: dropped
        edges.push(at(0, view, 9, 50)); // a view of the held-out item: held out with it
        edges.extend((0..3).map(|n| at(1, like, n, 1000 + i64::from(n))));
        edges.push(at(1, view, 5, 2000));
        let config = TrainConfig { val_share: 0.1, ..TrainConfig::default() };
        let (train, validation, held) = split_validation(&edges, &[like], &config, 2);
        assert_eq!(validation.users, vec![(0, vec![9])]);
        assert_eq!(held, 1);
        let kept = |user, item| train.iter().any(|e| e.user == user && e.item == item);
        assert!((0..9).all(|i| kept(0, i)) && kept(0, 20) && kept(0, 21));
        assert!(!kept(0, 9) && !kept(0, 22));
        assert_eq!(train.iter().filter(|e| e.user == 1).count(), 4);
    }
}

//! Serving: the model version that queries read, its item index, and the planner that
//! answers RECOMMEND and SIMILAR either through the index or by scoring every item.
//!
//! A [`Snapshot`] is one model version with everything a query needs beside it: the
//! learned tables, the HNSW index over the item vectors and the popularity list for users
//! without edges. The database holds the current snapshot in an [`arc_swap::ArcSwapOption`]:
//! a query loads the pointer once and reads that version to the end, while TRAIN builds the
//! next snapshot aside and swaps it in whole. Nobody ever sees a model with another
//! version's index.
//!
//! The index is saved under the database directory, in `index/v<version>`, before the
//! model version is committed, so a committed model always has its index on disk unless
//! the disk lost it; a missing or damaged index is rebuilt (and saved again) at load.
//! A catalogue smaller than `Options::index_from` (by default [`EXACT_BELOW`], where the
//! planner starts to use the index) gets no index at TRAIN, in worker rounds or at load:
//! every query scores it exactly, and the first query that asks for the index builds it
//! in memory.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use gnnrec_storage::{EdgeRecord, NodeId, NodeKind};

use crate::graph::edge_strengths;

use crate::ann::{AnnIndex, AnnParams};
use crate::model::{boost_of, dot, Model};
use crate::training::{Checkpoint, TrainReport, UserQuery};
use crate::{Database, Error, Result};

/// The largest k RECOMMEND and SIMILAR accept.
pub const MAX_K: usize = 10_000;

/// Below this many items the planner scores every item, and TRAIN builds no index (see
/// `Options::index_from`). The `serve` benchmark on MovieLens (7,516 items of 64
/// dimensions, 2 cores) once measured exact p50 0.23 ms against 0.36 ms through the index;
/// with the binaries on mimalloc it measures 0.21 ms against 0.12 ms (p99 0.61 against
/// 0.57). Exact scoring stays the choice there: the answers are exact (the index's
/// recall@10 is 0.985-0.995), and the index it spares cost 1.1 s at every TRAIN and 0.3 s at
/// every worker round, the price of ~10,000 queries' difference.
pub const EXACT_BELOW: usize = 20_000;

/// How many of the most popular items a snapshot keeps for users without edges.
pub(crate) const POPULAR_KEPT: usize = MAX_K;

/// How a query is answered, and why; EXPLAIN prints it, every answer carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub method: Method,
    /// Why the planner chose the method, in words.
    pub reason: String,
    /// Items the model can rank, and how many of them the query excludes (seen items).
    pub items: usize,
    pub excluded: usize,
}

/// The ways a RECOMMEND or SIMILAR can be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A filtered HNSW search with this breadth; scores are the model's exact scores.
    Index { ef: usize },
    /// Every item scored.
    Exact,
    /// The most popular items (by number of users at training time): the user has no edges,
    /// so the model has nothing to go on. Scores are those numbers of users.
    Popular,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Index { ef } => write!(f, "index search (ef {ef})"),
            Method::Exact => f.write_str("exact scoring"),
            Method::Popular => f.write_str("most popular items"),
        }
    }
}

/// Which method the caller wants; `Auto` lets the planner choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Auto,
    Index,
    Exact,
}

/// The options of a RECOMMEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendOptions {
    pub k: usize,
    /// Leave out every item the user has an edge with.
    pub exclude_seen: bool,
    /// The target edge type to rank for; `None` ranks for the mean of the targets.
    pub target: Option<String>,
    pub strategy: Strategy,
    /// Search breadth of the index; `None` takes the index's default.
    pub ef: Option<usize>,
}

impl RecommendOptions {
    pub fn new(k: usize) -> RecommendOptions {
        RecommendOptions { k, exclude_seen: false, target: None, strategy: Strategy::Auto, ef: None }
    }
}

/// One item of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub item: String,
    pub score: f32,
}

/// The answer to RECOMMEND or SIMILAR.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    pub items: Vec<Recommendation>,
    pub model_version: u64,
    pub plan: Plan,
}

/// How the index of the current model came to be.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexOrigin {
    /// Built by TRAIN, then saved.
    Built { build_seconds: f64, save_seconds: f64 },
    /// Loaded from the database directory.
    Loaded { seconds: f64 },
    /// Rebuilt at load because the saved one could not be used.
    Rebuilt { seconds: f64, why: String, saved: bool },
    /// Rebuilt in the background after refreshed items left too many stale points; kept
    /// in memory (the saved index is TRAIN's, and refreshed vectors are recomputed).
    Compacted { seconds: f64, rebuilds: u64 },
    /// Not built: the catalogue is smaller than `Options::index_from`, and exact scoring
    /// answers every query that does not ask for the index.
    NotBuilt { index_from: usize },
    /// Built in memory by the first query that asked for it.
    OnDemand { seconds: f64 },
}

impl std::fmt::Display for IndexOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexOrigin::Built { build_seconds, save_seconds } => {
                write!(f, "built by TRAIN in {build_seconds:.3} s, saved in {save_seconds:.3} s")
            }
            IndexOrigin::Loaded { seconds } => write!(f, "loaded from disk in {seconds:.3} s"),
            IndexOrigin::Rebuilt { seconds, why, saved } => {
                write!(f, "rebuilt at load in {seconds:.3} s ({why})")?;
                if !saved {
                    f.write_str("; could not be saved again")?;
                }
                Ok(())
            }
            IndexOrigin::Compacted { seconds, rebuilds } => {
                write!(f, "rebuilt in the background in {seconds:.3} s (rebuild {rebuilds}, stale points)")
            }
            IndexOrigin::NotBuilt { index_from } => {
                write!(f, "not built: a catalogue under {index_from} items is scored exactly")
            }
            IndexOrigin::OnDemand { seconds } => {
                write!(f, "built in {seconds:.3} s by the first query that asked")
            }
        }
    }
}

/// The item index of the current model, for SHOW MODEL and benchmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub model_version: u64,
    /// Items with a vector (those in the index, when it is built).
    pub items: usize,
    /// Points superseded by refreshed vectors, filtered until the next rebuild.
    pub stale: usize,
    /// Items longer than the index's norm bound, scored exactly beside the graph walk.
    pub overflow: usize,
    /// Items whose vectors were refreshed since TRAIN.
    pub fresh: usize,
    /// Whether a background rebuild is running.
    pub rebuilding: bool,
    /// Estimated memory of the index: vectors and graph links.
    pub memory_bytes: usize,
    /// Size of the saved index files.
    pub disk_bytes: u64,
    pub origin: IndexOrigin,
}

impl IndexInfo {
    /// Whether an index exists (a small catalogue has none until a query asks for one).
    pub fn is_built(&self) -> bool {
        !matches!(self.origin, IndexOrigin::NotBuilt { .. })
    }
}

/// Share of stale points (superseded by re-inserts) past which the index is rebuilt in the
/// background.
pub const REBUILD_STALE_SHARE: f64 = 0.2;

/// The item side of a snapshot: the index and the item vectors that changed since TRAIN,
/// read and updated together under one lock so that a query sees them agree.
#[derive(Debug)]
pub(crate) struct Items {
    /// `None` until a query asks for it when the catalogue is below `Options::index_from`.
    pub index: Option<AnnIndex>,
    /// Items with a vector: the model's and fresh ones beyond them.
    pub count: usize,
    /// Item vectors refreshed from their current neighbourhood after TRAIN (items that
    /// arrived since, or whose users changed); they win over the model's.
    pub fresh: HashMap<NodeId, Vec<f32>>,
    /// Items refreshed while a background rebuild runs, replayed onto the new index.
    replay: Option<Vec<NodeId>>,
    pub origin: IndexOrigin,
    pub rebuilds: u64,
}

impl Items {
    /// The vector an item is scored with, if it has one.
    pub(crate) fn vector<'a>(&'a self, model: &'a Model, item: NodeId) -> Option<&'a [f32]> {
        self.fresh.get(&item).map(Vec::as_slice).or_else(|| model.item_vector(item))
    }

    /// Every item with a vector: the model's, then fresh ones beyond the model's ids.
    pub(crate) fn ids<'a>(&'a self, model: &'a Model) -> impl Iterator<Item = NodeId> + 'a {
        let beyond = self.fresh.keys().copied().filter(move |&i| i as usize >= model.items);
        (0..model.items as NodeId).chain(beyond)
    }

    /// Every item's current vector, for building an index.
    fn current_vectors(&self, model: &Model) -> Vec<(NodeId, Vec<f32>)> {
        self.ids(model).filter_map(|i| Some((i, self.vector(model, i)?.to_vec()))).collect()
    }
}

/// One model version and what queries need beside it.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub version: u64,
    pub model: Model,
    pub report: TrainReport,
    /// Item ids, most popular first, at most [`POPULAR_KEPT`].
    pub popular: Vec<(NodeId, u32)>,
    pub items: RwLock<Items>,
    /// Items found deleted since this snapshot was made; index searches filter them out.
    tombstones: RwLock<HashSet<NodeId>>,
    rebuilding: AtomicBool,
}

impl Snapshot {
    pub(crate) fn new(
        checkpoint: Checkpoint,
        version: u64,
        index: Option<AnnIndex>,
        origin: IndexOrigin,
    ) -> Snapshot {
        debug_assert!(index.as_ref().is_none_or(|index| index.dim() == checkpoint.model.dim()));
        let count = item_count(&checkpoint.model);
        Snapshot {
            version,
            model: checkpoint.model,
            report: checkpoint.report,
            popular: checkpoint.popular,
            items: RwLock::new(Items {
                index,
                count,
                fresh: HashMap::new(),
                replay: None,
                origin,
                rebuilds: 0,
            }),
            tombstones: RwLock::new(HashSet::new()),
            rebuilding: AtomicBool::new(false),
        }
    }

    pub(crate) fn read_items(&self) -> std::sync::RwLockReadGuard<'_, Items> {
        self.items.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_items(&self) -> std::sync::RwLockWriteGuard<'_, Items> {
        self.items.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that an item is gone, so that searches skip it from now on.
    pub(crate) fn bury(&self, item: NodeId) {
        self.tombstones.write().unwrap_or_else(|e| e.into_inner()).insert(item);
    }

    /// Replaces item vectors: each new vector is inserted into the index and its old point
    /// is filtered from then on. Past [`REBUILD_STALE_SHARE`] stale points a rebuild starts
    /// in the background; queries keep using this index until the new one is swapped in.
    pub(crate) fn refresh(self: &Arc<Self>, vectors: Vec<(NodeId, Vec<f32>)>) -> Result<()> {
        let needs_rebuild = {
            let mut items = self.write_items();
            for (id, vector) in vectors {
                if let Some(index) = &mut items.index {
                    index.insert(id, &vector)?;
                }
                if items.vector(&self.model, id).is_none() {
                    items.count += 1;
                }
                items.fresh.insert(id, vector);
                if let Some(replay) = &mut items.replay {
                    replay.push(id);
                }
            }
            items.index.as_ref().is_some_and(|index| {
                let points = index.len() + index.stale();
                index.stale() as f64 > REBUILD_STALE_SHARE * points as f64
            })
        };
        if needs_rebuild && !self.rebuilding.swap(true, Ordering::AcqRel) {
            let snapshot = Arc::clone(self);
            // A failed spawn leaves the stale points filtered; the next refresh tries again.
            let spawned = std::thread::Builder::new()
                .name("gnnrec-index-rebuild".into())
                .spawn(move || snapshot.rebuild());
            if spawned.is_err() {
                self.rebuilding.store(false, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Builds a fresh index of every current vector aside, replays what was refreshed
    /// meanwhile, and swaps it in.
    pub(crate) fn rebuild(&self) {
        let started = Instant::now();
        let (vectors, params): (Vec<(NodeId, Vec<f32>)>, AnnParams) = {
            let mut items = self.write_items();
            let Some(params) = items.index.as_ref().map(|index| *index.params()) else {
                drop(items);
                self.rebuilding.store(false, Ordering::Release);
                return;
            };
            items.replay = Some(Vec::new());
            (items.current_vectors(&self.model), params)
        };
        // Built as the index it replaces was.
        let built = index_of(self.model.dim(), &vectors, &params);
        let mut items = self.write_items();
        let replay = items.replay.take().unwrap_or_default();
        if let Ok(mut index) = built {
            let replayed = replay.iter().try_for_each(|id| match items.fresh.get(id) {
                Some(v) => index.insert(*id, v),
                None => Ok(()),
            });
            // On an error the old index stays: it is complete, only slower.
            if replayed.is_ok() {
                items.index = Some(index);
                items.rebuilds += 1;
                items.origin = IndexOrigin::Compacted {
                    seconds: started.elapsed().as_secs_f64(),
                    rebuilds: items.rebuilds,
                };
            }
        }
        drop(items);
        self.rebuilding.store(false, Ordering::Release);
    }

    /// Builds the index of a catalogue that has none yet (below `Options::index_from`),
    /// from the current vectors, under the write lock: queries wait for it once.
    pub(crate) fn ensure_index(&self) -> Result<()> {
        if self.read_items().index.is_some() {
            return Ok(());
        }
        let mut items = self.write_items();
        if items.index.is_none() {
            let started = Instant::now();
            let vectors = items.current_vectors(&self.model);
            let params = AnnParams::for_items(vectors.len());
            items.index = Some(index_of(self.model.dim(), &vectors, &params)?);
            items.origin = IndexOrigin::OnDemand { seconds: started.elapsed().as_secs_f64() };
        }
        Ok(())
    }

    /// Whether a background rebuild is running.
    pub(crate) fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::Acquire)
    }
}

/// Builds the index over every item vector of a model, on all cores (on the current rayon
/// pool). `round`: for a worker round, whose index lives until the next one, always with the
/// default parameters; TRAIN builds small catalogues denser ([`AnnParams::for_items`]).
pub(crate) fn build_index(model: &Model, round: bool) -> Result<AnnIndex> {
    let items: Vec<(u32, &[f32])> =
        (0..model.items as NodeId).filter_map(|i| Some((i, model.item_vector(i)?))).collect();
    let params = if round { AnnParams::default() } else { AnnParams::for_items(items.len()) };
    Ok(AnnIndex::build(model.dim(), &items, &params)?)
}

/// An index over `(item, vector)` pairs.
fn index_of(
    dim: usize,
    vectors: &[(NodeId, Vec<f32>)],
    params: &AnnParams,
) -> std::result::Result<AnnIndex, crate::ann::AnnError> {
    let refs: Vec<(u32, &[f32])> = vectors.iter().map(|(i, v)| (*i, v.as_slice())).collect();
    AnnIndex::build(dim, &refs, params)
}

/// How many items of a model have a vector: what its index would hold.
pub(crate) fn item_count(model: &Model) -> usize {
    (0..model.items as NodeId).filter(|&i| model.item_vector(i).is_some()).count()
}

/// Where the index of a model version lives.
pub(crate) fn index_dir(db_dir: &Path, version: u64) -> PathBuf {
    db_dir.join("index").join(format!("v{version}"))
}

/// Saves the index of a model version that is about to be committed.
pub(crate) fn save_index(db_dir: &Path, version: u64, index: &AnnIndex) -> Result<()> {
    let dir = index_dir(db_dir, version);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    index.save(&dir, version)?;
    Ok(())
}

/// Removes the indexes of every other model version. Best effort: a directory left behind
/// costs disk space only, and the next TRAIN tries again.
pub(crate) fn remove_other_indexes(db_dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(db_dir.join("index")) else { return };
    let keep = format!("v{keep}");
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(|name| name.starts_with('v') && name != keep) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The most popular items of a graph, by degree, ties to the smaller id.
pub(crate) fn most_popular(degrees: impl Iterator<Item = u32>) -> Vec<(NodeId, u32)> {
    let mut popular: Vec<(NodeId, u32)> =
        degrees.enumerate().filter(|&(_, d)| d > 0).map(|(i, d)| (i as NodeId, d)).collect();
    popular.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    popular.truncate(POPULAR_KEPT);
    popular
}

/// The error for an item the current model has no vector for.
pub(crate) fn not_placed(item: &str, version: u64) -> Error {
    Error::Invalid(format!(
        "item '{item}' arrived after model version {version} was trained and has no vector yet: \
         refresh it (Database::refresh_items) or TRAIN again"
    ))
}

fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::Invalid("TOP k needs k of at least 1".into()));
    }
    if k > MAX_K {
        return Err(Error::Invalid(format!("TOP {k} is too large: at most {MAX_K} items are returned")));
    }
    Ok(())
}

/// Best first; equal scores go to the smaller id.
fn best_first(a: &(NodeId, f32), b: &(NodeId, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// What a query asks for, resolved against a snapshot.
struct Query<'a> {
    snapshot: &'a Snapshot,
    vector: Vec<f32>,
    /// The co-visitation term of the items it is not zero for, sorted by item; added to
    /// their inner products.
    boost: Vec<(NodeId, f32)>,
    k: usize,
    /// Items that must not come back besides deleted ones: the user's seen items, or the
    /// item SIMILAR starts from.
    excluded: HashSet<NodeId>,
}

impl Database {
    /// The current model version with its index, loaded on first use.
    pub(crate) fn snapshot(&self) -> Result<Arc<Snapshot>> {
        if let Some(s) = self.model.load_full() {
            return Ok(s);
        }
        // One loader at a time: loading a large index twice would waste seconds.
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.model.load_full() {
            return Ok(s);
        }
        let Some((version, bytes)) = self.store.latest_model()? else {
            return Err(Error::Invalid("no model yet: run TRAIN first".into()));
        };
        let checkpoint = Checkpoint::decode(version, &bytes)?;
        let started = Instant::now();
        let dir = index_dir(self.store.path(), version);
        let (index, origin) = if item_count(&checkpoint.model) < self.index_from {
            (None, IndexOrigin::NotBuilt { index_from: self.index_from })
        } else {
            match AnnIndex::load(&dir, version) {
                Ok(index) => (Some(index), IndexOrigin::Loaded { seconds: started.elapsed().as_secs_f64() }),
                Err(why) => {
                    let index = build_index(&checkpoint.model, checkpoint.report.rounds > 0)?;
                    let seconds = started.elapsed().as_secs_f64();
                    // Saving again is best effort: the index in memory is complete either way.
                    let saved = save_index(self.store.path(), version, &index).is_ok();
                    (Some(index), IndexOrigin::Rebuilt { seconds, why: why.to_string(), saved })
                }
            }
        };
        let snapshot = Arc::new(Snapshot::new(checkpoint, version, index, origin));
        self.model.store(Some(snapshot.clone()));
        Ok(snapshot)
    }

    /// Recomputes the vectors of items from their current users with the current model and
    /// puts them in the index: an item that arrived after TRAIN becomes recommendable, one
    /// whose users changed moves. Returns how many items got a vector. The old point of a
    /// refreshed item is filtered from then on; when stale points pass
    /// [`REBUILD_STALE_SHARE`] of the index it is rebuilt in the background, and queries keep
    /// using the old one until the new one is swapped in. Refreshed vectors live with the
    /// model version in memory: the next TRAIN (or a reopen) starts from the model's.
    ///
    /// Cost: the item's edges and, for the strengths, each of its users' edges.
    pub fn refresh_items(&self, items: &[&str]) -> Result<usize> {
        let snapshot = self.snapshot()?;
        let model = &snapshot.model;
        let mut vectors = Vec::with_capacity(items.len());
        for name in items {
            let item = self.store.require_node(NodeKind::Item, name)?;
            let mut neighbours = Vec::new();
            for n in self.store.neighbours(NodeKind::Item, item, None)? {
                // An edge's strength depends on its rank in the user's history.
                let records: Vec<EdgeRecord> = self
                    .store
                    .neighbours(NodeKind::User, n.node, None)?
                    .into_iter()
                    .map(|e| EdgeRecord {
                        user: n.node,
                        edge_type: e.edge_type,
                        item: e.node,
                        value: e.value,
                    })
                    .collect();
                let strength = edge_strengths(&records, model.hyper.recency, model.hyper.weight_power);
                let at = records.iter().position(|r| r.item == item && r.edge_type == n.edge_type);
                if let Some(at) = at {
                    neighbours.push((n.node, n.edge_type, strength[at]));
                }
            }
            if let Some(v) = model.item_vector_from(item, neighbours) {
                vectors.push((item, v));
            }
        }
        let refreshed = vectors.len();
        snapshot.refresh(vectors)?;
        Ok(refreshed)
    }

    /// The item index of the current model (loading the model if it is not yet).
    pub fn index_info(&self) -> Result<IndexInfo> {
        let snapshot = self.snapshot()?;
        let dir = index_dir(self.store.path(), snapshot.version);
        let disk_bytes = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(|e| Some(e.ok()?.metadata().ok()?.len())).sum())
            .unwrap_or(0);
        let items = snapshot.read_items();
        let index = items.index.as_ref();
        Ok(IndexInfo {
            model_version: snapshot.version,
            items: items.count,
            stale: index.map_or(0, AnnIndex::stale),
            overflow: index.map_or(0, AnnIndex::overflow),
            fresh: items.fresh.len(),
            rebuilding: snapshot.is_rebuilding(),
            memory_bytes: index.map_or(0, AnnIndex::memory_bytes),
            disk_bytes,
            origin: items.origin.clone(),
        })
    }

    /// The k items the model scores highest for a user (the planner chooses how).
    pub fn recommend(
        &self,
        user: &str,
        k: usize,
        exclude_seen: bool,
        target: Option<&str>,
    ) -> Result<Recommendations> {
        let mut options = RecommendOptions::new(k);
        options.exclude_seen = exclude_seen;
        options.target = target.map(str::to_owned);
        self.recommend_with(user, &options)
    }

    /// RECOMMEND with every option spelled out.
    pub fn recommend_with(&self, user: &str, options: &RecommendOptions) -> Result<Recommendations> {
        self.run_recommend(user, options, false)
    }

    /// How a RECOMMEND would be answered, without answering it.
    pub fn explain_recommend(&self, user: &str, options: &RecommendOptions) -> Result<Plan> {
        Ok(self.run_recommend(user, options, true)?.plan)
    }

    fn run_recommend(
        &self,
        user: &str,
        options: &RecommendOptions,
        plan_only: bool,
    ) -> Result<Recommendations> {
        check_k(options.k)?;
        let snapshot = self.snapshot()?;
        let u = self.store.require_node(NodeKind::User, user)?;
        let t = self.target_index(&snapshot, options.target.as_deref())?;
        let edges = self.store.neighbours(NodeKind::User, u, None)?;
        let items = snapshot.read_items().count;
        if edges.is_empty() {
            let plan = Plan {
                method: Method::Popular,
                reason: format!("user '{user}' has no edges: the model has nothing to go on"),
                items,
                excluded: 0,
            };
            if plan_only {
                return Ok(Recommendations { items: Vec::new(), model_version: snapshot.version, plan });
            }
            return self.popular(&snapshot, options.k, plan);
        }
        let excluded: HashSet<NodeId> =
            if options.exclude_seen { edges.iter().map(|n| n.node).collect() } else { HashSet::new() };
        let UserQuery { vector, boost } = self.user_query(&snapshot, u, t)?;
        let query = Query { snapshot: &snapshot, vector, boost, k: options.k, excluded };
        let plan = self.plan(&query, options.strategy, options.ef);
        if plan_only {
            return Ok(Recommendations { items: Vec::new(), model_version: snapshot.version, plan });
        }
        self.answer(&query, plan)
    }

    /// The k items whose vectors the model finds closest to an item's: the items a user
    /// who liked just this item would be recommended (the item's vector, times the mean
    /// relation, is the query).
    pub fn similar(&self, item: &str, k: usize) -> Result<Recommendations> {
        self.run_similar(item, k, Strategy::Auto, false)
    }

    /// How a SIMILAR would be answered, without answering it.
    pub fn explain_similar(&self, item: &str, k: usize) -> Result<Plan> {
        Ok(self.run_similar(item, k, Strategy::Auto, true)?.plan)
    }

    fn run_similar(
        &self,
        item: &str,
        k: usize,
        strategy: Strategy,
        plan_only: bool,
    ) -> Result<Recommendations> {
        check_k(k)?;
        let snapshot = self.snapshot()?;
        let i = self.store.require_node(NodeKind::Item, item)?;
        let model = &snapshot.model;
        let vector = {
            let items = snapshot.read_items();
            let v = items.vector(model, i).ok_or_else(|| not_placed(item, snapshot.version))?;
            model.query_vector(v, &model.relation(None))
        };
        let query = Query { snapshot: &snapshot, vector, boost: Vec::new(), k, excluded: HashSet::from([i]) };
        let plan = self.plan(&query, strategy, None);
        if plan_only {
            return Ok(Recommendations { items: Vec::new(), model_version: snapshot.version, plan });
        }
        self.answer(&query, plan)
    }

    /// Chooses between the index and exact scoring.
    fn plan(&self, query: &Query<'_>, strategy: Strategy, ef: Option<usize>) -> Plan {
        let items = query.snapshot.read_items().count;
        let excluded = query.excluded.len();
        let ef = ef.unwrap_or_else(|| AnnParams::default().ef_search).max(query.k);
        let empty = items == 0;
        let (method, reason) = match strategy {
            Strategy::Auto if empty => (Method::Exact, "no item has a vector".to_owned()),
            Strategy::Index => (Method::Index { ef }, "asked for".to_owned()),
            Strategy::Exact => (Method::Exact, "asked for".to_owned()),
            Strategy::Auto if items < EXACT_BELOW => (
                Method::Exact,
                format!(
                    "{items} items: fewer than {EXACT_BELOW}, every item is scored (exact, no index to keep)"
                ),
            ),
            Strategy::Auto if excluded * 2 > items => (
                Method::Exact,
                format!("{excluded} of {items} items excluded: too selective a filter for the index"),
            ),
            Strategy::Auto if query.k * 4 > items => {
                (Method::Exact, format!("TOP {} asks for a large share of {items} items", query.k))
            }
            Strategy::Auto => {
                (Method::Index { ef }, format!("{items} items, {excluded} excluded during the search"))
            }
        };
        Plan { method, reason, items, excluded }
    }

    fn answer(&self, query: &Query<'_>, mut plan: Plan) -> Result<Recommendations> {
        let version = query.snapshot.version;
        if let Method::Index { ef } = plan.method {
            query.snapshot.ensure_index()?;
            if let Some(items) = self.search_index(query, ef)? {
                return Ok(Recommendations { items, model_version: version, plan });
            }
            plan.method = Method::Exact;
            plan.reason =
                format!("{}; the index found fewer than {}, so every item was scored", plan.reason, query.k);
        }
        let items = self.score_all(query)?;
        Ok(Recommendations { items, model_version: version, plan })
    }

    /// Names the scored items, best first; a deleted item is buried and skipped.
    fn name_items(
        &self,
        snapshot: &Snapshot,
        scored: &[(NodeId, f32)],
    ) -> Result<(Vec<Recommendation>, bool)> {
        let mut named = Vec::with_capacity(scored.len());
        let mut buried = false;
        for &(i, score) in scored {
            match self.store.node_name(NodeKind::Item, i)? {
                Some(item) => named.push(Recommendation { item, score }),
                None => {
                    snapshot.bury(i);
                    buried = true;
                }
            }
        }
        Ok((named, buried))
    }

    /// The index's answer, or `None` when it cannot find k items (a filter too selective
    /// for the graph walk): the caller then scores every item.
    fn search_index(&self, query: &Query<'_>, ef: usize) -> Result<Option<Vec<Recommendation>>> {
        let snapshot = query.snapshot;
        // A deleted item found among the results is buried and the search repeated; after
        // a few rounds exact scoring takes over.
        for _ in 0..3 {
            let (hits, available) = {
                let items = snapshot.read_items();
                let tombstones = snapshot.tombstones.read().unwrap_or_else(|e| e.into_inner());
                let allow = |id: u32| !query.excluded.contains(&id) && !tombstones.contains(&id);
                let excluded = query.excluded.iter().filter(|&&i| items.vector(&snapshot.model, i).is_some());
                let Some(index) = &items.index else { return Ok(None) };
                let available = index.len().saturating_sub(excluded.count());
                let mut hits = index.search(&query.vector, query.k, ef, &allow);
                if !query.boost.is_empty() {
                    // The co-visitation term is never negative, so the best k by the whole
                    // score are among the best k by inner product and the boosted items.
                    let found: HashSet<NodeId> = hits.iter().map(|&(i, _)| i).collect();
                    for (i, score) in hits.iter_mut() {
                        *score += boost_of(&query.boost, *i);
                    }
                    for &(i, b) in &query.boost {
                        if !found.contains(&i) && allow(i) {
                            if let Some(v) = items.vector(&snapshot.model, i) {
                                hits.push((i, dot(&query.vector, v) + b));
                            }
                        }
                    }
                    hits.sort_by(best_first);
                    hits.truncate(query.k);
                }
                (hits, available)
            };
            let (named, buried) = self.name_items(snapshot, &hits)?;
            if named.len() >= query.k {
                return Ok(Some(named));
            }
            if !buried {
                // Everything found was alive and still short of k: enough when that is all
                // there is.
                return Ok((named.len() >= available).then_some(named));
            }
        }
        Ok(None)
    }

    /// Scores every item; takes the best until k named ones are found.
    fn score_all(&self, query: &Query<'_>) -> Result<Vec<Recommendation>> {
        let snapshot = query.snapshot;
        let model = &snapshot.model;
        let mut scored: Vec<(NodeId, f32)> = {
            let items = snapshot.read_items();
            let tombstones = snapshot.tombstones.read().unwrap_or_else(|e| e.into_inner());
            items
                .ids(model)
                .filter(|i| !query.excluded.contains(i) && !tombstones.contains(i))
                .filter_map(|i| {
                    Some((i, dot(&query.vector, items.vector(model, i)?) + boost_of(&query.boost, i)))
                })
                .collect()
        };
        let mut items = Vec::with_capacity(query.k.min(scored.len()));
        // Deleted items have no name any more and are never returned; they are rare enough
        // that one round is usual.
        while items.len() < query.k && !scored.is_empty() {
            let want = (query.k - items.len()).min(scored.len());
            if want < scored.len() {
                scored.select_nth_unstable_by(want, best_first);
            }
            let mut round: Vec<(NodeId, f32)> = scored.drain(..want).collect();
            round.sort_by(best_first);
            items.extend(self.name_items(snapshot, &round)?.0);
        }
        Ok(items)
    }

    fn popular(&self, snapshot: &Snapshot, k: usize, plan: Plan) -> Result<Recommendations> {
        let mut items = Vec::with_capacity(k);
        for &(i, users) in &snapshot.popular {
            if items.len() == k {
                break;
            }
            if let Some(item) = self.store.node_name(NodeKind::Item, i)? {
                items.push(Recommendation { item, score: users as f32 });
            }
        }
        Ok(Recommendations { items, model_version: snapshot.version, plan })
    }
}

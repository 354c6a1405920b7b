//! Approximate maximum-inner-product (MIPS) item index on top of `hnsw_rs` 0.3.5.
//!
//! The model scores item `i` for a query (user) vector `q` with the inner product `q · g(i)`,
//! higher is better. [`AnnIndex`] returns the (approximately) best `k` items for a query,
//! restricted by an id filter, with exact scores.
//!
//! # Geometry: an inner-product graph, not the L2 reduction
//!
//! The textbook way to run MIPS on a nearest-neighbour index is the "XBOX" reduction: store
//! `x' = [x, sqrt(M² - |x|²)]`, search `q' = [q, 0]`, so that `|q' - x'|² = |q|² + M² - 2 q·x`.
//! We implemented and measured it (see NOTES.md): with hnsw_rs it reaches only recall@10 ≈ 0.47
//! at ef = 64 on 100k clustered embeddings with log-normal norms (≈ 0.54 even on 5k random
//! points whose norms vary by 2×), because hnsw_rs shrinks an overfull neighbour list by
//! dropping its *farthest* entry, and after the lift the large-norm items, which are exactly the
//! MIPS answers, are the sparse "outliers" that lose their in-links. The normalised/cosine
//! variant of the same reduction has the same geometry and the same problem.
//!
//! Instead the graph is built and searched directly with the inner product (as hnswlib's `ip`
//! space and FAISS' `METRIC_INNER_PRODUCT` HNSW do; Morozov & Babenko 2018, "ip-NSW"):
//! hnsw_rs needs a non-negative "distance", so we use
//!
//! ```text
//! d(a, b) = C - a·b,   C = 1.01 · M²,   M = NORM_HEADROOM · max build-time item norm,
//! ```
//!
//! and scale every query to norm `M` first (which does not change its inner-product order).
//! Then `|a·b| ≤ M² < C` for every item pair and every (scaled query, item) pair, so `d > 0`,
//! and for a fixed query ascending `d` is exactly descending `q·x`. Measured with hnsw_rs' own
//! search on 1M clustered 64-d items with 50 "seen" ids excluded per query: recall@10 0.984 at
//! ef = 96, 0.993 at ef = 128 (NOTES.md).
//!
//! Items inserted later with `|x| > M` would break `d ≥ 0`; they are *not* put in the graph but
//! kept in an "overflow" list that is scored by brute force on every query, so they are never
//! missed ([`AnnIndex::overflow`] counts them; rebuild when it grows, a rebuild recomputes `M`).
//!
//! # The walk: hnsw_rs builds and stores the graph, the search reads a flat copy
//!
//! hnsw_rs inserts points (in parallel), keeps the graph and dumps/reloads it. Its own search
//! is slow for serving: every point sits behind an `Arc` and a lock, every candidate is a new
//! allocation, the visited set is a hash map, the upper layers get one greedy step each instead
//! of a descent to a local optimum, and with a filter (we always have one: seen items, stale
//! points) it never takes the early exit, expanding every candidate it ever queued. So after a
//! build or a load the links are copied into flat arrays (`Links`: layer 0 as one CSR of
//! slots, the few upper-layer points in a map) and searched with the textbook walk: greedy
//! descent through the upper layers, then best-first search of layer 0 over the contiguous
//! vector store with a per-thread stamped visited array, keeping the `ef` best admitted points
//! and stopping when no queued candidate can beat the worst of them. Measured side by side on
//! 194k synthetic items (TOP 10 EXCLUDE SEEN, ef 96, `gnnrec-bench serve --items 200000
//! --edges 1000000`): p50 2.37 -> 0.80 ms, p99 5.58 -> 1.29 ms, recall@10 0.989 -> 0.984.
//! Points inserted later are scored exactly on every search until there are more than
//! `UNLINKED_MAX` (or 1/64 of the graph), when the links are copied again.
//!
//! # Filters
//!
//! A filter is applied *during* the walk: rejected points still route it but never enter the
//! result list. Inner-product graphs are hub-centred, though: low- and mid-norm items have few
//! in-links, so when the filter rejects most of the best items the walk cannot reach the
//! allowed ones (measured at 1M with max_connections 16, ef = 64: recall@10 0.97 when half of
//! the ids pass, 0.89 at a quarter, 0.66 at a tenth; 0.995 at a half with 32), and a walk
//! whose result list does not fill keeps expanding candidates, which costs time. So `search`
//! first estimates the fraction of live ids the filter admits from a fixed pseudo-random sample
//! of [`SELECTIVITY_SAMPLE`] ids; below [`EXACT_SCAN_BELOW`] it answers with an exact scan
//! ([`AnnIndex::search_exact`]) of the contiguous vector store instead. Non-selective filters
//! ("not already seen") take the graph.
//!
//! # Scores, ties and breadth
//!
//! The walk returns up to `ef` admitted candidates; they (and the overflow and not yet linked
//! points) are scored with the exact inner product from the stored vector, sorted by
//! descending score with ties to the smaller id, and cut to `k`.
//!
//! # Ids, re-inserts and stale points
//!
//! Items are identified by a dense `u32` id (`u32::MAX` is reserved; memory for the id table is
//! 4 bytes × the largest id). hnsw_rs cannot delete, so every point gets an internal *slot*
//! (its hnsw `DataId`); we keep `slot -> id` and `id -> slot` tables. Re-inserting an id adds a
//! new point and marks the old slot stale; stale points are rejected by the search filter (they
//! still route the walk), are counted by [`AnnIndex::stale`], and cost memory until a rebuild.
//!
//! # Memory
//!
//! Besides the hnsw_rs graph (which keeps its own copy of every vector), the index keeps all
//! vectors in one contiguous `Vec<f32>` (4·dim bytes per slot) for the walk, re-scoring and exact
//! scans (hnsw_rs only offers per-point, lock-taking, allocating access to its copy, or layer
//! iterators that chase pointers: a 1M exact scan took 140 ms that way, 33 ms with the store),
//! and the copied links (8 bytes per slot plus 4 per layer-0 link).
//!
//! # Concurrency
//!
//! [`AnnIndex`] is `Send + Sync`; `search` takes `&self` and may run on many threads. `insert`
//! takes `&mut self` (hnsw_rs inserts through `&self`, but our tables are plain vectors): keep a
//! shared index in an `RwLock`, or rebuild and swap an `Arc`.

#![deny(unsafe_code)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use hnsw_rs::anndists::dist::distances::Distance;

use crate::model::dot;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::{Hnsw, Point};
use hnsw_rs::hnswio::HnswIo;

/// `M` = this factor × the largest item norm present when the graph is started, so that later
/// items up to 5 % longer still go into the graph.
pub const NORM_HEADROOM: f32 = 1.05;
/// `search` uses an exact scan when the estimated fraction of live ids admitted by the filter is
/// below this value (see the module docs for the measurements behind it).
pub const EXACT_SCAN_BELOW: f64 = 0.3;
/// Number of live ids probed to estimate a filter's selectivity (a fixed pseudo-random sample).
pub const SELECTIVITY_SAMPLE: usize = 256;

/// Points inserted since the links were copied that are scored exactly on every search
/// before the links are copied again (or 1/64 of the graph, if more).
const UNLINKED_MAX: usize = 4096;

/// Slot marker in `slot_ids` for a point superseded by a re-insert.
const TOMBSTONE: u32 = u32::MAX;
/// Marker in `id_slots` for an id that is not in the index.
const NO_SLOT: u32 = u32::MAX;
/// `hnsw_rs` refuses to dump a graph whose layer count is not its `NB_LAYER_MAX` (16).
const NB_LAYERS: usize = 16;
/// `C = DIST_SLACK · M²` in the graph distance.
const DIST_SLACK: f32 = 1.01;

const META_FILE: &str = "ann.meta";
const META_TMP_PREFIX: &str = "ann.meta.tmp-";
const DUMP_PREFIX: &str = "ann-v";
const GRAPH_SUFFIX: &str = ".hnsw.graph";
const DATA_SUFFIX: &str = ".hnsw.data";
const META_MAGIC: [u8; 8] = *b"GNNRANN\0";
const META_FORMAT_VERSION: u32 = 1;

// -------------------------------------------------------------------------------------------------
// Parameters and errors
// -------------------------------------------------------------------------------------------------

/// HNSW parameters. The defaults come from `annbench` runs on 1M clustered 64-d items on a
/// 2-core machine (NOTES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnParams {
    /// Links per point in the upper layers; layer 0 keeps up to twice as many. 2..=255.
    /// With the inner-product graph, the neighbour-selection heuristic keeps far fewer links than
    /// this cap; the cap mostly decides how long reverse links survive (32 lifted recall@10 at
    /// 1M from 0.974 to 0.993 at ef 128 over 16, at the same memory and build time).
    pub max_connections: usize,
    /// Candidate list size while inserting (build quality vs build time). Must exceed
    /// `2 * max_connections`: otherwise hnsw_rs links a new point to *all* its layer-0 candidates
    /// without its diversity heuristic (measured: 3× memory, recall 0.6).
    pub ef_construction: usize,
    /// Default search breadth, used when `search` is called with `ef == 0`. 192: with the
    /// early-stopping walk, on 969k items of a trained model (`gnnrec-bench serve --items
    /// 1000000`, TOP 10 EXCLUDE SEEN) recall@10 was 0.944 at ef 96, 0.968 at 128 and 0.987 at
    /// 192, p99 0.88, 1.04 and 1.38 ms.
    pub ef_search: usize,
}

impl Default for AnnParams {
    fn default() -> Self {
        AnnParams { max_connections: 32, ef_construction: 100, ef_search: 192 }
    }
}

/// Catalogues smaller than this are built with [`DENSE_EF_CONSTRUCTION`].
pub const DENSE_BUILD_BELOW: usize = 50_000;
/// `ef_construction` for small catalogues, where building is cheap: on MovieLens (7,516
/// items) it lifted recall@10 at ef 192 from 0.976 to 0.997 for a build of 1.9 s instead of
/// 0.5 s. At 1M items the default (100) already takes a quarter of an hour on 2 cores.
pub const DENSE_EF_CONSTRUCTION: usize = 400;

impl AnnParams {
    /// The parameters for a catalogue of `items` items.
    pub fn for_items(items: usize) -> AnnParams {
        let params = AnnParams::default();
        if items < DENSE_BUILD_BELOW {
            AnnParams { ef_construction: DENSE_EF_CONSTRUCTION, ..params }
        } else {
            params
        }
    }
}

/// Errors of the ANN index. Every file-related variant names the file.
#[derive(Debug)]
pub enum AnnError {
    /// Bad arguments: dimension mismatch, non-finite values, reserved id, bad parameters.
    InvalidInput(String),
    /// A file or directory that should exist does not.
    Missing { path: PathBuf },
    /// An I/O operation failed.
    Io { path: PathBuf, source: io::Error },
    /// The saved index was built for another model version.
    VersionMismatch { path: PathBuf, found: u64, expected: u64 },
    /// A file is truncated, has a wrong checksum or does not parse.
    Corrupt { path: PathBuf, reason: String },
    /// `hnsw_rs` reported an error (or panicked) while dumping or reloading the graph.
    Hnsw { path: PathBuf, reason: String },
}

impl fmt::Display for AnnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnnError::InvalidInput(msg) => write!(f, "ann index: invalid input: {msg}"),
            AnnError::Missing { path } => write!(f, "ann index: missing file {}", path.display()),
            AnnError::Io { path, source } => {
                write!(f, "ann index: I/O error on {}: {source}", path.display())
            }
            AnnError::VersionMismatch { path, found, expected } => write!(
                f,
                "ann index: {} holds model version {found}, expected version {expected}",
                path.display()
            ),
            AnnError::Corrupt { path, reason } => {
                write!(f, "ann index: corrupt file {}: {reason}", path.display())
            }
            AnnError::Hnsw { path, reason } => {
                write!(f, "ann index: hnsw_rs failed on {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for AnnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AnnError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(path: &Path, source: io::Error) -> AnnError {
    if source.kind() == io::ErrorKind::NotFound {
        AnnError::Missing { path: path.to_path_buf() }
    } else {
        AnnError::Io { path: path.to_path_buf(), source }
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> AnnError {
    AnnError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}

// -------------------------------------------------------------------------------------------------
// Distance and small numeric kernels
// -------------------------------------------------------------------------------------------------

/// `d(a, b) = max(C - a·b, 0)` (see the module docs). hnsw_rs writes this type's name into the
/// graph file and checks it on reload, so renaming the type or its module makes existing dumps
/// unloadable (`load` then fails with `AnnError::Hnsw` and the caller rebuilds).
#[derive(Debug, Clone, Copy)]
struct IpDist {
    c: f32,
}

impl Distance<f32> for IpDist {
    #[inline]
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (self.c - dot(va, vb)).max(0.0)
    }
}

/// Best-first order: descending score, ties to the smaller id.
#[inline]
fn better(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

fn rank(results: &mut Vec<(u32, f32)>, k: usize) {
    results.sort_unstable_by(better);
    results.truncate(k);
}

/// Keeps the best `k` of a stream without sorting the whole stream.
struct TopK {
    k: usize,
    buf: Vec<(u32, f32)>,
    /// Score of the current k-th best once `buf` has been trimmed; items below it are skipped.
    floor: f32,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK { k, buf: Vec::with_capacity(4 * k.min(1 << 16)), floor: f32::NEG_INFINITY }
    }

    #[inline]
    fn push(&mut self, id: u32, score: f32) {
        if score < self.floor {
            return;
        }
        self.buf.push((id, score));
        if self.buf.len() >= 4 * self.k {
            rank(&mut self.buf, self.k);
            self.floor = self.buf[self.k - 1].1;
        }
    }

    fn finish(mut self) -> Vec<(u32, f32)> {
        rank(&mut self.buf, self.k);
        self.buf
    }
}

/// splitmix64: a fixed pseudo-random sequence for selectivity sampling.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn check_vector(dim: usize, id: u32, v: &[f32]) -> Result<f32, AnnError> {
    if id == TOMBSTONE {
        return Err(AnnError::InvalidInput(format!("id {id} (u32::MAX) is reserved")));
    }
    if v.len() != dim {
        return Err(AnnError::InvalidInput(format!(
            "item {id} has dimension {}, index dimension is {dim}",
            v.len()
        )));
    }
    let norm2 = dot(v, v);
    // The bound keeps C = 1.01 · (1.05 · |x|)² finite.
    if !v.iter().all(|x| x.is_finite()) || !norm2.is_finite() || norm2 >= f32::MAX / 2.0 {
        return Err(AnnError::InvalidInput(format!("item {id} has a non-finite coordinate or a huge norm")));
    }
    Ok(norm2)
}

fn check_params(dim: usize, params: &AnnParams) -> Result<(), AnnError> {
    if dim == 0 || dim >= u32::MAX as usize {
        return Err(AnnError::InvalidInput(format!("dimension {dim} out of range")));
    }
    if !(2..=255).contains(&params.max_connections) {
        // hnsw_rs exits the process above 256 and stores the value as a u8.
        return Err(AnnError::InvalidInput(format!(
            "max_connections {} must be in 2..=255",
            params.max_connections
        )));
    }
    if params.ef_construction <= 2 * params.max_connections || params.ef_construction > u32::MAX as usize {
        return Err(AnnError::InvalidInput(format!(
            "ef_construction {} must exceed 2 * max_connections ({}) and be below 2^32",
            params.ef_construction,
            2 * params.max_connections
        )));
    }
    if params.ef_search > u32::MAX as usize {
        return Err(AnnError::InvalidInput("ef_search must be below 2^32".into()));
    }
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// The owned graph (self_cell: HnswIo owner + Hnsw borrowing it)
// -------------------------------------------------------------------------------------------------

type Graph<'a> = Hnsw<'a, f32, IpDist>;

self_cell::self_cell!(
    /// `HnswIo::load_hnsw*` returns an `Hnsw<'b>` that borrows the `HnswIo` (only needed for mmap
    /// reloads). The cell owns both, so the index is `'static`, without unsafe code of ours and
    /// without leaking. A freshly built graph uses an empty `HnswIo::default()` owner.
    struct GraphCell {
        owner: HnswIo,
        #[not_covariant]
        dependent: Graph,
    }
);

fn new_graph_cell(params: &AnnParams, max_norm: f32, capacity: usize) -> GraphCell {
    GraphCell::new(HnswIo::default(), |_| new_graph(params, max_norm, capacity))
}

fn new_graph<'a>(params: &AnnParams, max_norm: f32, capacity: usize) -> Graph<'a> {
    let dist = IpDist { c: DIST_SLACK * max_norm * max_norm };
    Hnsw::new(params.max_connections, capacity.max(1), NB_LAYERS, params.ef_construction, dist)
}

// -------------------------------------------------------------------------------------------------
// The index
// -------------------------------------------------------------------------------------------------

/// Statistics from a walk over the graph, used by `memory_bytes`.
#[derive(Debug, Clone, Copy)]
struct LinkStats {
    points: usize,
    links: usize,
    lists: usize,
}

/// Maximum-inner-product index over `(u32 id, f32 vector)` items. See the module docs.
pub struct AnnIndex {
    dim: usize,
    params: AnnParams,
    /// `M`: every graph point has norm ≤ M.
    max_norm: f32,
    graph: GraphCell,
    /// Number of points in the hnsw graph.
    graph_points: usize,
    /// All vectors, slot-major (`dim` floats per slot, stale slots included).
    vectors: Vec<f32>,
    /// slot (hnsw DataId) -> item id, or TOMBSTONE when superseded.
    slot_ids: Vec<u32>,
    /// item id -> live slot, or NO_SLOT.
    id_slots: Vec<u32>,
    /// Live slots whose norm exceeds `max_norm`: not in the graph, scored by brute force. Sorted.
    overflow: Vec<u32>,
    live: usize,
    stale: usize,
    link_stats: OnceLock<LinkStats>,
    /// The graph's links, copied out of hnsw_rs for the walk; covers slots `0..links.slots`.
    links: Links,
}

const _: fn() = || {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<AnnIndex>();
};

impl fmt::Debug for AnnIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnnIndex")
            .field("dim", &self.dim)
            .field("params", &self.params)
            .field("max_norm", &self.max_norm)
            .field("len", &self.live)
            .field("stale", &self.stale)
            .field("overflow", &self.overflow.len())
            .finish()
    }
}

impl AnnIndex {
    /// Builds an index from `(id, vector)` pairs, inserting in parallel on the rayon global pool
    /// (all cores). If an id occurs several times, its last occurrence wins (no stale point).
    ///
    /// Returns `Result` (not a bare `AnnIndex`) because input is validated: an error for a vector
    /// of the wrong dimension, a non-finite value, the reserved id `u32::MAX` or bad parameters.
    /// Building from no items is allowed; `M` is then set by the first insert.
    pub fn build(dim: usize, items: &[(u32, &[f32])], params: &AnnParams) -> Result<AnnIndex, AnnError> {
        check_params(dim, params)?;
        if items.len() >= TOMBSTONE as usize - 1 {
            return Err(AnnError::InvalidInput("too many items".into()));
        }
        let mut max_id = None;
        let mut max_norm2 = 0f32;
        for (id, v) in items {
            max_norm2 = max_norm2.max(check_vector(dim, *id, v)?);
            max_id = max_id.max(Some(*id));
        }
        let id_range = max_id.map_or(0, |m| m as usize + 1);
        // Last occurrence wins: keep item i only if no later item has the same id.
        let mut last = vec![usize::MAX; id_range];
        for (i, (id, _)) in items.iter().enumerate() {
            last[*id as usize] = i;
        }
        let keep: Vec<usize> = (0..items.len()).filter(|&i| last[items[i].0 as usize] == i).collect();
        drop(last);

        let max_norm = max_norm2.sqrt() * NORM_HEADROOM;
        let mut vectors = Vec::with_capacity(keep.len() * dim);
        for &i in &keep {
            vectors.extend_from_slice(items[i].1);
        }
        let graph = GraphCell::new(HnswIo::default(), |_| {
            let graph = new_graph(params, max_norm, keep.len());
            let refs: Vec<(&[f32], usize)> =
                vectors.chunks_exact(dim).enumerate().map(|(s, v)| (v, s)).collect();
            graph.parallel_insert_slice(&refs);
            graph
        });

        let slot_ids: Vec<u32> = keep.iter().map(|&i| items[i].0).collect();
        let mut id_slots = vec![NO_SLOT; id_range];
        for (slot, &id) in slot_ids.iter().enumerate() {
            id_slots[id as usize] = slot as u32;
        }
        Ok(AnnIndex {
            dim,
            params: *params,
            max_norm,
            graph,
            graph_points: slot_ids.len(),
            vectors,
            live: slot_ids.len(),
            slot_ids,
            id_slots,
            overflow: Vec::new(),
            stale: 0,
            link_stats: OnceLock::new(),
            links: Links::default(),
        }
        .with_links())
    }

    /// Copies the graph's links out of hnsw_rs (after a build, a load, or enough inserts).
    fn with_links(mut self) -> AnnIndex {
        self.links = Links::copy(&self.graph, self.slot_ids.len());
        self
    }

    /// Up to `k` ids, best first by inner product with `query`, restricted to ids for which
    /// `allow(id)` is true, each with its exact inner product computed from the stored vector.
    /// Equal scores are ordered by the smaller id.
    ///
    /// `allow` is first probed on a fixed sample of live ids. If it admits at least
    /// [`EXACT_SCAN_BELOW`] of them, the graph is walked with the filter applied during the
    /// walk ([`AnnIndex::search_graph`]); `ef` is the breadth of the walk (`0` = the index
    /// default `ef_search`; the value used is `max(ef, k)`, at least 2, at most the graph
    /// size). Otherwise the answer comes from an exact scan ([`AnnIndex::search_exact`]), which
    /// is both cheaper and correct for selective filters.
    ///
    /// Fewer than `k` results come back when fewer than `k` live ids pass the filter; on the graph
    /// path also, rarely, when a fairly selective filter leaves the allowed points unreachable
    /// (and in that regime some results may be worse than the true top `k`).
    ///
    /// Returns an empty list for `k == 0` and for a query with a non-finite coordinate.
    /// Panics if `query.len() != self.dim()`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<(u32, f32)> {
        if self.unanswerable(query, k) {
            return Vec::new();
        }
        if self.allowed_fraction(allow) < EXACT_SCAN_BELOW {
            self.search_exact(query, k, allow)
        } else {
            self.search_graph(query, k, ef, allow)
        }
    }

    /// The graph path of [`AnnIndex::search`], whatever the filter's selectivity.
    pub fn search_graph(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<(u32, f32)> {
        if self.unanswerable(query, k) {
            return Vec::new();
        }
        let found =
            if self.graph_points > 0 { self.walk(query, self.breadth(ef, k), allow) } else { Vec::new() };
        self.finish(query, k, &found, allow)
    }

    /// The walk's breadth: `ef` (0 = the default), at least `k` and 2, at most the graph.
    fn breadth(&self, ef: usize, k: usize) -> usize {
        let ef = if ef == 0 { self.params.ef_search } else { ef };
        ef.max(k).min(self.graph_points).max(2)
    }

    /// Whether a slot is live and its id passes the filter.
    #[inline]
    fn admits(&self, slot: usize, allow: &(dyn Fn(u32) -> bool + Sync)) -> bool {
        match self.slot_ids.get(slot) {
            Some(&id) => id != TOMBSTONE && allow(id),
            None => false,
        }
    }

    /// The admitted slots a walk of breadth `ef` finds in the copied links: a greedy descent
    /// through the upper layers, then a best-first search of layer 0 that keeps the `ef` best
    /// admitted points and stops once no queued candidate can improve them (rejected points
    /// still route the walk).
    fn walk(&self, query: &[f32], ef: usize, allow: &(dyn Fn(u32) -> bool + Sync)) -> Vec<usize> {
        let links = &self.links;
        let Some(mut here) = links.entry else { return Vec::new() };
        let score = |slot: u32| Score(dot(query, self.vector(slot as usize)));
        let mut best = score(here);
        for layer in (1..=links.top).rev() {
            loop {
                let mut moved = false;
                for &n in links.upper(here, layer) {
                    let s = score(n);
                    if s > best {
                        (here, best, moved) = (n, s, true);
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        VISITED.with(|visited| {
            let mut visited = visited.borrow_mut();
            visited.start(links.slots);
            let mut queue: BinaryHeap<(Score, u32)> = BinaryHeap::with_capacity(4 * ef);
            let mut kept: BinaryHeap<Reverse<(Score, u32)>> = BinaryHeap::with_capacity(ef + 1);
            visited.insert(here);
            queue.push((best, here));
            if self.admits(here as usize, allow) {
                kept.push(Reverse((best, here)));
            }
            while let Some((s, c)) = queue.pop() {
                let full = kept.len() >= ef;
                if full && kept.peek().is_some_and(|w| s < w.0 .0) {
                    break;
                }
                for &n in links.layer0(c) {
                    if !visited.insert(n) {
                        continue;
                    }
                    let sn = score(n);
                    if kept.len() < ef || kept.peek().is_some_and(|w| sn > w.0 .0) {
                        queue.push((sn, n));
                        if self.admits(n as usize, allow) {
                            kept.push(Reverse((sn, n)));
                            if kept.len() > ef {
                                kept.pop();
                            }
                        }
                    }
                }
            }
            kept.into_iter().map(|Reverse((_, slot))| slot as usize).collect()
        })
    }

    /// The best `k` admitted of the slots found and of the overflow list, exactly scored.
    fn finish(
        &self,
        query: &[f32],
        k: usize,
        found: &[usize],
        allow: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = Vec::with_capacity(found.len() + self.overflow.len());
        // Besides the walk's finds: items outside the graph, and points inserted since the
        // links were copied, all scored exactly.
        let linked = self.links.slots;
        let overflow = self.overflow.iter().map(|&s| s as usize).filter(|&s| s < linked);
        let slots = found.iter().copied().chain(overflow).chain(linked..self.slot_ids.len());
        for slot in slots {
            if self.admits(slot, allow) {
                out.push((self.slot_ids[slot], dot(query, self.vector(slot))));
            }
        }
        rank(&mut out, k);
        out
    }

    /// Exact top-`k` over all live ids passing `allow`: a scan of the contiguous vector store,
    /// O(n) filter calls plus one inner product per admitted item.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        allow: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<(u32, f32)> {
        self.check_query(query);
        if k == 0 || !query.iter().all(|x| x.is_finite()) {
            return Vec::new();
        }
        let mut top = TopK::new(k);
        for (slot, &id) in self.slot_ids.iter().enumerate() {
            if id != TOMBSTONE && allow(id) {
                top.push(id, dot(query, self.vector(slot)));
            }
        }
        top.finish()
    }

    #[cfg(test)]
    /// Exact scores of the given ids (absent ids skipped, duplicates once), best first, cut to `k`.
    pub fn score_ids(&self, query: &[f32], k: usize, ids: &[u32]) -> Vec<(u32, f32)> {
        self.check_query(query);
        if k == 0 || !query.iter().all(|x| x.is_finite()) {
            return Vec::new();
        }
        let mut out: Vec<(u32, f32)> = ids
            .iter()
            .filter_map(|&id| self.slot_of(id).map(|slot| (id, dot(query, self.vector(slot as usize)))))
            .collect();
        out.sort_unstable_by(better);
        out.dedup_by_key(|r| r.0);
        out.truncate(k);
        out
    }

    /// Adds an item, or replaces the vector of an existing id: the previous point of that id stays
    /// in the graph as a stale point and is never returned again. An item longer than `M` goes to
    /// the brute-force overflow list instead of the graph (see the module docs).
    ///
    /// Errors on bad input (see [`AnnIndex::build`]); the index is unchanged then.
    pub fn insert(&mut self, id: u32, vector: &[f32]) -> Result<(), AnnError> {
        let norm2 = check_vector(self.dim, id, vector)?;
        let slot = self.slot_ids.len();
        if slot >= TOMBSTONE as usize - 1 {
            return Err(AnnError::InvalidInput("index is full (2^32 - 2 slots)".into()));
        }
        if self.graph_points == 0 && self.overflow.is_empty() && norm2 > self.max_norm * self.max_norm {
            // Empty graph: M (baked into the graph's distance) can still be chosen.
            self.max_norm = norm2.sqrt() * NORM_HEADROOM;
            self.graph = new_graph_cell(&self.params, self.max_norm, 1024);
        }
        let in_graph = norm2 <= self.max_norm * self.max_norm;
        if in_graph {
            self.graph.with_dependent(|_, graph| graph.insert_slice((vector, slot)));
            self.graph_points += 1;
        }
        self.vectors.extend_from_slice(vector);

        let idx = id as usize;
        if idx >= self.id_slots.len() {
            self.id_slots.resize(idx + 1, NO_SLOT);
        }
        let old = self.id_slots[idx];
        if old == NO_SLOT {
            self.live += 1;
        } else {
            self.slot_ids[old as usize] = TOMBSTONE;
            self.stale += 1;
            if let Ok(pos) = self.overflow.binary_search(&old) {
                self.overflow.remove(pos);
            }
        }
        self.id_slots[idx] = slot as u32;
        self.slot_ids.push(id);
        if !in_graph {
            self.overflow.push(slot as u32);
        }
        if self.link_stats.get().is_some_and(|s| s.points * 2 < self.graph_points) {
            self.link_stats.take();
        }
        // Points inserted since the links were copied are scored exactly on every search;
        // copy again once they would cost more than a little.
        if self.slot_ids.len() - self.links.slots > UNLINKED_MAX.max(self.graph_points / 64) {
            self.links = Links::copy(&self.graph, self.slot_ids.len());
        }
        Ok(())
    }

    /// Number of live items (distinct ids).
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no live item is indexed.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Points superseded by re-inserts (they stay in the graph and the vector store until a rebuild).
    pub fn stale(&self) -> usize {
        self.stale
    }

    /// Live items longer than `M`, kept outside the graph and scored by brute force on every query.
    pub fn overflow(&self) -> usize {
        self.overflow.len()
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[cfg(test)]
    /// `M`: largest build-time norm times [`NORM_HEADROOM`].
    pub fn max_norm(&self) -> f32 {
        self.max_norm
    }

    /// The parameters the index was built with.
    pub fn params(&self) -> &AnnParams {
        &self.params
    }

    #[cfg(test)]
    /// True if `id` is a live item.
    pub fn contains(&self, id: u32) -> bool {
        self.slot_of(id).is_some()
    }

    #[cfg(test)]
    /// The stored vector of a live id.
    pub fn vector_of(&self, id: u32) -> Option<&[f32]> {
        self.slot_of(id).map(|slot| self.vector(slot as usize))
    }

    /// Estimated heap bytes held by the index.
    ///
    /// Computed from the hnsw_rs data layout, counting each heap block with a glibc-like overhead
    /// (8-byte header, 16-byte granularity, 32-byte minimum): per graph point an `Arc<Point>`
    /// block, its copy of the `dim` floats, an `Arc<RwLock<Vec<..>>>` block, the 16-entry
    /// per-layer table and one block per non-empty neighbour list; per link an 8-byte pointer
    /// plus a separate `Arc<PointWithOrder>` block (hnsw_rs allocates every link on its own);
    /// plus our vector store and id tables. Link counts come from one walk over the graph
    /// (cached; O(n), about 1 s per million points); points inserted since the walk are
    /// extrapolated with the measured average degree. Vec spare capacity and allocator
    /// fragmentation are not counted (the bench compares this with the process RSS).
    pub fn memory_bytes(&self) -> usize {
        fn block(bytes: usize) -> usize {
            ((bytes + 8 + 15) & !15).max(32)
        }
        let points = self.graph_points;
        let stats = *self.link_stats.get_or_init(|| self.count_links());
        let links = (stats.links * points)
            .checked_div(stats.points)
            .unwrap_or(points * 2 * self.params.max_connections);
        let lists = (stats.lists * points).checked_div(stats.points).unwrap_or(points);
        let ptr = std::mem::size_of::<usize>();
        let per_point = block(2 * ptr + std::mem::size_of::<Point<'static, f32>>())
            + block(self.dim * 4)
            + block(2 * ptr + ptr + 3 * ptr) // Arc counts + RwLock state + Vec header
            + block(NB_LAYERS * 3 * ptr)
            + ptr; // entry in hnsw_rs' points_by_layer
        let per_link = ptr + block(2 * ptr + ptr + 4);
        let per_list = 16; // allocation header and rounding of a neighbour list, amortised
        let ours = 4 * (self.vectors.capacity() + self.slot_ids.capacity() + self.id_slots.capacity())
            + 4 * self.overflow.capacity()
            + self.links.memory_bytes();
        points * per_point + links * per_link + lists * per_list + ours
    }

    /// Writes the index into the existing directory `dir`, tagged with the model `version`.
    ///
    /// Files: `ann-v<version>-<nonce>.hnsw.graph` and `.hnsw.data` (hnsw_rs `file_dump`, under
    /// names no reader knows yet) and `ann.meta` (ours: magic, format version, word size and
    /// endianness, model version, dim, params, M, counts, dump base name, size + crc32 of both
    /// dump files, the slot -> id table, the overflow items with their vectors, and a crc32 of
    /// the metadata itself).
    ///
    /// Crash safety: the dump files are written, fsynced and checksummed; the metadata is written
    /// to `ann.meta.tmp-<nonce>`, fsynced and renamed over `ann.meta` (the commit point); then the
    /// directory is fsynced. A crash at any point leaves either the previous complete index or
    /// the new one. Dump files not referenced by the new metadata (earlier saves, crashed saves)
    /// are removed after the commit; only names this module creates are touched. One writer per
    /// directory at a time; a reader that loads while a save replaces the files may get
    /// `AnnError::Missing` for the old dump and should retry.
    pub fn save(&self, dir: &Path, version: u64) -> Result<(), AnnError> {
        let md = fs::metadata(dir).map_err(|e| io_err(dir, e))?;
        if !md.is_dir() {
            return Err(AnnError::InvalidInput(format!("{} is not a directory", dir.display())));
        }
        let nonce = unique_nonce();
        let mut basename = String::new();
        let (mut graph_sum, mut data_sum) = (FileSum::default(), FileSum::default());
        if self.graph_points > 0 {
            let wanted = format!("{DUMP_PREFIX}{version}-{nonce}");
            let graph_path = dir.join(format!("{wanted}{GRAPH_SUFFIX}"));
            // hnsw_rs panics (instead of returning an error) when it cannot create the files.
            let dumped = catch_unwind(AssertUnwindSafe(|| {
                self.graph.with_dependent(|_, graph| graph.file_dump(dir, &wanted))
            }));
            basename = match dumped {
                Ok(Ok(name)) => name,
                Ok(Err(e)) => {
                    remove_dump(dir, &wanted);
                    return Err(AnnError::Hnsw { path: graph_path, reason: format!("{e:#}") });
                }
                Err(panic) => {
                    remove_dump(dir, &wanted);
                    return Err(AnnError::Hnsw { path: graph_path, reason: panic_message(&*panic) });
                }
            };
            let sums = sync_and_sum(&dir.join(format!("{basename}{GRAPH_SUFFIX}")))
                .and_then(|g| Ok((g, sync_and_sum(&dir.join(format!("{basename}{DATA_SUFFIX}")))?)));
            match sums {
                Ok((g, d)) => (graph_sum, data_sum) = (g, d),
                Err(e) => {
                    remove_dump(dir, &basename);
                    return Err(e);
                }
            }
        }
        let meta = Meta {
            model_version: version,
            dim: self.dim,
            params: self.params,
            max_norm: self.max_norm,
            graph_points: self.graph_points as u64,
            live: self.live as u64,
            stale: self.stale as u64,
            basename: basename.clone(),
            graph: graph_sum,
            data: data_sum,
            slot_ids: self.slot_ids.clone(),
            overflow: self.overflow.iter().map(|&s| (s, self.vector(s as usize).to_vec())).collect(),
        };
        let tmp = dir.join(format!("{META_TMP_PREFIX}{nonce}"));
        let committed = write_synced(&tmp, &meta.encode()).and_then(|()| {
            let final_path = dir.join(META_FILE);
            fs::rename(&tmp, &final_path).map_err(|e| io_err(&final_path, e))
        });
        if let Err(e) = committed {
            let _ = fs::remove_file(&tmp);
            if !basename.is_empty() {
                remove_dump(dir, &basename);
            }
            return Err(e);
        }
        sync_dir(dir);
        remove_unreferenced(dir, &basename);
        Ok(())
    }

    /// Loads what [`AnnIndex::save`] wrote. Never panics on bad files: a missing file, a model
    /// version other than `expected_version`, a size or checksum mismatch or an unparsable file
    /// all give an error naming the file. Checksums are verified *before* hnsw_rs reads the dump,
    /// because hnsw_rs panics, or even calls `process::exit`, on some malformed input.
    pub fn load(dir: &Path, expected_version: u64) -> Result<AnnIndex, AnnError> {
        let meta_path = dir.join(META_FILE);
        let bytes = fs::read(&meta_path).map_err(|e| io_err(&meta_path, e))?;
        let meta = Meta::decode(&bytes, &meta_path)?;
        if meta.model_version != expected_version {
            return Err(AnnError::VersionMismatch {
                path: meta_path,
                found: meta.model_version,
                expected: expected_version,
            });
        }
        check_params(meta.dim, &meta.params).map_err(|e| corrupt(&meta_path, e.to_string()))?;
        let (dim, n_slots, graph_points) = (meta.dim, meta.slot_ids.len(), meta.graph_points as usize);
        let mut vectors = vec![0f32; n_slots * dim];
        let mut filled = vec![false; n_slots];
        let graph = if graph_points == 0 {
            new_graph_cell(&meta.params, meta.max_norm, 1024)
        } else {
            let graph_path = dir.join(format!("{}{GRAPH_SUFFIX}", meta.basename));
            verify_file(&graph_path, meta.graph)?;
            verify_file(&dir.join(format!("{}{DATA_SUFFIX}", meta.basename)), meta.data)?;
            let dist = IpDist { c: DIST_SLACK * meta.max_norm * meta.max_norm };
            let mut graph = GraphCell::try_new(HnswIo::new(dir, &meta.basename), |io| {
                match catch_unwind(AssertUnwindSafe(|| io.load_hnsw_with_dist::<f32, IpDist>(dist))) {
                    Ok(Ok(graph)) => Ok(graph),
                    Ok(Err(e)) => Err(AnnError::Hnsw { path: graph_path.clone(), reason: format!("{e:#}") }),
                    Err(panic) => {
                        Err(AnnError::Hnsw { path: graph_path.clone(), reason: panic_message(&*panic) })
                    }
                }
            })?;
            // hnsw_rs reloads with extend_candidates = true; a new Hnsw has false. Keep inserts alike.
            graph.with_dependent_mut(|_, g| g.set_extend_candidates(false));
            let mut bad = None;
            let mut seen = 0usize;
            for_each_point(&graph, |slot, v| {
                seen += 1;
                if slot >= n_slots || v.len() != dim || filled[slot] {
                    bad = Some(slot);
                } else {
                    vectors[slot * dim..(slot + 1) * dim].copy_from_slice(v);
                    filled[slot] = true;
                }
            });
            if bad.is_some() || seen != graph_points {
                return Err(corrupt(
                    &graph_path,
                    format!("graph does not match {META_FILE} ({seen} points, expected {graph_points})"),
                ));
            }
            graph
        };
        for (slot, v) in &meta.overflow {
            let slot = *slot as usize;
            if filled[slot] {
                return Err(corrupt(&meta_path, "overflow item also present in the graph"));
            }
            vectors[slot * dim..(slot + 1) * dim].copy_from_slice(v);
            filled[slot] = true;
        }

        let mut id_slots: Vec<u32> = Vec::new();
        let (mut live, mut stale) = (0u64, 0u64);
        for (slot, &id) in meta.slot_ids.iter().enumerate() {
            if id == TOMBSTONE {
                stale += 1;
                continue;
            }
            let idx = id as usize;
            if idx >= id_slots.len() {
                id_slots.resize(idx + 1, NO_SLOT);
            }
            if id_slots[idx] != NO_SLOT || !filled[slot] {
                return Err(corrupt(&meta_path, format!("id table inconsistent at id {id}")));
            }
            id_slots[idx] = slot as u32;
            live += 1;
        }
        if live != meta.live || stale != meta.stale {
            return Err(corrupt(&meta_path, "live/stale counts do not match the id table"));
        }
        Ok(AnnIndex {
            dim,
            params: meta.params,
            max_norm: meta.max_norm,
            graph,
            graph_points,
            vectors,
            slot_ids: meta.slot_ids,
            id_slots,
            overflow: meta.overflow.into_iter().map(|o| o.0).collect(),
            live: live as usize,
            stale: stale as usize,
            link_stats: OnceLock::new(),
            links: Links::default(),
        }
        .with_links())
    }

    #[inline]
    fn vector(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dim..(slot + 1) * self.dim]
    }

    /// Checks the query's dimension (a programmer error: panics) and says whether there is
    /// nothing to search for: k of 0, no live item, or a non-finite coordinate.
    fn unanswerable(&self, query: &[f32], k: usize) -> bool {
        self.check_query(query);
        k == 0 || self.live == 0 || !query.iter().all(|x| x.is_finite())
    }

    fn check_query(&self, query: &[f32]) {
        assert_eq!(query.len(), self.dim, "query dimension {} != index dimension {}", query.len(), self.dim);
    }

    #[cfg(test)]
    fn slot_of(&self, id: u32) -> Option<u32> {
        self.id_slots.get(id as usize).copied().filter(|&s| s != NO_SLOT)
    }

    /// Fraction of live ids admitted by `allow`, exact for small indexes, else estimated on a
    /// fixed pseudo-random sample of slots (independent of id patterns such as `id % 10`).
    fn allowed_fraction(&self, allow: &(dyn Fn(u32) -> bool + Sync)) -> f64 {
        let n = self.slot_ids.len();
        let (mut live, mut passed) = (0usize, 0usize);
        let mut probe = |slot: usize| {
            let id = self.slot_ids[slot];
            if id != TOMBSTONE {
                live += 1;
                passed += usize::from(allow(id));
            }
        };
        if n <= SELECTIVITY_SAMPLE {
            (0..n).for_each(&mut probe);
        } else {
            (0..SELECTIVITY_SAMPLE as u64).for_each(|i| probe((mix(i) % n as u64) as usize));
        }
        if live == 0 {
            1.0
        } else {
            passed as f64 / live as f64
        }
    }

    fn count_links(&self) -> LinkStats {
        let mut stats = LinkStats { points: 0, links: 0, lists: 0 };
        self.graph.with_dependent(|_, graph| {
            if graph.get_nb_point() == 0 {
                return;
            }
            let points = graph.get_point_indexation();
            for layer in 0..=graph.get_max_level_observed() as usize {
                for p in points.get_layer_iterator(layer) {
                    stats.points += 1;
                    for list in p.get_neighborhood_id() {
                        if !list.is_empty() {
                            stats.lists += 1;
                            stats.links += list.len();
                        }
                    }
                }
            }
        });
        stats
    }
}

/// Calls `f(slot, stored_vector)` for every point of the graph.
fn for_each_point(graph: &GraphCell, mut f: impl FnMut(usize, &[f32])) {
    graph.with_dependent(|_, graph| {
        if graph.get_nb_point() == 0 {
            return;
        }
        let points = graph.get_point_indexation();
        for layer in 0..=graph.get_max_level_observed() as usize {
            for p in points.get_layer_iterator(layer) {
                f(p.get_origin_id(), p.get_v());
            }
        }
    });
}

// -------------------------------------------------------------------------------------------------
// The walk's copy of the graph
// -------------------------------------------------------------------------------------------------

/// The graph's links as flat arrays of slots, copied out of hnsw_rs, which builds, extends and
/// stores the graph: its own search keeps every point behind an `Arc` and a lock, allocates
/// for every candidate, takes one greedy step per upper layer, and once filtered never stops
/// early (see the module docs).
#[derive(Debug, Default)]
struct Links {
    /// Slots `0..slots` are covered (those in the graph); later ones are not.
    slots: usize,
    /// A point on the top layer, and that layer.
    entry: Option<u32>,
    top: usize,
    /// Layer 0: the links of slot `s` are `layer0[start[s]..start[s + 1]]`.
    start: Vec<usize>,
    layer0: Vec<u32>,
    /// Layers 1 and up, for the few points that have them: `upper[&s][l - 1]`.
    upper: HashMap<u32, Vec<Vec<u32>>>,
}

impl Links {
    fn copy(graph: &GraphCell, slots: usize) -> Links {
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); slots];
        let mut links = Links { slots, ..Links::default() };
        graph.with_dependent(|_, graph| {
            if graph.get_nb_point() == 0 {
                return;
            }
            let points = graph.get_point_indexation();
            let top = graph.get_max_level_observed() as usize;
            for layer in 0..=top {
                for p in points.get_layer_iterator(layer) {
                    let slot = p.get_origin_id();
                    if slot >= slots {
                        continue;
                    }
                    let mut hood = p.get_neighborhood_id().into_iter().map(|list| {
                        list.iter().map(|n| n.d_id).filter(|&d| d < slots).map(|d| d as u32).collect()
                    });
                    lists[slot] = hood.next().unwrap_or_default();
                    if layer > 0 {
                        links.upper.insert(slot as u32, hood.take(layer).collect());
                    }
                    if layer == top && links.entry.is_none() {
                        (links.entry, links.top) = (Some(slot as u32), top);
                    }
                }
            }
        });
        links.start = Vec::with_capacity(slots + 1);
        links.start.push(0);
        links.layer0 = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        for list in lists {
            links.layer0.extend_from_slice(&list);
            links.start.push(links.layer0.len());
        }
        links
    }

    #[inline]
    fn layer0(&self, slot: u32) -> &[u32] {
        let s = slot as usize;
        &self.layer0[self.start[s]..self.start[s + 1]]
    }

    fn upper(&self, slot: u32, layer: usize) -> &[u32] {
        self.upper.get(&slot).and_then(|layers| layers.get(layer - 1)).map_or(&[], Vec::as_slice)
    }

    fn memory_bytes(&self) -> usize {
        let upper: usize =
            self.upper.values().map(|l| 48 + l.iter().map(|v| 24 + 4 * v.len()).sum::<usize>()).sum();
        8 * self.start.len() + 4 * self.layer0.len() + upper
    }
}

/// A score ordered by `f32::total_cmp`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Slots seen by the current walk: a slot is seen when its stamp is the walk's. One per
/// thread, reused by every walk on it.
#[derive(Debug, Default)]
struct Visited {
    stamps: Vec<u32>,
    now: u32,
}

impl Visited {
    fn start(&mut self, slots: usize) {
        if self.stamps.len() < slots {
            self.stamps.resize(slots, 0);
        }
        self.now = self.now.wrapping_add(1);
        if self.now == 0 {
            self.stamps.fill(0);
            self.now = 1;
        }
    }

    /// Marks a slot; false if it was already marked in this walk.
    #[inline]
    fn insert(&mut self, slot: u32) -> bool {
        let stamp = &mut self.stamps[slot as usize];
        let new = *stamp != self.now;
        *stamp = self.now;
        new
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

// -------------------------------------------------------------------------------------------------
// Persistence helpers
// -------------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FileSum {
    len: u64,
    crc: u32,
}

fn unique_nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    format!("{:x}-{:x}-{:x}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// Streams a reader through crc32, returning the length and checksum.
fn sum_reader(mut r: impl Read) -> io::Result<FileSum> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok(FileSum { len, crc: hasher.finalize() })
}

/// fsyncs a freshly written file and returns its size and crc32 (as read back from the file).
fn sync_and_sum(path: &Path) -> Result<FileSum, AnnError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))?;
    sum_reader(file).map_err(|e| io_err(path, e))
}

fn verify_file(path: &Path, expected: FileSum) -> Result<(), AnnError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if len != expected.len {
        return Err(corrupt(
            path,
            format!("size is {len} bytes, expected {} (truncated or replaced)", expected.len),
        ));
    }
    let sum = sum_reader(file).map_err(|e| io_err(path, e))?;
    if sum != expected {
        return Err(corrupt(
            path,
            format!("crc32 mismatch (found {:08x}, expected {:08x})", sum.crc, expected.crc),
        ));
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), AnnError> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))
}

/// Makes the rename durable. Best effort: not every platform can open and fsync a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn remove_dump(dir: &Path, basename: &str) {
    let _ = fs::remove_file(dir.join(format!("{basename}{GRAPH_SUFFIX}")));
    let _ = fs::remove_file(dir.join(format!("{basename}{DATA_SUFFIX}")));
}

/// After a commit: removes dump files other than `current` and leftover temporary metadata.
fn remove_unreferenced(dir: &Path, current: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let keep = format!("{current}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours_dump = name.starts_with(DUMP_PREFIX)
            && (name.ends_with(GRAPH_SUFFIX) || name.ends_with(DATA_SUFFIX))
            && (current.is_empty() || !name.starts_with(&keep));
        if ours_dump || name.starts_with(META_TMP_PREFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Our metadata file, little-endian; see `save` for the content.
struct Meta {
    model_version: u64,
    dim: usize,
    params: AnnParams,
    max_norm: f32,
    graph_points: u64,
    live: u64,
    stale: u64,
    basename: String,
    graph: FileSum,
    data: FileSum,
    slot_ids: Vec<u32>,
    overflow: Vec<(u32, Vec<f32>)>,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let overflow_bytes = self.overflow.len() * (4 + 4 * self.dim);
        let mut b = Vec::with_capacity(160 + self.basename.len() + 4 * self.slot_ids.len() + overflow_bytes);
        b.extend_from_slice(&META_MAGIC);
        b.extend_from_slice(&META_FORMAT_VERSION.to_le_bytes());
        // hnsw_rs dumps native-endian usize values: record the platform that wrote them.
        b.push(std::mem::size_of::<usize>() as u8);
        b.push(u8::from(cfg!(target_endian = "little")));
        b.extend_from_slice(&self.model_version.to_le_bytes());
        for v in [self.dim, self.params.max_connections, self.params.ef_construction, self.params.ef_search] {
            b.extend_from_slice(&(v as u32).to_le_bytes());
        }
        b.extend_from_slice(&self.max_norm.to_le_bytes());
        for v in [self.graph_points, self.live, self.stale] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(self.basename.len() as u32).to_le_bytes());
        b.extend_from_slice(self.basename.as_bytes());
        for s in [self.graph, self.data] {
            b.extend_from_slice(&s.len.to_le_bytes());
            b.extend_from_slice(&s.crc.to_le_bytes());
        }
        b.extend_from_slice(&(self.slot_ids.len() as u64).to_le_bytes());
        for id in &self.slot_ids {
            b.extend_from_slice(&id.to_le_bytes());
        }
        b.extend_from_slice(&(self.overflow.len() as u64).to_le_bytes());
        for (slot, v) in &self.overflow {
            b.extend_from_slice(&slot.to_le_bytes());
            for x in v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(bytes: &[u8], path: &Path) -> Result<Meta, AnnError> {
        if bytes.len() < META_MAGIC.len() || bytes[..META_MAGIC.len()] != META_MAGIC {
            return Err(corrupt(path, "not an ann index metadata file (bad magic)"));
        }
        if bytes.len() < META_MAGIC.len() + 8 {
            return Err(corrupt(path, "truncated"));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != tail {
            return Err(corrupt(path, "metadata crc32 mismatch (truncated or damaged)"));
        }
        let mut r = ByteReader { buf: body, pos: META_MAGIC.len(), path };
        let format = r.u32()?;
        if format != META_FORMAT_VERSION {
            return Err(corrupt(path, format!("unsupported format version {format}")));
        }
        let (usize_bytes, little) = (r.u8()?, r.u8()?);
        if usize_bytes as usize != std::mem::size_of::<usize>()
            || (little == 1) != cfg!(target_endian = "little")
        {
            return Err(corrupt(path, "written on a platform with another word size or endianness"));
        }
        let model_version = r.u64()?;
        let dim = r.u32()? as usize;
        let params = AnnParams {
            max_connections: r.u32()? as usize,
            ef_construction: r.u32()? as usize,
            ef_search: r.u32()? as usize,
        };
        let max_norm = r.f32()?;
        if !max_norm.is_finite() || max_norm < 0.0 {
            return Err(corrupt(path, "invalid max norm"));
        }
        let (graph_points, live, stale) = (r.u64()?, r.u64()?, r.u64()?);
        let name_len = r.u32()? as usize;
        let basename = String::from_utf8(r.take(name_len)?.to_vec())
            .map_err(|_| corrupt(path, "dump base name is not UTF-8"))?;
        if basename.contains(['/', '\\']) || basename.contains("..") {
            return Err(corrupt(path, "dump base name is not a plain file name"));
        }
        let graph = FileSum { len: r.u64()?, crc: r.u32()? };
        let data = FileSum { len: r.u64()?, crc: r.u32()? };
        let n_slots = r.count(4)?;
        let slot_ids = (0..n_slots).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
        let n_overflow = r.count(4 + 4 * dim)?;
        let mut overflow = Vec::with_capacity(n_overflow);
        for _ in 0..n_overflow {
            let slot = r.u32()?;
            let v = (0..dim).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
            overflow.push((slot, v));
        }
        if r.pos != body.len() {
            return Err(corrupt(path, "trailing bytes"));
        }
        if (graph_points == 0) != basename.is_empty() || graph_points > slot_ids.len() as u64 {
            return Err(corrupt(path, "dump base name and point counts disagree"));
        }
        if overflow.windows(2).any(|w| w[0].0 >= w[1].0)
            || overflow.iter().any(|o| o.0 as usize >= slot_ids.len() || slot_ids[o.0 as usize] == TOMBSTONE)
        {
            return Err(corrupt(path, "invalid overflow list"));
        }
        Ok(Meta {
            model_version,
            dim,
            params,
            max_norm,
            graph_points,
            live,
            stale,
            basename,
            graph,
            data,
            slot_ids,
            overflow,
        })
    }
}

struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AnnError> {
        if self.buf.len() - self.pos < n {
            return Err(corrupt(self.path, "truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], AnnError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, AnnError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, AnnError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> Result<f32, AnnError> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, AnnError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// An element count, checked against the bytes left (so garbage cannot ask for a huge
    /// allocation).
    fn count(&mut self, elem_bytes: usize) -> Result<usize, AnnError> {
        let n = self.u64()?;
        if n > ((self.buf.len() - self.pos) / elem_bytes.max(1)) as u64 {
            return Err(corrupt(self.path, "truncated"));
        }
        Ok(n as usize)
    }
}

// -------------------------------------------------------------------------------------------------
// Tests
// -------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const ALL: &(dyn Fn(u32) -> bool + Sync) = &|_| true;

    fn gaussian(rng: &mut impl Rng) -> f32 {
        // Box-Muller; good enough for test data.
        let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
        let u2: f32 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| (0..dim).map(|_| gaussian(&mut rng)).collect()).collect()
    }

    /// Gaussian directions with norms spread log-uniformly over two orders of magnitude.
    fn varied_norm_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| gaussian(&mut rng)).collect();
                let scale = 10f32.powf(rng.gen_range(-1.0..1.0)) / dot(&v, &v).sqrt();
                v.iter().map(|x| x * scale).collect()
            })
            .collect()
    }

    fn build(vectors: &[Vec<f32>]) -> AnnIndex {
        let items: Vec<(u32, &[f32])> =
            vectors.iter().enumerate().map(|(i, v)| (i as u32, v.as_slice())).collect();
        AnnIndex::build(vectors[0].len(), &items, &AnnParams::default()).unwrap()
    }

    fn brute_force(
        vectors: &[Vec<f32>],
        q: &[f32],
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut all: Vec<(u32, f32)> = vectors
            .iter()
            .enumerate()
            .filter(|(i, _)| allow(*i as u32))
            .map(|(i, v)| (i as u32, dot(q, v)))
            .collect();
        rank(&mut all, k);
        all
    }

    fn ids(r: &[(u32, f32)]) -> Vec<u32> {
        r.iter().map(|x| x.0).collect()
    }

    #[test]
    fn exact_top_k_with_large_ef() {
        let vectors = random_vectors(400, 16, 1);
        let index = build(&vectors);
        assert_eq!(index.len(), 400);
        for q in random_vectors(50, 16, 2) {
            let truth = brute_force(&vectors, &q, 10, &|_| true);
            assert_eq!(index.search_graph(&q, 10, 400, ALL), truth);
            assert_eq!(index.search(&q, 10, 400, ALL), truth);
            assert_eq!(index.search_exact(&q, 10, ALL), truth);
        }
    }

    #[test]
    fn inner_product_order_not_l2_or_cosine_order() {
        let dim = 16;
        let vectors = varied_norm_vectors(300, dim, 3);
        let index = build(&vectors);
        let (mut l2_differs, mut cosine_differs) = (0, 0);
        for q in &varied_norm_vectors(40, dim, 4) {
            let truth = brute_force(&vectors, q, 10, &|_| true);
            // What plain L2 or cosine nearest neighbours would return.
            let sq_dist = |v: &[f32]| v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
            let mut by_l2: Vec<(u32, f32)> =
                vectors.iter().enumerate().map(|(i, v)| (i as u32, -sq_dist(v))).collect();
            rank(&mut by_l2, 10);
            let mut by_cos: Vec<(u32, f32)> =
                vectors.iter().enumerate().map(|(i, v)| (i as u32, dot(q, v) / dot(v, v).sqrt())).collect();
            rank(&mut by_cos, 10);
            l2_differs += usize::from(ids(&by_l2) != ids(&truth));
            cosine_differs += usize::from(ids(&by_cos) != ids(&truth));
            assert_eq!(index.search_graph(q, 10, 300, ALL), truth);
        }
        // The data really separates the three orders (otherwise the test would prove nothing).
        assert!(l2_differs >= 30 && cosine_differs >= 30, "l2 {l2_differs} cos {cosine_differs}");
    }

    #[test]
    fn recall_with_default_ef() {
        let vectors = varied_norm_vectors(5000, 32, 5);
        let index = build(&vectors);
        let queries = varied_norm_vectors(100, 32, 6);
        let mut hits = 0;
        for q in &queries {
            let truth = ids(&brute_force(&vectors, q, 10, &|_| true));
            hits += index.search_graph(q, 10, 0, ALL).iter().filter(|r| truth.contains(&r.0)).count();
        }
        assert!(hits >= 980, "recall {}", hits as f64 / 1000.0);
    }

    #[test]
    fn filter_is_applied() {
        let vectors = random_vectors(3000, 16, 7);
        let index = build(&vectors);
        let odd = |id: u32| id % 2 == 1;
        assert!((index.allowed_fraction(&odd) - 0.5).abs() < 0.1);
        for q in random_vectors(30, 16, 8) {
            let got = index.search_graph(&q, 20, 100, &odd);
            assert_eq!(got.len(), 20);
            assert!(got.iter().all(|r| r.0 % 2 == 1));
            assert_eq!(index.search(&q, 20, 3000, &odd), brute_force(&vectors, &q, 20, &odd));
        }
        let three = |id: u32| id == 17 || id == 1234 || id == 2999;
        assert!(index.allowed_fraction(&three) < EXACT_SCAN_BELOW);
        for q in random_vectors(10, 16, 9) {
            let got = index.search(&q, 10, 32, &three);
            assert_eq!(ids(&got).len(), 3);
            assert_eq!(got, brute_force(&vectors, &q, 10, &three));
            // The graph path alone never returns a disallowed id either.
            assert!(index.search_graph(&q, 10, 32, &three).iter().all(|r| three(r.0)));
        }
        let none = |_: u32| false;
        assert!(index.search(&vectors[0], 10, 32, &none).is_empty());
        assert!(index.search_graph(&vectors[0], 10, 32, &none).is_empty());
    }

    #[test]
    fn a_users_best_items_excluded() {
        let vectors = random_vectors(3000, 16, 11);
        let index = build(&vectors);
        for q in random_vectors(30, 16, 12) {
            // Exclude the query's own best five: what a user's seen items are.
            let best: Vec<u32> = ids(&brute_force(&vectors, &q, 5, &|_| true));
            let unseen = |id: u32| !best.contains(&id);
            let truth = brute_force(&vectors, &q, 10, &unseen);
            // At full breadth the walk's answer is the exact one; at any breadth it never
            // holds an excluded item and is never short.
            assert_eq!(index.search(&q, 10, 3000, &unseen), truth);
            let got = index.search(&q, 10, 64, &unseen);
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|r| unseen(r.0)));
        }
    }

    #[test]
    fn selectivity_sample_ignores_id_patterns() {
        let vectors = random_vectors(20_000, 4, 10);
        let index = build(&vectors);
        for m in [2u32, 4, 10, 100] {
            let f = index.allowed_fraction(&|id| id % m == 3 % m);
            assert!((f - 1.0 / m as f64).abs() < 0.06, "1/{m}: {f}");
        }
    }

    #[test]
    fn inserts_are_found_before_and_after_the_links_are_copied_again() {
        let dim = 8;
        let mut vectors = random_vectors(UNLINKED_MAX + 1500, dim, 21);
        let mut index = build(&vectors[..1000]);
        let queries = random_vectors(10, dim, 22);
        let check = |index: &AnnIndex, vectors: &[Vec<f32>]| {
            for q in &queries {
                let truth = brute_force(vectors, q, 20, &|_| true);
                assert_eq!(index.search(q, 20, vectors.len(), ALL), truth);
            }
        };
        // Not linked yet: scored exactly.
        for id in 1000..2000u32 {
            index.insert(id, &vectors[id as usize]).unwrap();
        }
        assert_eq!(index.links.slots, 1000);
        check(&index, &vectors[..2000]);
        // Past UNLINKED_MAX the links are copied again; re-inserts leave stale points behind.
        for id in 2000..vectors.len() as u32 {
            index.insert(id, &vectors[id as usize]).unwrap();
        }
        for id in 0..200u32 {
            vectors[id as usize].iter_mut().for_each(|x| *x = -*x);
            index.insert(id, &vectors[id as usize]).unwrap();
        }
        assert!(index.links.slots > 1000 && index.links.slots <= index.slot_ids.len());
        assert_eq!((index.len(), index.stale()), (vectors.len(), 200));
        check(&index, &vectors);
    }

    #[test]
    fn reinsert_replaces_vector() {
        let dim = 8;
        let mut vectors = random_vectors(1000, dim, 11);
        let mut index = build(&vectors);
        // `victim` is the best item for `old_query`; re-insert it pointing along e0.
        let old_query: Vec<f32> = vectors[5].iter().map(|x| x * 10.0).collect();
        let old_best = index.search(&old_query, 1, 0, ALL);
        let victim = old_best[0].0;
        let mut new_vec = vec![0.0; dim];
        new_vec[0] = 4.0;
        index.insert(victim, &new_vec).unwrap();
        vectors[victim as usize] = new_vec.clone();
        assert_eq!((index.len(), index.stale(), index.overflow()), (1000, 1, 0));
        let mut e0 = vec![0.0; dim];
        e0[0] = 1.0;
        assert_eq!(index.search(&e0, 5, 0, ALL)[0], (victim, 4.0));
        // The old point is still in the graph, but the id only ever comes back with its new score.
        let top = index.search_graph(&old_query, 50, 1000, ALL);
        assert_eq!(top, brute_force(&vectors, &old_query, 50, &|_| true));
        let new_score = dot(&old_query, &new_vec);
        assert!(top.iter().all(|r| r.0 != victim || r.1 == new_score));
        for q in random_vectors(20, dim, 12) {
            let got = index.search_graph(&q, 100, 1000, ALL);
            assert!(got.iter().filter(|r| r.0 == victim).all(|r| r.1 == dot(&q, &new_vec)));
            assert!(got.iter().filter(|r| r.0 == victim).count() <= 1);
        }
        assert_ne!(index.search(&old_query, 1, 0, ALL), old_best);
        assert_eq!(index.vector_of(victim), Some(&new_vec[..]));
        // A new id.
        index.insert(5000, &new_vec).unwrap();
        assert_eq!((index.len(), index.stale()), (1001, 1));
        assert!(index.contains(5000) && !index.contains(1001));
        let mut two = vec![(victim, 4.0), (5000, 4.0)];
        two.sort_by_key(|r| r.0);
        assert_eq!(index.search(&e0, 2, 0, ALL), two);
    }

    #[test]
    fn overflow_items_are_found() {
        let vectors = random_vectors(500, 8, 12);
        let mut index = build(&vectors);
        let big: Vec<f32> = vectors[3].iter().map(|x| x * 50.0).collect();
        index.insert(700, &big).unwrap();
        assert_eq!((index.overflow(), index.len()), (1, 501));
        assert_eq!(index.search(&vectors[3], 3, 0, ALL)[0], (700, dot(&vectors[3], &big)));
        assert_eq!(index.search_graph(&vectors[3], 3, 0, ALL)[0].0, 700);
        assert!(index.search(&vectors[3], 3, 0, &|id| id != 700).iter().all(|r| r.0 != 700));
        // Re-inserting it with a small norm moves it into the graph.
        index.insert(700, &vectors[4]).unwrap();
        assert_eq!((index.overflow(), index.stale()), (0, 1));
        assert!(index.search_graph(&vectors[4], 2, 0, ALL).iter().any(|r| r.0 == 700));
    }

    #[test]
    fn ties_go_to_smaller_id() {
        let dim = 4;
        let mut vectors = random_vectors(200, dim, 13);
        let shared = vec![5.0, 5.0, 5.0, 5.0];
        for id in [150, 40, 90, 7, 120, 60] {
            vectors[id] = shared.clone();
        }
        let index = build(&vectors);
        for got in [index.search_graph(&shared, 4, 200, ALL), index.search(&shared, 4, 0, ALL)] {
            assert_eq!(ids(&got), vec![7, 40, 60, 90]);
        }
        let zero = vec![0.0; dim];
        assert_eq!(index.search(&zero, 3, 200, ALL), vec![(0, 0.0), (1, 0.0), (2, 0.0)]);
        assert_eq!(index.search_graph(&zero, 3, 200, ALL), vec![(0, 0.0), (1, 0.0), (2, 0.0)]);
    }

    #[test]
    fn duplicate_ids_in_build_keep_the_last() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let index = AnnIndex::build(2, &[(3, &a), (4, &a), (3, &b)], &AnnParams::default()).unwrap();
        assert_eq!((index.len(), index.stale()), (2, 0));
        assert_eq!(index.search(&[0.0, 1.0], 1, 0, ALL), vec![(3, 1.0)]);
    }

    #[test]
    fn invalid_input_is_an_error() {
        let p = AnnParams::default();
        let nan = [f32::NAN, 1.0];
        assert!(AnnIndex::build(2, &[(1, &[1.0, 2.0, 3.0])], &p).is_err());
        assert!(AnnIndex::build(2, &[(1, &nan)], &p).is_err());
        assert!(AnnIndex::build(2, &[(1, &[3e38, 3e38])], &p).is_err());
        assert!(AnnIndex::build(2, &[(u32::MAX, &[1.0, 2.0])], &p).is_err());
        assert!(AnnIndex::build(0, &[], &p).is_err());
        assert!(AnnIndex::build(2, &[], &AnnParams { max_connections: 300, ..p }).is_err());
        assert!(
            AnnIndex::build(2, &[], &AnnParams { max_connections: 32, ef_construction: 64, ..p }).is_err()
        );
        let mut index = AnnIndex::build(2, &[(1, &[1.0, 2.0])], &p).unwrap();
        assert!(index.insert(2, &[1.0]).is_err());
        assert!(index.insert(2, &[f32::INFINITY, 1.0]).is_err());
        assert_eq!(index.len(), 1);
        assert!(index.search(&[f32::NAN, 0.0], 5, 0, ALL).is_empty());
        assert!(index.search(&[1.0, 0.0], 0, 0, ALL).is_empty());
        let msg = AnnIndex::build(2, &[(1, &nan)], &p).unwrap_err().to_string();
        assert!(msg.contains("item 1"), "{msg}");
    }

    #[test]
    #[should_panic(expected = "query dimension")]
    fn wrong_query_dimension_panics() {
        let index = AnnIndex::build(2, &[(1, &[1.0, 2.0])], &AnnParams::default()).unwrap();
        index.search(&[1.0], 1, 0, ALL);
    }

    #[test]
    fn empty_index_works_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = AnnIndex::build(3, &[], &AnnParams::default()).unwrap();
        assert!(index.is_empty());
        assert!(index.search(&[1.0, 0.0, 0.0], 5, 0, ALL).is_empty());
        index.save(dir.path(), 1).unwrap();
        let mut loaded = AnnIndex::load(dir.path(), 1).unwrap();
        assert!(loaded.is_empty());
        for idx in [&mut index, &mut loaded] {
            idx.insert(9, &[1.0, 2.0, 3.0]).unwrap(); // sets M
            idx.insert(4, &[0.5, 0.5, 0.5]).unwrap();
            idx.insert(6, &[10.0, 0.0, 0.0]).unwrap(); // longer than M: overflow
            assert_eq!((idx.overflow(), idx.len()), (1, 3));
            assert_eq!(idx.search(&[1.0, 0.0, 0.0], 5, 0, ALL), vec![(6, 10.0), (9, 1.0), (4, 0.5)]);
        }
        assert!(index.memory_bytes() > 0);
        index.save(dir.path(), 2).unwrap();
        let again = AnnIndex::load(dir.path(), 2).unwrap();
        assert_eq!(again.search(&[1.0, 0.0, 0.0], 5, 0, ALL), vec![(6, 10.0), (9, 1.0), (4, 0.5)]);
    }

    fn sample_index() -> (AnnIndex, Vec<Vec<f32>>) {
        let vectors = varied_norm_vectors(2000, 16, 14);
        let mut index = build(&vectors);
        index.insert(10, &vectors[11]).unwrap(); // a stale point
        let big: Vec<f32> = vectors[12].iter().map(|x| x * 40.0).collect();
        index.insert(2500, &big).unwrap(); // an overflow item
        index.insert(2501, &big).unwrap(); // an overflow item, then superseded
        index.insert(2501, &vectors[13]).unwrap();
        (index, varied_norm_vectors(40, 16, 15))
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, queries) = sample_index();
        assert_eq!((index.len(), index.stale(), index.overflow()), (2002, 2, 1));
        index.save(dir.path(), 42).unwrap();
        let mut loaded = AnnIndex::load(dir.path(), 42).unwrap();
        assert_eq!((loaded.len(), loaded.stale(), loaded.overflow()), (2002, 2, 1));
        assert_eq!((loaded.dim(), loaded.max_norm(), *loaded.params()), (16, index.max_norm(), index.params));
        let allow = |id: u32| !id.is_multiple_of(7);
        let few = |id: u32| id.is_multiple_of(20);
        for q in &queries {
            for ef in [10, 64] {
                let a = index.search(q, 10, ef, &allow);
                let b = loaded.search(q, 10, ef, &allow);
                let bits = |r: &[(u32, f32)]| r.iter().map(|x| (x.0, x.1.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b));
                assert_eq!(bits(&index.search(q, 10, ef, &few)), bits(&loaded.search(q, 10, ef, &few)));
            }
        }
        // Saving again (from the loaded index, same directory) replaces the files.
        loaded.insert(3000, &queries[0]).unwrap();
        index.insert(3000, &queries[0]).unwrap();
        loaded.save(dir.path(), 43).unwrap();
        let again = AnnIndex::load(dir.path(), 43).unwrap();
        assert_eq!(again.search(&queries[0], 5, 64, ALL), loaded.search(&queries[0], 5, 64, ALL));
        assert_eq!(again.search(&queries[0], 5, 64, ALL), index.search(&queries[0], 5, 64, ALL));
        let files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files.len(), 3, "old dumps are removed: {files:?}");
    }

    fn file_ending(dir: &Path, suffix: &str) -> PathBuf {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_str().unwrap().ends_with(suffix))
            .unwrap()
    }

    fn load_err(dir: &Path, version: u64) -> String {
        AnnIndex::load(dir, version).unwrap_err().to_string()
    }

    #[test]
    fn load_failures_are_errors() {
        let (index, _) = sample_index();
        let fresh = || {
            let dir = tempfile::tempdir().unwrap();
            index.save(dir.path(), 7).unwrap();
            dir
        };

        let dir = fresh();
        let msg = load_err(dir.path(), 8);
        assert!(
            msg.contains("ann.meta") && msg.contains("version 7") && msg.contains("expected version 8"),
            "{msg}"
        );

        for suffix in [DATA_SUFFIX, GRAPH_SUFFIX, META_FILE] {
            // One flipped byte.
            let dir = fresh();
            let path = file_ending(dir.path(), suffix);
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let mut bytes = fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x40;
            fs::write(&path, &bytes).unwrap();
            let msg = load_err(dir.path(), 7);
            assert!(msg.contains(&name) && msg.contains("corrupt"), "{msg}");

            // Truncated.
            let dir = fresh();
            let path = file_ending(dir.path(), suffix);
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
            let msg = load_err(dir.path(), 7);
            assert!(msg.contains(&name) && msg.contains("corrupt"), "{msg}");

            // Missing.
            let dir = fresh();
            let path = file_ending(dir.path(), suffix);
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            fs::remove_file(&path).unwrap();
            let msg = load_err(dir.path(), 7);
            assert!(msg.contains(&name) && msg.contains("missing"), "{msg}");
        }

        // Garbage, empty and wrong-format metadata; no index at all.
        let dir = fresh();
        fs::write(dir.path().join(META_FILE), b"hello world, not an index").unwrap();
        assert!(load_err(dir.path(), 7).contains("bad magic"));
        fs::write(dir.path().join(META_FILE), b"").unwrap();
        assert!(load_err(dir.path(), 7).contains("corrupt"));
        let mut other_format = META_MAGIC.to_vec();
        other_format.extend_from_slice(&99u32.to_le_bytes());
        other_format.extend_from_slice(&crc32fast::hash(&other_format).to_le_bytes());
        fs::write(dir.path().join(META_FILE), &other_format).unwrap();
        assert!(load_err(dir.path(), 7).contains("unsupported format version 99"));
        let empty = tempfile::tempdir().unwrap();
        assert!(load_err(empty.path(), 7).contains("missing"));
        assert!(load_err(&empty.path().join("nope"), 7).contains("missing"));
        assert!(index.save(&empty.path().join("nope"), 7).is_err());
    }

    #[test]
    fn crashed_save_leaves_previous_index() {
        let (index, queries) = sample_index();
        let dir = tempfile::tempdir().unwrap();
        index.save(dir.path(), 1).unwrap();
        // A save that died before its commit: new dump files and a temporary metadata file.
        fs::write(dir.path().join("ann-v2-dead.hnsw.graph"), b"partial").unwrap();
        fs::write(dir.path().join("ann-v2-dead.hnsw.data"), b"partial").unwrap();
        fs::write(dir.path().join(format!("{META_TMP_PREFIX}dead")), b"partial").unwrap();
        let loaded = AnnIndex::load(dir.path(), 1).unwrap();
        assert_eq!(loaded.search(&queries[0], 10, 0, ALL), index.search(&queries[0], 10, 0, ALL));
        // The next successful save cleans the leftovers up.
        loaded.save(dir.path(), 2).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
        assert!(AnnIndex::load(dir.path(), 2).is_ok());
    }

    #[test]
    fn concurrent_searches() {
        let vectors = random_vectors(3000, 16, 16);
        let index = build(&vectors);
        let queries = random_vectors(64, 16, 17);
        let expected: Vec<_> = queries.iter().map(|q| index.search(q, 10, 64, ALL)).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (index, queries, expected) = (&index, &queries, &expected);
                s.spawn(move || {
                    for (i, q) in queries.iter().enumerate().skip(t) {
                        assert_eq!(&index.search(q, 10, 64, ALL), &expected[i]);
                    }
                });
            }
        });
    }

    #[test]
    fn score_ids_is_exact() {
        let vectors = random_vectors(500, 8, 18);
        let index = build(&vectors);
        let wanted = [3u32, 77, 499, 12345, 77];
        let got = index.score_ids(&vectors[0], 10, &wanted);
        assert_eq!(got, brute_force(&vectors, &vectors[0], 10, &|id| wanted.contains(&id)));
    }
}

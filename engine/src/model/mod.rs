//! The GNN: a typed, inductive one-hop graph model for link prediction.
//!
//! Every user, item and target type has a learnable id embedding. A user's vector is its
//! own embedding plus a message from each of its items, weighted by a learnable weight per
//! edge type (a buy says more than a click) and by the edge's strength, normalised by the
//! square root of the user's degree:
//!
//! ```text
//! h(u) = own * e(u) + sum over edges (u, t, i) of alpha(t) * strength * e(i) / sqrt(deg u)
//! g(i) = e(i) + item_context * c(i),  c(i) = sum over edges (v, t, i) of alpha(t) * strength * e(v) / sqrt(deg i)
//! score(u, i, target) = sum over d of h(u)[d] * r(target)[d] * g(i)[d]
//! ```
//!
//! c(i), the item's side of the message passing, is recomputed from the user table once per
//! epoch and enters a step as a constant, so that a step stays O(batch).
//!
//! Beside the inner product, a score has a co-visitation term (see `covisit.rs`): for the
//! user's `recent` latest items W(u),
//!
//! ```text
//! score(u, i, target) += covisit_weight * mean over j in W(u) of sim(j, i)
//! ```
//!
//! where sim(j, i) counts the users who touched both items at most `covisit_window` places
//! apart in their history, over sqrt(users of i * users of j), kept for each item's
//! `covisit` nearest. The GNN is trained without the term (trained with it, it learned to
//! lean on it and lost on MovieLens' validation split); the term is added to its scores
//! wherever they rank: SCORE, RECOMMEND, EVAL and the validation that stops training.
//!
//! Because `h(u)` is computed from the neighbourhood, a user who arrived after training
//! (whose own `e(u)` does not exist) still gets a vector from the items they touched.
//! Training lives in `train.rs` (dfdx); this file is inference and the checkpoint format,
//! plain arithmetic on the learned tables.

pub(crate) mod covisit;
pub(crate) mod train;

pub use covisit::Covisit;

use bincode::{Decode, Encode};
use gnnrec_storage::{NodeId, TypeId};

/// Edge types the model can weigh separately; more are refused at TRAIN.
pub const MAX_TYPES: usize = 32;

/// The ranking loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Loss {
    /// max(0, margin - s(pos) + s(neg)): the default, as in the seed project.
    Hinge,
    /// -ln sigmoid(s(pos) - s(neg)).
    Bpr,
    /// Binary cross-entropy: positives labelled 1, negatives 0.
    Bce,
}

/// How negative items are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Sampler {
    Uniform,
    /// In proportion to degree^0.75, as word2vec does: popular items are the hard negatives.
    Popularity,
}

/// The hyper-parameters of one TRAIN; each is a `TRAIN WITH key = value` setting.
///
/// The defaults were chosen on the MovieLens validation split (val_train.csv ->
/// val_test.csv, by NDCG@20), never on its test split.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct Hyper {
    pub dim: usize,
    pub epochs: usize,
    pub lr: f32,
    pub batch: usize,
    pub negatives: usize,
    pub margin: f32,
    pub loss: Loss,
    pub sampler: Sampler,
    /// Candidates scored per negative to pick the hardest; 1 turns mining off.
    pub hard: usize,
    /// Neighbours sampled per user in a training step.
    pub fanout: usize,
    /// L2 penalty on the embeddings a step touches.
    pub reg: f32,
    /// Epochs without a better validation score before training stops.
    pub patience: usize,
    /// Share of each user's target edges (the latest ones) held out for validation.
    pub val_share: f32,
    /// Epochs on every edge, validation edges included, after early stopping.
    pub refit: usize,
    /// How much more a user's latest edge weighs than their oldest in their vector.
    pub recency: f32,
    /// Weight of an item's users in its scored vector (0: the item's own embedding only).
    pub item_context: f32,
    /// Weight of a user's own id embedding in its vector (0: a user is only the items it
    /// touched). Below 1 the neighbourhood speaks louder than the per-user free parameters,
    /// which overfit a user's past: on the MovieLens validation split (3 seeds) own = 0.3
    /// moved Recall@20 0.1941 -> 0.2002 and NDCG@20 0.1374 -> 0.1421; own = 0 lost.
    pub own: f32,
    /// How much more a user's latest target edge counts in the loss than their oldest (the
    /// weight runs linearly with the edge's place in the user's history, mean 1). What a user
    /// did last is most like what they do next: on the validation split (3 seeds, own 0.3)
    /// fresh = 3 moved Recall@20 0.2002 -> 0.2052 and NDCG@20 0.1421 -> 0.1459 (6: the same).
    pub fresh: f32,
    /// An edge's strength is also multiplied by its mean weight to this power (0: weights
    /// are ignored; ratings make a 5-star edge say more than a 3-star one). Off by default:
    /// on the MovieLens validation split weight_power = 1 cost NDCG@20 0.1417 -> 0.1232
    /// (seed 42): a low-rated view still says what a user watches.
    pub weight_power: f32,
    /// How many of a user's latest edges the co-visitation term looks at (0: no term); the
    /// edges of the second the cut falls in all count, as one second has no order. On the
    /// MovieLens validation split with every timestamp made equal, that turned the term
    /// from a loss (NDCG@20 0.0966 against 0.1172 without it) into a gain (0.1271).
    pub recent: usize,
    /// Nearest items kept per item in the co-visitation table (0: no term).
    pub covisit: usize,
    /// Two items are co-visited by a user who touched them at most this many places apart
    /// in their history (0: anywhere in it).
    pub covisit_window: usize,
    /// Weight of the co-visitation term in the score. The term's settings were chosen on
    /// the MovieLens validation split (seed 42, NDCG@20, without it 0.1487): the cosine of
    /// whole histories (window 0, 50 neighbours, weight 6) 0.1618; a window of 10 places
    /// and 100 neighbours, weight 12: 0.1723 (window 5 / 20 / 30: 0.1667 / 0.1681 / 0.1620;
    /// recent 3 / 10 instead of 5: worse).
    pub covisit_weight: f32,
    pub seed: u64,
    /// The edge types to predict, by name; empty means like and buy when present, else all.
    pub targets: Vec<String>,
}

impl Hyper {
    /// Whether scores have a co-visitation term (and TRAIN builds its table).
    pub fn uses_covisit(&self) -> bool {
        self.recent > 0 && self.covisit > 0 && self.covisit_weight > 0.0
    }
}

impl Default for Hyper {
    fn default() -> Hyper {
        Hyper {
            dim: 64,
            epochs: 40,
            lr: 0.003,
            batch: 1024,
            negatives: 16,
            margin: 1.0,
            loss: Loss::Hinge,
            sampler: Sampler::Uniform,
            hard: 8,
            fanout: 16,
            reg: 1e-4,
            patience: 4,
            val_share: 0.1,
            refit: 1,
            recency: 2.0,
            item_context: 0.5,
            own: 0.3,
            fresh: 3.0,
            weight_power: 0.0,
            recent: 5,
            covisit: 100,
            covisit_window: 10,
            covisit_weight: 12.0,
            seed: 42,
            targets: Vec::new(),
        }
    }
}

/// A trained model: the learned tables and how they were learned.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct Model {
    pub hyper: Hyper,
    /// Predicted edge types, in the order of the relation vectors.
    pub targets: Vec<TypeId>,
    /// alpha(t) for every edge type id below MAX_TYPES.
    pub type_weight: Vec<f32>,
    pub users: usize,
    pub items: usize,
    /// users x dim, row-major.
    pub user_emb: Vec<f32>,
    /// items x dim, row-major: what an item sends its users.
    pub item_emb: Vec<f32>,
    /// items x dim: the vectors items are scored with, `e(i) + item_context * c(i)` where
    /// c(i) aggregates the item's users; empty when `item_context` is 0 (then `item_emb`).
    pub item_out: Vec<f32>,
    /// targets x dim, row-major.
    pub rel_emb: Vec<f32>,
    /// Each item's nearest items by co-visitation; empty when the term is off. Shared: the
    /// models of a training's epochs all hold the one table.
    pub covisit: std::sync::Arc<Covisit>,
}

impl Model {
    pub fn dim(&self) -> usize {
        self.hyper.dim
    }

    fn row(table: &[f32], dim: usize, id: usize) -> Option<&[f32]> {
        table.get(id * dim..(id + 1) * dim)
    }

    /// The vector an item is scored with, if the item existed when the model was trained.
    pub fn item_vector(&self, item: NodeId) -> Option<&[f32]> {
        let table = if self.item_out.is_empty() { &self.item_emb } else { &self.item_out };
        Self::row(table, self.dim(), item as usize)
    }

    /// What an item sends the users connected to it.
    fn item_message(&self, item: NodeId) -> Option<&[f32]> {
        Self::row(&self.item_emb, self.dim(), item as usize)
    }

    /// The user's vector from its id embedding (when the user was trained) and its current
    /// neighbourhood: `(item, edge type, strength)` for every edge.
    pub fn user_vector(
        &self,
        user: NodeId,
        edges: impl IntoIterator<Item = (NodeId, TypeId, f32)>,
    ) -> Vec<f32> {
        let dim = self.dim();
        let own = self.hyper.own;
        let mut h = Self::row(&self.user_emb, dim, user as usize)
            .map_or_else(|| vec![0.0; dim], |e| e.iter().map(|x| own * x).collect());
        let mut acc = vec![0.0f32; dim];
        let mut degree = 0usize;
        for (item, edge_type, strength) in edges {
            degree += 1;
            let (Some(e), Some(&alpha)) = (self.item_message(item), self.type_weight.get(edge_type as usize))
            else {
                continue;
            };
            let w = alpha * strength;
            for (a, x) in acc.iter_mut().zip(e) {
                *a += w * x;
            }
        }
        if degree > 0 {
            let norm = 1.0 / (degree as f32).sqrt();
            for (h, a) in h.iter_mut().zip(&acc) {
                *h += a * norm;
            }
        }
        h
    }

    /// An item's scored vector from its current users, `e(i) + item_context * c(i)` as in
    /// training, for an item whose users changed or that arrived after training (its own
    /// `e(i)` is then zero). `None` when the model has no item side (`item_context` 0) and
    /// the item was not trained: there is nothing to place it with.
    pub fn item_vector_from(
        &self,
        item: NodeId,
        edges: impl IntoIterator<Item = (NodeId, TypeId, f32)>,
    ) -> Option<Vec<f32>> {
        let dim = self.dim();
        let own = Self::row(&self.item_emb, dim, item as usize);
        if self.hyper.item_context == 0.0 {
            return own.map(<[f32]>::to_vec);
        }
        let mut g = own.map_or_else(|| vec![0.0; dim], <[f32]>::to_vec);
        let mut acc = vec![0.0f32; dim];
        let mut degree = 0usize;
        for (user, edge_type, strength) in edges {
            degree += 1;
            let (Some(e), Some(&alpha)) =
                (Self::row(&self.user_emb, dim, user as usize), self.type_weight.get(edge_type as usize))
            else {
                continue;
            };
            let w = alpha * strength;
            for (a, x) in acc.iter_mut().zip(e) {
                *a += w * x;
            }
        }
        if degree > 0 {
            let scale = self.hyper.item_context / (degree as f32).sqrt();
            for (g, a) in g.iter_mut().zip(&acc) {
                *g += a * scale;
            }
        }
        Some(g)
    }

    /// Whether scores have a co-visitation term.
    pub fn has_covisit(&self) -> bool {
        self.hyper.uses_covisit() && !self.covisit.is_empty()
    }

    /// The distinct items of a user's `recent` latest edges, given `(item, rank, tie)` for
    /// every edge (see `graph::History`): rank is the edge's place in the user's history, 0
    /// for the oldest. Edges of one second have no order, so the edges of the second the
    /// cut falls in all count: with no timestamps at all, that is the whole history.
    pub fn recent_items(&self, edges: impl IntoIterator<Item = (NodeId, u32, u32)>) -> Vec<NodeId> {
        if !self.has_covisit() {
            return Vec::new();
        }
        let edges: Vec<(NodeId, u32, u32)> = edges.into_iter().collect();
        let cut = edges.len().saturating_sub(self.hyper.recent) as u32;
        let from = edges.iter().find(|&&(_, rank, _)| rank == cut).map_or(0, |&(_, _, tie)| tie);
        let mut items: Vec<NodeId> =
            edges.iter().filter(|&&(_, rank, _)| rank >= from).map(|&(item, ..)| item).collect();
        items.sort_unstable();
        items.dedup();
        items
    }

    /// The co-visitation term of every item it is not zero for, sorted by item:
    /// `covisit_weight` times the mean over `recent` of sim(j, i).
    pub fn covisit_boost(&self, recent: &[NodeId]) -> Vec<(NodeId, f32)> {
        if recent.is_empty() || !self.has_covisit() {
            return Vec::new();
        }
        let scale = self.hyper.covisit_weight / recent.len() as f32;
        let mut all: Vec<(NodeId, f32)> = Vec::new();
        for &j in recent {
            let (items, sims) = self.covisit.row(j);
            all.extend(items.iter().copied().zip(sims.iter().map(|s| s * scale)));
        }
        all.sort_unstable_by_key(|&(i, _)| i);
        let mut merged: Vec<(NodeId, f32)> = Vec::with_capacity(all.len());
        for (i, b) in all {
            match merged.last_mut() {
                Some((last, sum)) if *last == i => *sum += b,
                _ => merged.push((i, b)),
            }
        }
        merged
    }

    /// The relation vector of one target, or the mean over all targets.
    pub fn relation(&self, target: Option<usize>) -> Vec<f32> {
        let dim = self.dim();
        match target {
            Some(t) => Self::row(&self.rel_emb, dim, t).map_or_else(|| vec![1.0; dim], <[f32]>::to_vec),
            None => {
                let n = self.targets.len().max(1) as f32;
                let mut r = vec![0.0; dim];
                for t in 0..self.targets.len() {
                    if let Some(row) = Self::row(&self.rel_emb, dim, t) {
                        for (a, x) in r.iter_mut().zip(row) {
                            *a += x / n;
                        }
                    }
                }
                r
            }
        }
    }

    /// `h(u) * r`: the query vector whose inner product with an item embedding is the score.
    pub fn query_vector(&self, user_vector: &[f32], relation: &[f32]) -> Vec<f32> {
        user_vector.iter().zip(relation).map(|(h, r)| h * r).collect()
    }
}

/// An item's co-visitation term in a boost from [`Model::covisit_boost`].
pub fn boost_of(boost: &[(NodeId, f32)], item: NodeId) -> f32 {
    boost.binary_search_by_key(&item, |&(i, _)| i).map_or(0.0, |at| boost[at].1)
}

/// The inner product every score is: eight lanes, so that the compiler vectorises it. The
/// index and exact scoring both use this one and give bit-identical scores.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    // `+ 0.0` turns -0.0 into 0.0, so that equal scores compare equal under total_cmp.
    acc.iter().sum::<f32>() + tail + 0.0
}

//! The in-memory training graph: both directions of every edge in compressed sparse rows.
//!
//! Built once per TRAIN from storage's edge stream; the model reads neighbourhoods from
//! here, never from RocksDB.

use gnnrec_storage::{EdgeRecord, NodeId, TypeId};

/// One side of the bipartite graph: for node `v`, its edges are `start[v]..start[v + 1]`.
#[derive(Debug, Clone, Default)]
pub struct Adjacency {
    start: Vec<usize>,
    pub other: Vec<NodeId>,
    pub edge_type: Vec<TypeId>,
    /// How strongly the edge speaks for a preference, before the model's type weights;
    /// see [`edge_strengths`].
    pub strength: Vec<f32>,
    /// The edge's place in its user's history, oldest first (see [`edge_strengths`]). Kept
    /// on the user side only: the item side's is empty, as nothing reads it there.
    pub rank: Vec<u32>,
    /// The rank of the user's first edge of the same second as this one: edges of one
    /// second have no order among themselves. User side only, as `rank`.
    pub tie: Vec<u32>,
}

impl Adjacency {
    /// The positions of a node's edges in `other`, `edge_type` and `strength`.
    pub fn range(&self, v: NodeId) -> std::ops::Range<usize> {
        match (self.start.get(v as usize), self.start.get(v as usize + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }

    pub fn degree(&self, v: NodeId) -> usize {
        self.range(v).len()
    }

    /// Counting sort of `(node, other, type, strength, (rank, tie))` rows into rows per node.
    fn build(
        nodes: usize,
        rows: impl Iterator<Item = (NodeId, NodeId, TypeId, f32, (u32, u32))> + Clone,
    ) -> Adjacency {
        let mut start = vec![0usize; nodes + 1];
        for (v, ..) in rows.clone() {
            start[v as usize + 1] += 1;
        }
        for i in 0..nodes {
            start[i + 1] += start[i];
        }
        let total = start[nodes];
        let mut next = start.clone();
        let mut adj = Adjacency {
            start,
            other: vec![0; total],
            edge_type: vec![0; total],
            strength: vec![0.0; total],
            rank: vec![0; total],
            tie: vec![0; total],
        };
        for (v, o, t, s, (r, tie)) in rows {
            let at = next[v as usize];
            next[v as usize] += 1;
            adj.other[at] = o;
            adj.edge_type[at] = t;
            adj.strength[at] = s;
            adj.rank[at] = r;
            adj.tie[at] = tie;
        }
        // Rows sorted by the other end make `connected` a binary search.
        for v in 0..nodes {
            let range = adj.start[v]..adj.start[v + 1];
            if adj.other[range.clone()].is_sorted() {
                continue;
            }
            let mut row: Vec<(NodeId, TypeId, f32, u32, u32)> = range
                .clone()
                .map(|p| (adj.other[p], adj.edge_type[p], adj.strength[p], adj.rank[p], adj.tie[p]))
                .collect();
            row.sort_by_key(|&(o, t, ..)| (o, t));
            for (p, (o, t, s, r, tie)) in range.zip(row) {
                adj.other[p] = o;
                adj.edge_type[p] = t;
                adj.strength[p] = s;
                adj.rank[p] = r;
                adj.tie[p] = tie;
            }
        }
        adj
    }

    /// Whether node `v` has an edge (of any type) to `other`.
    pub fn connected(&self, v: NodeId, other: NodeId) -> bool {
        self.other[self.range(v)].binary_search(&other).is_ok()
    }
}

/// Users, items and typed edges, indexed from both sides.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// One past the largest user id; ids of deleted users are empty rows.
    pub users: usize,
    pub items: usize,
    pub by_user: Adjacency,
    pub by_item: Adjacency,
}

impl Graph {
    pub fn from_edges(
        users: usize,
        items: usize,
        edges: &[EdgeRecord],
        recency: f32,
        weight_power: f32,
    ) -> Graph {
        let History { strength, rank, tie } = history(edges, recency, weight_power);
        let rows = edges.iter().zip(strength.iter().zip(rank.iter().zip(&tie)));
        let by_user = Adjacency::build(
            users,
            rows.clone().map(|(e, (&s, (&r, &t)))| (e.user, e.item, e.edge_type, s, (r, t))),
        );
        let mut by_item =
            Adjacency::build(items, rows.map(|(e, (&s, (&r, &t)))| (e.item, e.user, e.edge_type, s, (r, t))));
        by_item.rank = Vec::new();
        by_item.tie = Vec::new();
        Graph { users, items, by_user, by_item }
    }
}

/// The strength of each edge: `(1 + ln count) * (1 + recency * r) * w^weight_power`, where
/// r runs from 0 for the user's oldest edge to 1 for their latest (by last timestamp) and w
/// is the edge's mean weight. A repeated interaction counts more with diminishing returns,
/// what a user did lately says more about what they want next, and (when weight_power is
/// not 0) a high rating more than a low one.
pub fn edge_strengths(edges: &[EdgeRecord], recency: f32, weight_power: f32) -> Vec<f32> {
    history(edges, recency, weight_power).strength
}

/// Per edge, in the order of the edges given: [`edge_strengths`], the edge's rank in its
/// user's history (0 for the oldest) and the rank of the user's first edge of the same
/// second (`Adjacency::tie`).
pub struct History {
    pub strength: Vec<f32>,
    pub rank: Vec<u32>,
    pub tie: Vec<u32>,
}

/// The [`History`] of every edge.
pub fn history(edges: &[EdgeRecord], recency: f32, weight_power: f32) -> History {
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by_key(|&i| (edges[i].user, edges[i].value.last_ts, edges[i].item, edges[i].edge_type));
    let mut strength = vec![0.0; edges.len()];
    let mut ranks = vec![0u32; edges.len()];
    let mut ties = vec![0u32; edges.len()];
    let mut start = 0;
    while start < order.len() {
        let user = edges[order[start]].user;
        let end = start + order[start..].iter().take_while(|&&i| edges[i].user == user).count();
        let span = (end - start).saturating_sub(1).max(1) as f32;
        for (rank, &i) in order[start..end].iter().enumerate() {
            let r = if end - start > 1 { rank as f32 / span } else { 1.0 };
            let value = &edges[i].value;
            let count = value.count.max(1) as f32;
            let mean_weight =
                if weight_power == 0.0 { 1.0 } else { (value.weight / count).max(0.0).powf(weight_power) };
            strength[i] = (1.0 + count.ln()) * (1.0 + recency * r) * mean_weight;
            ranks[i] = rank as u32;
            let previous = (rank > 0).then(|| order[start + rank - 1]);
            ties[i] = match previous {
                Some(p) if edges[p].value.last_ts == value.last_ts => ties[p],
                _ => rank as u32,
            };
        }
        start = end;
    }
    History { strength, rank: ranks, tie: ties }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnnrec_storage::EdgeValue;

    fn edge(user: NodeId, edge_type: TypeId, item: NodeId, count: u32) -> EdgeRecord {
        EdgeRecord { user, edge_type, item, value: EdgeValue { weight: 1.0, count, first_ts: 0, last_ts: 0 } }
    }

    #[test]
    fn both_directions_hold_every_edge() {
        let g = Graph::from_edges(3, 2, &[edge(0, 1, 1, 1), edge(2, 0, 1, 3), edge(0, 0, 0, 1)], 0.0, 0.0);
        assert_eq!((g.by_user.other.len(), g.by_item.other.len()), (3, 3));
        let items_of_0: Vec<_> = g.by_user.range(0).map(|p| g.by_user.other[p]).collect();
        assert_eq!(items_of_0, [0, 1]);
        assert!(g.by_user.connected(0, 1) && !g.by_user.connected(1, 1) && !g.by_user.connected(9, 0));
        assert_eq!(g.by_user.degree(1), 0);
        let users_of_1: Vec<_> = g.by_item.range(1).map(|p| g.by_item.other[p]).collect();
        assert_eq!(users_of_1, [0, 2]);
        let p = g.by_item.range(1).last().unwrap();
        assert!((g.by_item.strength[p] - (1.0 + 3f32.ln())).abs() < 1e-6);
        assert_eq!(g.by_user.range(99), 0..0);
    }

    #[test]
    fn weight_power_scales_by_the_mean_weight() {
        let mut rated = edge(0, 0, 0, 2);
        rated.value.weight = 8.0;
        let plain = edge_strengths(&[rated], 0.0, 0.0)[0];
        let weighted = edge_strengths(&[rated], 0.0, 0.5)[0];
        assert!((plain - (1.0 + 2f32.ln())).abs() < 1e-6);
        // Mean weight 4, to the power 0.5.
        assert!((weighted - plain * 2.0).abs() < 1e-5);
    }
}

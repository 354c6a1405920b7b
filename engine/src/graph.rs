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
    /// How strongly the edge speaks for a preference, before the model's type weights:
    /// `1 + ln(count)`, so a repeated interaction counts more, with diminishing returns.
    pub strength: Vec<f32>,
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

    /// Counting sort of `(node, other, type, strength)` rows into rows per node.
    fn build(nodes: usize, rows: impl Iterator<Item = (NodeId, NodeId, TypeId, f32)> + Clone) -> Adjacency {
        let mut start = vec![0usize; nodes + 1];
        for (v, ..) in rows.clone() {
            start[v as usize + 1] += 1;
        }
        for i in 0..nodes {
            start[i + 1] += start[i];
        }
        let total = start[nodes];
        let mut next = start.clone();
        let mut adj =
            Adjacency { start, other: vec![0; total], edge_type: vec![0; total], strength: vec![0.0; total] };
        for (v, o, t, s) in rows {
            let at = next[v as usize];
            next[v as usize] += 1;
            adj.other[at] = o;
            adj.edge_type[at] = t;
            adj.strength[at] = s;
        }
        adj
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
    pub fn from_edges(users: usize, items: usize, edges: &[EdgeRecord]) -> Graph {
        let strength = |e: &EdgeRecord| 1.0 + (e.value.count.max(1) as f32).ln();
        let by_user =
            Adjacency::build(users, edges.iter().map(|e| (e.user, e.item, e.edge_type, strength(e))));
        let by_item =
            Adjacency::build(items, edges.iter().map(|e| (e.item, e.user, e.edge_type, strength(e))));
        Graph { users, items, by_user, by_item }
    }
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
        let g = Graph::from_edges(3, 2, &[edge(0, 1, 1, 1), edge(2, 0, 1, 3), edge(0, 0, 0, 1)]);
        assert_eq!((g.by_user.other.len(), g.by_item.other.len()), (3, 3));
        let items_of_0: Vec<_> = g.by_user.range(0).map(|p| g.by_user.other[p]).collect();
        assert_eq!(items_of_0, [1, 0]);
        assert_eq!(g.by_user.degree(1), 0);
        let users_of_1: Vec<_> = g.by_item.range(1).map(|p| g.by_item.other[p]).collect();
        assert_eq!(users_of_1, [0, 2]);
        let p = g.by_item.range(1).last().unwrap();
        assert!((g.by_item.strength[p] - (1.0 + 3f32.ln())).abs() < 1e-6);
        assert_eq!(g.by_user.range(99), 0..0);
    }
}

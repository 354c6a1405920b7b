//! Co-visitation: for every item, the items most often touched by the same users.
//!
//! The GNN's score is an inner product of 64-number vectors, which cannot hold the
//! fine-grained "people who watched this also watched that" of a catalogue. This table
//! keeps it: for item j, its `k` nearest items by the cosine of their user sets (two-hop
//! paths item -> user -> item, counted once per user). The model adds, for the items a
//! user touched last, their similarity to the item scored (see `Model::covisit_boost`);
//! the GNN is trained with that term in its score and learns what it does not say.

use bincode::{Decode, Encode};
use gnnrec_storage::NodeId;

use crate::graph::Graph;

/// Compressed rows: item j's neighbours are `item[start[j]..start[j + 1]]`, sorted by id,
/// with their similarities in `sim`.
#[derive(Debug, Clone, Default, PartialEq, Encode, Decode)]
pub struct Covisit {
    start: Vec<u32>,
    item: Vec<NodeId>,
    sim: Vec<f32>,
}

impl Covisit {
    /// The `k` most similar items of every item of `graph` (cosine of the sets of users
    /// with an edge of any type to each). Costs the sum over users of degree squared.
    pub(crate) fn build(graph: &Graph, k: usize) -> Covisit {
        let items = graph.items;
        let mut table = Covisit { start: Vec::with_capacity(items + 1), ..Covisit::default() };
        table.start.push(0);
        if k == 0 {
            table.start.resize(items + 1, 0);
            return table;
        }
        // Distinct users per item: a user with a click and a buy of an item counts once.
        let users_of = |i: NodeId| dedup(&graph.by_item.other[graph.by_item.range(i)]);
        let degree: Vec<f32> = (0..items as NodeId).map(|i| users_of(i).count() as f32).collect();
        let mut count = vec![0u32; items];
        let mut touched: Vec<NodeId> = Vec::new();
        let mut row: Vec<(NodeId, f32)> = Vec::new();
        for j in 0..items as NodeId {
            for u in users_of(j) {
                for i in dedup(&graph.by_user.other[graph.by_user.range(u)]) {
                    if i != j {
                        if count[i as usize] == 0 {
                            touched.push(i);
                        }
                        count[i as usize] += 1;
                    }
                }
            }
            row.clear();
            for &i in &touched {
                let shared = count[i as usize] as f32;
                row.push((i, shared / (degree[i as usize] * degree[j as usize]).sqrt()));
                count[i as usize] = 0;
            }
            touched.clear();
            // Most similar first, ties to the smaller id, so the table is deterministic.
            let by_similarity =
                |a: &(NodeId, f32), b: &(NodeId, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            if row.len() > k {
                row.select_nth_unstable_by(k, by_similarity);
                row.truncate(k);
            }
            row.sort_unstable_by_key(|&(i, _)| i);
            for &(i, s) in &row {
                table.item.push(i);
                table.sim.push(s);
            }
            table.start.push(table.item.len() as u32);
        }
        table
    }

    /// The stored neighbours of item j and their similarities (empty for an item the table
    /// does not know).
    pub fn row(&self, j: NodeId) -> (&[NodeId], &[f32]) {
        match (self.start.get(j as usize), self.start.get(j as usize + 1)) {
            (Some(&a), Some(&b)) => (&self.item[a as usize..b as usize], &self.sim[a as usize..b as usize]),
            _ => (&[], &[]),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.item.is_empty()
    }
}

/// The distinct values of a sorted slice.
fn dedup(sorted: &[NodeId]) -> impl Iterator<Item = NodeId> + '_ {
    sorted.iter().enumerate().filter(move |&(n, v)| n == 0 || sorted[n - 1] != *v).map(|(_, &v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnnrec_storage::{EdgeRecord, EdgeValue};

    fn edge(user: NodeId, edge_type: u16, item: NodeId) -> EdgeRecord {
        EdgeRecord {
            user,
            edge_type,
            item,
            value: EdgeValue { weight: 1.0, count: 1, first_ts: 0, last_ts: 0 },
        }
    }

    /// The similarity of item i in item j's row; 0 when i is not among j's neighbours.
    fn get(table: &Covisit, j: NodeId, i: NodeId) -> f32 {
        let (items, sims) = table.row(j);
        items.binary_search(&i).map_or(0.0, |at| sims[at])
    }

    #[test]
    fn similarity_is_the_cosine_of_user_sets_and_rows_keep_the_k_best() {
        // Users 0 and 1 touched items 0 and 1; user 2 touched items 0 and 2 (twice: two
        // types count once); item 3 shares no user.
        let edges = [
            edge(0, 0, 0),
            edge(0, 0, 1),
            edge(1, 0, 0),
            edge(1, 0, 1),
            edge(2, 0, 0),
            edge(2, 0, 2),
            edge(2, 1, 2),
            edge(3, 0, 3),
        ];
        let graph = Graph::from_edges(4, 4, &edges, 0.0, 0.0);
        let table = Covisit::build(&graph, 8);
        // items 0 and 1: 2 shared users of 3 and 2.
        assert!((get(&table, 0, 1) - 2.0 / 6f32.sqrt()).abs() < 1e-6);
        assert!((get(&table, 1, 0) - 2.0 / 6f32.sqrt()).abs() < 1e-6);
        assert!((get(&table, 0, 2) - 1.0 / 3f32.sqrt()).abs() < 1e-6);
        assert_eq!(get(&table, 1, 2), 0.0);
        assert_eq!(table.row(3).0, &[] as &[NodeId]);
        assert_eq!(get(&table, 0, 0), 0.0, "an item is not its own neighbour");
        // k = 1 keeps item 0's best neighbour only.
        let one = Covisit::build(&graph, 1);
        assert_eq!(one.row(0).0, &[1]);
        assert!(Covisit::build(&graph, 0).is_empty());
        assert_eq!(get(&table, 9, 0), 0.0, "an unknown item has no neighbours");
    }
}

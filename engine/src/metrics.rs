//! Ranking metrics, exactly as PROTOCOL.md of the benchmark data defines them.
//!
//! Pure functions of scores: no model, no storage. One user at a time goes through
//! [`rank_user`]; [`MetricTotals`] averages over users, each weighted equally.

/// The metrics of one user, or their mean over users.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Hits in the top k divided by min(k, number of held-out items).
    pub recall: f64,
    /// DCG of the top k over the ideal DCG, binary relevance.
    pub ndcg: f64,
    /// 1 when at least one held-out item is in the top k.
    pub hit_rate: f64,
    /// Reciprocal rank of the first held-out item in the full ranking.
    pub mrr: f64,
    /// Share of (held-out, other candidate) pairs the scores order correctly; ties count half.
    pub auc: f64,
}

/// Ranks one user's candidates and measures the ranking against the held-out items.
///
/// `candidates` are (item, score) with the user's own training items already removed;
/// `is_relevant(item)` says whether an item is held out for this user. Ties are broken by
/// `tie_key` ascending, so that results do not depend on the order of the candidates.
/// Returns `None` when no candidate is relevant.
pub fn rank_user<K: Ord>(
    candidates: &mut [(u32, f32)],
    is_relevant: impl Fn(u32) -> bool,
    tie_key: impl Fn(u32) -> K,
    k: usize,
) -> Option<Metrics> {
    let relevant = candidates.iter().filter(|(i, _)| is_relevant(*i)).count();
    if relevant == 0 {
        return None;
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| tie_key(a.0).cmp(&tie_key(b.0))));

    let ideal = relevant.min(k);
    let mut hits = 0usize;
    let mut dcg = 0.0;
    let mut first_hit = None;
    for (rank, (item, _)) in candidates.iter().enumerate() {
        if is_relevant(*item) {
            if rank < k {
                hits += 1;
                dcg += 1.0 / ((rank + 2) as f64).log2();
            }
            first_hit.get_or_insert(rank);
        }
    }
    let idcg: f64 = (0..ideal).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();

    // AUC from the sorted order: every relevant item beats the negatives below it.
    // Equal scores are resolved by the tie key in the sort, but count half here.
    let negatives = candidates.len() - relevant;
    let auc = if negatives == 0 {
        1.0
    } else {
        let mut correct = 0.0;
        let mut i = 0;
        let mut negatives_above = 0usize;
        while i < candidates.len() {
            let mut j = i;
            while j < candidates.len() && candidates[j].1 == candidates[i].1 {
                j += 1;
            }
            let group = &candidates[i..j];
            let pos = group.iter().filter(|(it, _)| is_relevant(*it)).count();
            let neg = group.len() - pos;
            let below = negatives - negatives_above - neg;
            correct += pos as f64 * (below as f64 + 0.5 * neg as f64);
            negatives_above += neg;
            i = j;
        }
        correct / (relevant as f64 * negatives as f64)
    };

    Some(Metrics {
        recall: hits as f64 / ideal as f64,
        ndcg: dcg / idcg,
        hit_rate: if hits > 0 { 1.0 } else { 0.0 },
        mrr: first_hit.map_or(0.0, |r| 1.0 / (r + 1) as f64),
        auc,
    })
}

/// Sums per-user metrics into unweighted means.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricTotals {
    sum: Metrics,
    pub users: usize,
}

impl MetricTotals {
    pub fn add(&mut self, m: &Metrics) {
        self.sum.recall += m.recall;
        self.sum.ndcg += m.ndcg;
        self.sum.hit_rate += m.hit_rate;
        self.sum.mrr += m.mrr;
        self.sum.auc += m.auc;
        self.users += 1;
    }

    pub fn mean(&self) -> Metrics {
        let n = self.users.max(1) as f64;
        Metrics {
            recall: self.sum.recall / n,
            ndcg: self.sum.ndcg / n,
            hit_rate: self.sum.hit_rate / n,
            mrr: self.sum.mrr / n,
            auc: self.sum.auc / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case worked out by hand. Candidates 0..6 with scores; items 1 and 4 are held out.
    /// Order by score: 2 (0.9), 1 (0.8), 5 (0.7), 0 (0.5), 4 (0.5, tie broken by id: 0 first),
    /// 3 (0.1), 6 (0.0).
    #[test]
    fn hand_computed_case() {
        let mut c = vec![(0, 0.5), (1, 0.8), (2, 0.9), (3, 0.1), (4, 0.5), (5, 0.7), (6, 0.0)];
        let m = rank_user(&mut c, |i| i == 1 || i == 4, |i| i, 3).unwrap();
        // Top 3 = [2, 1, 5]: one hit of min(3, 2) = 2.
        assert_eq!(m.recall, 0.5);
        assert_eq!(m.hit_rate, 1.0);
        // DCG = 1/log2(3); IDCG = 1/log2(2) + 1/log2(3).
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((m.ndcg - expected).abs() < 1e-12);
        // The first held-out item is at rank 2.
        assert_eq!(m.mrr, 0.5);
        // Negatives: 0, 2, 3, 5, 6. Item 1 (0.8) beats 0, 3, 5 and 6: 4 pairs.
        // Item 4 (0.5) beats 3 and 6 and ties 0 (half): 2.5 pairs. AUC = 6.5 / 10.
        assert!((m.auc - 0.65).abs() < 1e-12);
    }

    #[test]
    fn recall_is_truncated_at_k() {
        let mut c: Vec<(u32, f32)> = (0..10).map(|i| (i, 10.0 - i as f32)).collect();
        // Five held-out items, the first two ranked 1st and 2nd; k = 2: recall 2 / min(2, 5) = 1.
        let m = rank_user(&mut c, |i| !(2..=6).contains(&i), |i| i, 2).unwrap();
        assert_eq!(m.recall, 1.0);
        assert_eq!(m.ndcg, 1.0);
    }

    #[test]
    fn no_relevant_candidate_is_skipped() {
        let mut c = vec![(0, 1.0), (1, 0.5)];
        assert!(rank_user(&mut c, |_| false, |i| i, 10).is_none());
    }

    #[test]
    fn means_weight_users_equally() {
        let mut t = MetricTotals::default();
        t.add(&Metrics { recall: 1.0, ndcg: 1.0, hit_rate: 1.0, mrr: 1.0, auc: 1.0 });
        t.add(&Metrics::default());
        assert_eq!(t.mean().recall, 0.5);
        assert_eq!(t.users, 2);
    }
}

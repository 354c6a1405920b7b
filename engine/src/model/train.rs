//! Training with dfdx: positive edges against sampled negatives, a ranking loss, and a
//! sparse optimizer so that a step costs O(batch), not O(nodes).
//!
//! dfdx's gradients are dense over a tensor, so the embedding tables are not tensors. A
//! step gathers the rows it needs (users, their sampled neighbours, positive and negative
//! items, relation vectors) into one small leaf tensor `x`, runs the model on `x` with
//! dfdx's autograd, and applies Adam to just those rows (lazy Adam: the moments of rows a
//! step does not touch stay as they are). The per-type weights alpha are a dense dfdx
//! tensor trained by dfdx's own Adam.

use std::time::Instant;

use dfdx::optim::{Adam, Optimizer};
use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Covisit, Hyper, Loss, Model, Sampler, MAX_TYPES};
use crate::graph::Graph;
use crate::metrics::{rank_user, MetricTotals};

type Dev = Cpu;
type Alpha = Tensor<Rank1<MAX_TYPES>, f32, Dev>;

/// One positive training example: a user, an item and the target's position in
/// `Model::targets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Example {
    pub user: u32,
    pub item: u32,
    pub target: u32,
}

/// Held-out positives per user, for early stopping.
#[derive(Debug, Clone, Default)]
pub(crate) struct Validation {
    pub users: Vec<(u32, Vec<u32>)>,
}

/// What one epoch did, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    pub loss: f64,
    /// NDCG@20 on the validation edges (0 when there are none).
    pub val_ndcg: f64,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
    /// Optimisation steps in the epoch and their mean wall time.
    pub steps: usize,
    pub step_seconds: f64,
    /// Mean number of distinct parameter rows a step gathered and updated: the size of a
    /// step's work, bounded by the batch, never by the number of nodes.
    pub rows_per_step: f64,
}

/// What a finished training did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrainOutcome {
    pub model: Model,
    pub epochs: usize,
    pub best_epoch: usize,
    pub loss: f64,
    pub val_ndcg: f64,
}

/// Where a row of the step's leaf tensor comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Row {
    User(u32),
    Item(u32),
    Rel(u32),
}

/// Parameter tables with their Adam moments.
struct Table {
    values: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Table {
    fn new(values: Vec<f32>) -> Table {
        let n = values.len();
        Table { values, m: vec![0.0; n], v: vec![0.0; n] }
    }
}

/// Everything a step needs, as index arrays into the leaf tensor's rows.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    rows: Vec<Row>,
    b: usize,
    s: usize,
    k: usize,
    user: Vec<usize>,
    rel: Vec<usize>,
    pos: Vec<usize>,
    /// b x s neighbour rows (padding points at row 0 with scale 0).
    nbr: Vec<usize>,
    nbr_type: Vec<usize>,
    nbr_scale: Vec<f32>,
    /// b x k negative item rows.
    neg: Vec<usize>,
    /// How much each example counts in the loss: later edges of a user count more.
    weight: Vec<f32>,
}

struct RowMap {
    index: std::collections::HashMap<Row, usize>,
}

impl RowMap {
    fn get(&mut self, rows: &mut Vec<Row>, row: Row) -> usize {
        *self.index.entry(row).or_insert_with(|| {
            rows.push(row);
            rows.len() - 1
        })
    }
}

pub(crate) struct Trainer<'g> {
    graph: &'g Graph,
    hyper: Hyper,
    dev: Dev,
    users: Table,
    items: Table,
    rels: Table,
    /// c(i) for every item, from the user table at the start of the epoch; a constant
    /// input to the step (no gradient flows into users through it).
    item_ctx: Vec<f32>,
    alpha: Alpha,
    alpha_opt: Adam<Alpha, f32, Dev>,
    step: i32,
    rng: ChaCha8Rng,
    /// Cumulative degree^0.75 of items, for popularity sampling.
    popularity: Vec<f64>,
    /// The co-visitation table of `graph`, for the model's scores; empty when the term is
    /// off. Training does not see it: the GNN learns the ranking on its own, and the
    /// term is added to its scores (validation's included).
    covisit: std::sync::Arc<Covisit>,
}

impl<'g> Trainer<'g> {
    /// A fresh model. `type_weight` are the types' default strengths, alpha's start.
    pub fn new(graph: &'g Graph, hyper: Hyper, targets: usize, type_weight: &[f32]) -> Trainer<'g> {
        let mut rng = ChaCha8Rng::seed_from_u64(hyper.seed);
        let dim = hyper.dim;
        let scale = 0.1 / (dim as f32).sqrt();
        let mut init =
            |n: usize| -> Vec<f32> { (0..n * dim).map(|_| rng.gen_range(-scale..scale)).collect() };
        let users = Table::new(init(graph.users));
        let items = Table::new(init(graph.items));
        let rels = Table::new(vec![1.0; targets * dim]);
        let dev = Dev::seed_from_u64(hyper.seed);
        let mut alpha_init = [0.0f32; MAX_TYPES];
        for (a, w) in alpha_init.iter_mut().zip(type_weight) {
            // Every type starts with a voice; training decides how loud.
            *a = w.max(0.1);
        }
        let alpha: Alpha = dev.tensor(alpha_init);
        let alpha_opt = Adam::new(&alpha, AdamConfig { lr: f64::from(hyper.lr) * 0.1, ..Default::default() });
        let mut popularity = Vec::with_capacity(graph.items);
        let mut acc = 0.0f64;
        for i in 0..graph.items {
            acc += (graph.by_item.degree(i as u32) as f64).powf(0.75);
            popularity.push(acc);
        }
        let rng = ChaCha8Rng::seed_from_u64(hyper.seed ^ 0x9e37_79b9_7f4a_7c15);
        let covisit = std::sync::Arc::new(if hyper.uses_covisit() {
            Covisit::build(graph, hyper.covisit, hyper.covisit_window)
        } else {
            Covisit::default()
        });
        Trainer {
            graph,
            hyper,
            dev,
            users,
            items,
            rels,
            item_ctx: Vec::new(),
            alpha,
            alpha_opt,
            step: 0,
            rng,
            popularity,
            covisit,
        }
    }

    /// A negative for `user`: an item the user has no edge with (a few draws are allowed;
    /// a user connected to nearly every item keeps the last draw).
    fn sample_negative(&mut self, user: u32) -> u32 {
        let mut item = self.draw_item();
        for _ in 0..8 {
            if !self.graph.by_user.connected(user, item) {
                break;
            }
            item = self.draw_item();
        }
        item
    }

    fn draw_item(&mut self) -> u32 {
        match self.hyper.sampler {
            Sampler::Uniform => self.rng.gen_range(0..self.graph.items as u32),
            Sampler::Popularity => {
                let total = self.popularity.last().copied().unwrap_or(0.0);
                if total <= 0.0 {
                    return self.rng.gen_range(0..self.graph.items as u32);
                }
                let x = self.rng.gen_range(0.0..total);
                self.popularity.partition_point(|&c| c <= x).min(self.graph.items - 1) as u32
            }
        }
    }

    /// The current model's score of an item for a query vector, for hard-negative mining.
    fn score_item(&self, query: &[f32], item: u32) -> f32 {
        let dim = self.hyper.dim;
        let span = item as usize * dim..(item as usize + 1) * dim;
        let mut score = super::dot(query, &self.items.values[span.clone()]);
        if let Some(c) = self.item_ctx.get(span) {
            score += self.hyper.item_context * super::dot(query, c);
        }
        score
    }

    /// c(i) = sum over the item's edges of alpha(t) * strength * e(u) / sqrt(deg i).
    fn item_context(&self) -> Vec<f32> {
        if self.hyper.item_context == 0.0 {
            return Vec::new();
        }
        let dim = self.hyper.dim;
        let alpha = self.alpha.as_vec();
        let adj = &self.graph.by_item;
        let mut ctx = vec![0.0f32; self.graph.items * dim];
        for i in 0..self.graph.items {
            let range = adj.range(i as u32);
            if range.is_empty() {
                continue;
            }
            let norm = 1.0 / (range.len() as f32).sqrt();
            let out = &mut ctx[i * dim..(i + 1) * dim];
            for p in range {
                let u = adj.other[p] as usize;
                let w = alpha[(adj.edge_type[p] as usize).min(MAX_TYPES - 1)] * adj.strength[p] * norm;
                for (o, x) in out.iter_mut().zip(&self.users.values[u * dim..(u + 1) * dim]) {
                    *o += w * x;
                }
            }
        }
        ctx
    }

    /// The constant c(i) rows of a list of batch rows (all items), scaled by item_context.
    fn context_rows(&self, rows: &[usize], batch: &Batch) -> Vec<f32> {
        let dim = self.hyper.dim;
        let mut out = Vec::with_capacity(rows.len() * dim);
        for &r in rows {
            match (batch.rows[r], self.item_ctx.is_empty()) {
                (Row::Item(i), false) => out.extend(
                    self.item_ctx[i as usize * dim..(i as usize + 1) * dim]
                        .iter()
                        .map(|c| c * self.hyper.item_context),
                ),
                _ => out.extend(std::iter::repeat_n(0.0, dim)),
            }
        }
        out
    }

    /// Samples neighbours and negatives for a slice of examples and lays out the batch.
    pub(crate) fn make_batch(&mut self, examples: &[Example]) -> Batch {
        let hyper = self.hyper.clone();
        let mut map = RowMap { index: std::collections::HashMap::with_capacity(examples.len() * 8) };
        let mut batch = Batch { b: examples.len(), k: hyper.negatives.max(1), ..Batch::default() };
        let mut sampled: Vec<Vec<(usize, usize, f32)>> = Vec::with_capacity(examples.len());
        let adj = &self.graph.by_user;
        for ex in examples {
            let range = adj.range(ex.user);
            // The row is sorted by item, so the example's own edges are one run of it.
            let row = &adj.other[range.clone()];
            let own = range.start + row.partition_point(|&o| o < ex.item)
                ..range.start + row.partition_point(|&o| o <= ex.item);
            // The example's own edge is what the model must predict: leave it out of the
            // user's neighbourhood, as it will be absent for the items RECOMMEND ranks.
            let candidates: Vec<usize> = (range.start..own.start).chain(own.end..range.end).collect();
            // The example's place in the user's history, 0 (oldest) to 1 (latest).
            let place = match adj.rank[own].iter().min() {
                Some(&rank) if range.len() > 1 => rank as f32 / (range.len() - 1) as f32,
                _ => 1.0,
            };
            batch.weight.push((1.0 + hyper.fresh * place) / (1.0 + hyper.fresh / 2.0));
            let degree = candidates.len();
            let picked: Vec<usize> = if degree <= hyper.fanout {
                candidates
            } else {
                rand::seq::index::sample(&mut self.rng, degree, hyper.fanout)
                    .into_iter()
                    .map(|j| candidates[j])
                    .collect()
            };
            // sum over a sample times degree / sample size estimates the full sum.
            let scale = if picked.is_empty() { 0.0 } else { (degree as f32).sqrt() / picked.len() as f32 };
            let mut row = Vec::with_capacity(picked.len());
            for p in picked {
                let r = map.get(&mut batch.rows, Row::Item(adj.other[p]));
                row.push((r, adj.edge_type[p] as usize, adj.strength[p] * scale));
            }
            sampled.push(row);
            batch.user.push(map.get(&mut batch.rows, Row::User(ex.user)));
            batch.rel.push(map.get(&mut batch.rows, Row::Rel(ex.target)));
            batch.pos.push(map.get(&mut batch.rows, Row::Item(ex.item)));
        }
        batch.s = sampled.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for row in &sampled {
            for j in 0..batch.s {
                let (r, t, w) = row.get(j).copied().unwrap_or((0, 0, 0.0));
                batch.nbr.push(r);
                batch.nbr_type.push(t.min(MAX_TYPES - 1));
                batch.nbr_scale.push(w);
            }
        }
        for (n, ex) in examples.iter().enumerate() {
            let query =
                if hyper.hard > 1 { Some(self.current_query(ex, &sampled[n], &batch.rows)) } else { None };
            for _ in 0..batch.k {
                let mut best = self.sample_negative(ex.user);
                if let Some(q) = &query {
                    let mut best_score = self.score_item(q, best);
                    for _ in 1..hyper.hard {
                        let c = self.sample_negative(ex.user);
                        let s = self.score_item(q, c);
                        if s > best_score {
                            (best, best_score) = (c, s);
                        }
                    }
                }
                batch.neg.push(map.get(&mut batch.rows, Row::Item(best)));
            }
        }
        batch
    }

    /// h(u) * r with the current tables, as the batch's sampled neighbourhood sees it.
    fn current_query(&self, ex: &Example, neighbours: &[(usize, usize, f32)], rows: &[Row]) -> Vec<f32> {
        let dim = self.hyper.dim;
        let alpha = self.alpha.as_vec();
        let u = ex.user as usize;
        let mut h: Vec<f32> =
            self.users.values[u * dim..(u + 1) * dim].iter().map(|x| self.hyper.own * x).collect();
        for &(r, t, w) in neighbours {
            if let Row::Item(i) = rows[r] {
                let e = &self.items.values[i as usize * dim..(i as usize + 1) * dim];
                for (a, x) in h.iter_mut().zip(e) {
                    *a += alpha[t] * w * x;
                }
            }
        }
        let t = ex.target as usize;
        h.iter().zip(&self.rels.values[t * dim..(t + 1) * dim]).map(|(a, b)| a * b).collect()
    }

    fn gather_rows(&self, rows: &[Row]) -> Vec<f32> {
        let dim = self.hyper.dim;
        let mut x = Vec::with_capacity(rows.len() * dim);
        for row in rows {
            let (table, id) = self.table(*row);
            x.extend_from_slice(&table.values[id * dim..(id + 1) * dim]);
        }
        x
    }

    fn table(&self, row: Row) -> (&Table, usize) {
        match row {
            Row::User(u) => (&self.users, u as usize),
            Row::Item(i) => (&self.items, i as usize),
            Row::Rel(t) => (&self.rels, t as usize),
        }
    }

    fn table_mut(&mut self, row: Row) -> (&mut Table, usize) {
        match row {
            Row::User(u) => (&mut self.users, u as usize),
            Row::Item(i) => (&mut self.items, i as usize),
            Row::Rel(t) => (&mut self.rels, t as usize),
        }
    }

    /// The batch's loss and its gradients: one row of `dx` per row of the batch, and the
    /// gradients of alpha inside `Gradients`.
    pub(crate) fn loss_and_grads(
        &self,
        batch: &Batch,
        x_values: Vec<f32>,
    ) -> (f32, Vec<f32>, Gradients<f32, Dev>) {
        let dim = self.hyper.dim;
        let (b, s, k, m) = (batch.b, batch.s, batch.k, batch.rows.len());
        let dev = &self.dev;
        let x: Tensor<(usize, usize), f32, Dev> = dev.tensor_from_vec(x_values, (m, dim));
        let idx = |v: &[usize]| dev.tensor_from_vec(v.to_vec(), (v.len(),));
        let idx2 = |v: &[usize], cols: usize| dev.tensor_from_vec(v.to_vec(), (v.len() / cols, cols));

        // Leaky gradients keep every tensor's gradient, x's and alpha's among them; a
        // step's tensors are batch-sized, so that costs little.
        let xt = x.clone().traced(Gradients::leaky());
        let alpha = self.alpha.retaped::<OwnedTape<f32, Dev>>();
        let coef = alpha.gather(idx(&batch.nbr_type)).reshape_like(&(b, s));
        let coef = coef * dev.tensor_from_vec(batch.nbr_scale.clone(), (b, s));
        let neighbours = xt.retaped::<OwnedTape<f32, Dev>>().gather(idx2(&batch.nbr, s));
        let message =
            (neighbours * coef.broadcast_like::<_, Axis<2>>(&(b, s, dim))).sum::<(usize, usize), Axis<1>>();
        let h = xt.retaped::<OwnedTape<f32, Dev>>().gather(idx(&batch.user)) * self.hyper.own + message;
        let query = h * xt.retaped::<OwnedTape<f32, Dev>>().gather(idx(&batch.rel));
        let pos = xt.retaped::<OwnedTape<f32, Dev>>().gather(idx(&batch.pos))
            + dev.tensor_from_vec(self.context_rows(&batch.pos, batch), (b, dim));
        let s_pos = (query.retaped::<OwnedTape<f32, Dev>>() * pos).sum::<(usize,), Axis<1>>();
        let neg = xt.retaped::<OwnedTape<f32, Dev>>().gather(idx2(&batch.neg, k))
            + dev.tensor_from_vec(self.context_rows(&batch.neg, batch), (b, k, dim));
        let s_neg = (query.broadcast_like::<_, Axis<1>>(&(b, k, dim)) * neg).sum::<(usize, usize), Axis<2>>();

        // Every loss is a weighted mean over the examples (and their negatives).
        let weight = dev.tensor_from_vec(batch.weight.clone(), (b,));
        let per_negative = weight.clone().broadcast_like::<_, Axis<1>>(&(b, k));
        let ranking = match self.hyper.loss {
            Loss::Hinge => {
                let gap = s_neg - s_pos.broadcast_like::<_, Axis<1>>(&(b, k));
                ((gap + self.hyper.margin).relu() * per_negative).mean()
            }
            // -ln sigmoid(pos - neg).
            Loss::Bpr => {
                (softplus(s_neg - s_pos.broadcast_like::<_, Axis<1>>(&(b, k))) * per_negative).mean()
            }
            // Positives labelled 1, negatives 0: -ln sigmoid(pos) and -ln sigmoid(-neg).
            Loss::Bce => (softplus(-s_pos) * weight).mean() + (softplus(s_neg) * per_negative).mean(),
        };
        let reg = xt.square().sum() * (self.hyper.reg / b as f32);
        let loss = ranking + reg;
        let value = loss.array();
        let grads = loss.backward();
        let dx = grads.get(&x).as_vec();
        (value, dx, grads)
    }

    /// One optimisation step on a batch; returns the batch's loss.
    fn step(&mut self, batch: &Batch) -> f32 {
        let x = self.gather_rows(&batch.rows);
        let (loss, dx, grads) = self.loss_and_grads(batch, x);
        self.step += 1;
        let dim = self.hyper.dim;
        let (lr, b1, b2, eps) = (self.hyper.lr, 0.9f32, 0.999f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(self.step);
        let c2 = 1.0 - b2.powi(self.step);
        for (r, row) in batch.rows.iter().enumerate() {
            let (table, id) = self.table_mut(*row);
            let g = &dx[r * dim..(r + 1) * dim];
            let span = id * dim..(id + 1) * dim;
            for (((w, m), v), g) in table.values[span.clone()]
                .iter_mut()
                .zip(&mut table.m[span.clone()])
                .zip(&mut table.v[span])
                .zip(g)
            {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        }
        self.alpha_opt.update(&mut self.alpha, &grads).ok();
        loss
    }

    /// The model as it stands.
    pub(crate) fn snapshot(&self, targets: Vec<gnnrec_storage::TypeId>) -> Model {
        Model {
            hyper: self.hyper.clone(),
            targets,
            type_weight: self.alpha.as_vec(),
            users: self.graph.users,
            items: self.graph.items,
            user_emb: self.users.values.clone(),
            item_out: {
                let ctx = self.item_context();
                ctx.iter().zip(&self.items.values).map(|(c, e)| e + self.hyper.item_context * c).collect()
            },
            item_emb: self.items.values.clone(),
            rel_emb: self.rels.values.clone(),
            covisit: self.covisit.clone(),
        }
    }

    /// Continues from a trained model on another graph (the full one, for a refit).
    /// Nodes that arrived after the model was trained start from a fresh random row. `seed`
    /// drives the sampling of this run.
    pub(crate) fn resume(graph: &'g Graph, model: &Model, seed: u64) -> Trainer<'g> {
        let hyper = super::Hyper { seed, ..model.hyper.clone() };
        let mut trainer = Trainer::new(graph, hyper, model.targets.len(), &[]);
        trainer.hyper.seed = model.hyper.seed;
        let keep = |table: &mut Table, learned: &[f32]| {
            let n = learned.len().min(table.values.len());
            table.values[..n].copy_from_slice(&learned[..n]);
        };
        keep(&mut trainer.users, &model.user_emb);
        keep(&mut trainer.items, &model.item_emb);
        trainer.rels = Table::new(model.rel_emb.clone());
        let mut alpha = [0.0f32; MAX_TYPES];
        for (a, w) in alpha.iter_mut().zip(&model.type_weight) {
            *a = *w;
        }
        trainer.alpha = trainer.dev.tensor(alpha);
        trainer
    }

    /// One pass over the examples in a fresh random order.
    fn epoch(&mut self, epoch: usize, examples: &mut [Example]) -> EpochReport {
        let started = Instant::now();
        self.item_ctx = self.item_context();
        shuffle(examples, &mut self.rng);
        let mut total = 0.0f64;
        let (mut steps, mut rows) = (0usize, 0usize);
        for chunk in examples.chunks(self.hyper.batch.max(1)) {
            let batch = self.make_batch(chunk);
            total += f64::from(self.step(&batch)) * chunk.len() as f64;
            steps += 1;
            rows += batch.rows.len();
        }
        let seconds = started.elapsed().as_secs_f64();
        EpochReport {
            epoch,
            loss: total / examples.len().max(1) as f64,
            val_ndcg: 0.0,
            seconds,
            steps,
            step_seconds: seconds / steps.max(1) as f64,
            rows_per_step: rows as f64 / steps.max(1) as f64,
        }
    }

    /// Trains epoch by epoch with early stopping on `validation`; keeps the best epoch (the
    /// last one when there is no validation).
    pub(crate) fn fit(
        mut self,
        mut examples: Vec<Example>,
        validation: &Validation,
        targets: Vec<gnnrec_storage::TypeId>,
        progress: &mut dyn FnMut(EpochReport),
    ) -> TrainOutcome {
        let mut best: Option<(f64, usize, Model)> = None;
        let mut last_loss = 0.0;
        let mut epochs_run = 0;
        for epoch in 1..=self.hyper.epochs {
            let started = Instant::now();
            let mut report = self.epoch(epoch, &mut examples);
            last_loss = report.loss;
            epochs_run = epoch;
            let model = self.snapshot(targets.clone());
            let val_ndcg = validation_ndcg(&model, self.graph, validation);
            report.val_ndcg = val_ndcg;
            report.seconds = started.elapsed().as_secs_f64();
            progress(report);
            // Without validation edges there is nothing to stop on: every epoch runs and
            // the last one is kept.
            let improved =
                validation.users.is_empty() || best.as_ref().is_none_or(|(score, _, _)| val_ndcg > *score);
            if improved {
                best = Some((val_ndcg, epoch, model));
            } else if best.as_ref().is_some_and(|(_, e, _)| epoch - e >= self.hyper.patience) {
                break;
            }
        }
        match best {
            Some((val_ndcg, best_epoch, model)) => {
                TrainOutcome { model, epochs: epochs_run, best_epoch, loss: last_loss, val_ndcg }
            }
            None => TrainOutcome {
                model: self.snapshot(targets),
                epochs: 0,
                best_epoch: 0,
                loss: 0.0,
                val_ndcg: 0.0,
            },
        }
    }

    /// A few more epochs without validation, numbered from `first_epoch`; returns the model.
    pub(crate) fn run(
        mut self,
        mut examples: Vec<Example>,
        epochs: usize,
        first_epoch: usize,
        targets: Vec<gnnrec_storage::TypeId>,
        progress: &mut dyn FnMut(EpochReport),
    ) -> Model {
        for epoch in first_epoch..first_epoch + epochs {
            let report = self.epoch(epoch, &mut examples);
            progress(report);
        }
        self.snapshot(targets)
    }

    /// Test access to the parameter rows of a batch.
    #[cfg(test)]
    pub(crate) fn rows_of(&self, batch: &Batch) -> Vec<f32> {
        self.gather_rows(&batch.rows)
    }
}

/// ln(1 + e^x), written so that it neither overflows nor loses precision for large |x|.
fn softplus<S: Shape>(
    x: Tensor<S, f32, Dev, OwnedTape<f32, Dev>>,
) -> Tensor<S, f32, Dev, OwnedTape<f32, Dev>> {
    let tail = (-x.retaped::<OwnedTape<f32, Dev>>().abs()).exp();
    x.relu() + (tail + 1.0).ln()
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
}

/// NDCG@20 of the model on held-out edges, ranking every item with an edge minus the
/// user's own, as EVAL does.
pub(crate) fn validation_ndcg(model: &Model, graph: &Graph, validation: &Validation) -> f64 {
    if validation.users.is_empty() {
        return 0.0;
    }
    let relation = model.relation(None);
    let mut totals = MetricTotals::default();
    let candidates_all: Vec<u32> = (0..graph.items as u32).filter(|&i| graph.by_item.degree(i) > 0).collect();
    let mut seen = vec![false; graph.items];
    for (user, held_out) in &validation.users {
        let range = graph.by_user.range(*user);
        let adj = &graph.by_user;
        let edges = range.clone().map(|p| (adj.other[p], adj.edge_type[p], adj.strength[p]));
        let query = model.query_vector(&model.user_vector(*user, edges), &relation);
        let boost = model.covisit_boost(
            &model.recent_items(range.clone().map(|p| (adj.other[p], adj.rank[p], adj.tie[p]))),
        );
        for p in range.clone() {
            seen[graph.by_user.other[p] as usize] = true;
        }
        let mut scored: Vec<(u32, f32)> = candidates_all
            .iter()
            .filter(|&&i| !seen[i as usize])
            .map(|&i| {
                let score = model.item_vector(i).map_or(f32::NEG_INFINITY, |e| super::dot(&query, e));
                (i, score + super::boost_of(&boost, i))
            })
            .collect();
        for p in range {
            seen[graph.by_user.other[p] as usize] = false;
        }
        if let Some(m) = rank_user(&mut scored, |i| held_out.contains(&i), |i| i, 20) {
            totals.add(&m);
        }
    }
    totals.mean().ndcg
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnnrec_storage::{EdgeRecord, EdgeValue};

    fn tiny_graph() -> Graph {
        let e = |user, edge_type, item| EdgeRecord {
            user,
            edge_type,
            item,
            value: EdgeValue { weight: 1.0, count: 1, first_ts: 0, last_ts: 0 },
        };
        Graph::from_edges(
            3,
            4,
            &[e(0, 0, 0), e(0, 3, 1), e(1, 2, 1), e(1, 0, 2), e(2, 3, 3), e(2, 0, 0)],
            0.0,
            0.0,
        )
    }

    /// The gradient of every gathered row, as dfdx computes it and the sparse update applies
    /// it, matches a central finite difference of the loss.
    #[test]
    fn sparse_gradients_match_finite_differences() {
        let graph = tiny_graph();
        for loss in [Loss::Hinge, Loss::Bpr, Loss::Bce] {
            let hyper = Hyper {
                dim: 4,
                negatives: 2,
                loss,
                margin: 1.0,
                reg: 0.01,
                own: 0.5,
                fresh: 2.0,
                ..Hyper::default()
            };
            let mut trainer = Trainer::new(&graph, hyper, 1, &[0.25, 0.5, 0.75, 1.0]);
            let examples = [Example { user: 0, item: 1, target: 0 }, Example { user: 2, item: 3, target: 0 }];
            let batch = trainer.make_batch(&examples);
            let x = trainer.rows_of(&batch);
            let (_, dx, _) = trainer.loss_and_grads(&batch, x.clone());
            let eps = 1e-3f32;
            for j in 0..x.len() {
                let mut plus = x.clone();
                plus[j] += eps;
                let mut minus = x.clone();
                minus[j] -= eps;
                let numeric = (trainer.loss_and_grads(&batch, plus).0
                    - trainer.loss_and_grads(&batch, minus).0)
                    / (2.0 * eps);
                assert!(
                    (numeric - dx[j]).abs() < 2e-3,
                    "{loss:?} entry {j}: analytic {} vs numeric {numeric}",
                    dx[j]
                );
            }
        }
    }

    #[test]
    fn a_step_touches_only_the_rows_of_its_batch() {
        let graph = tiny_graph();
        let hyper = Hyper { dim: 4, negatives: 1, sampler: Sampler::Uniform, ..Hyper::default() };
        let mut trainer = Trainer::new(&graph, hyper, 1, &[1.0; 4]);
        let before_users = trainer.users.values.clone();
        let batch = trainer.make_batch(&[Example { user: 1, item: 1, target: 0 }]);
        trainer.step(&batch);
        let dim = 4;
        for u in [0usize, 2] {
            assert_eq!(trainer.users.values[u * dim..(u + 1) * dim], before_users[u * dim..(u + 1) * dim]);
        }
        assert_ne!(trainer.users.values[dim..2 * dim], before_users[dim..2 * dim]);
    }
}

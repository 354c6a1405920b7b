//! Statements in, [`Output`]s out: the language on top of the typed methods.

use gnnrec_query::{AddEdge, DeleteTarget, SettingValue, ShowTarget, Statement};

use crate::database::{Database, Durability, Interaction, LoadProgress};
use crate::error::{Error, Result};
use crate::output::{Output, Value};
use crate::serving::{Method, RecommendOptions, Recommendations};
use crate::training::{EpochReport, TrainConfig};
use crate::worker::WorkerMode;

impl Database {
    /// Runs every statement in `text`, in order, and returns one output per statement.
    /// Execution stops at the first failing statement; the ones before it stay applied.
    pub fn execute(&self, text: &str) -> Result<Vec<Output>> {
        self.execute_with_progress(text, &mut |_| {})
    }

    /// [`Database::execute`], reporting the progress of long statements such as `LOAD`.
    pub fn execute_with_progress(
        &self,
        text: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Output>> {
        let statements = gnnrec_query::parse(text)?;
        statements.iter().map(|s| self.execute_statement(&s.statement, progress)).collect()
    }

    /// Runs one parsed statement.
    pub fn execute_statement(
        &self,
        statement: &Statement,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Output> {
        match statement {
            Statement::Add(add) => self.exec_add(add),
            Statement::Load { path } => {
                let s = self.load_csv(path, |p| progress(Progress::Load(p)))?;
                Ok(Output::message(format!(
                    "loaded {} edges ({} new users, {} new items) in {:.2}s",
                    s.edges, s.new_users, s.new_items, s.seconds
                )))
            }
            Statement::Delete(DeleteTarget::Edge { user, edge_type, item }) => {
                self.delete_edge(user, edge_type, item)?;
                Ok(Output::message("deleted 1 edge"))
            }
            Statement::Delete(DeleteTarget::User(user)) => {
                let n = self.delete_user(user)?;
                Ok(Output::message(format!("deleted user '{user}' and {}", count_edges(n))))
            }
            Statement::Delete(DeleteTarget::Item(item)) => {
                let n = self.delete_item(item)?;
                Ok(Output::message(format!("deleted item '{item}' and {}", count_edges(n))))
            }
            Statement::CreateType { name, weight } => {
                let weight = weight.unwrap_or(1.0);
                self.create_type(name, to_f32("WEIGHT", weight)?)?;
                Ok(Output::message(format!("created edge type '{name}' with weight {weight}")))
            }
            Statement::Show(target) => self.exec_show(target),
            Statement::Set(setting) => match setting.key.to_ascii_lowercase().as_str() {
                "durability" => {
                    let durability = match &setting.value {
                        SettingValue::Word(w) | SettingValue::Str(w) if w.eq_ignore_ascii_case("wal") => {
                            Durability::Wal
                        }
                        SettingValue::Word(w) | SettingValue::Str(w) if w.eq_ignore_ascii_case("full") => {
                            Durability::Full
                        }
                        other => {
                            return Err(Error::Invalid(format!(
                                "durability is 'wal' or 'full', not {}",
                                other_value(other)
                            )))
                        }
                    };
                    self.set_durability(durability);
                    Ok(Output::message(format!("durability = {}", durability_name(durability))))
                }
                key if key == "worker" || key.starts_with("worker.") => {
                    self.exec_set_worker(key, &setting.value)
                }
                _ => Err(Error::Invalid(format!("unknown setting '{}'", setting.key))),
            },
            Statement::Train { epochs, with } => {
                let mut config = TrainConfig::default();
                config.apply(with)?;
                if let Some(n) = epochs {
                    config.epochs =
                        usize::try_from(*n).ok().filter(|&n| (1..=10_000).contains(&n)).ok_or_else(|| {
                            Error::Invalid(format!("EPOCHS must be a whole number from 1 to 10000, not {n}"))
                        })?;
                }
                let epochs = config.epochs;
                let r = self.train(&config, |report| progress(Progress::Epoch { report, epochs }))?;
                let rows = vec![vec![
                    r.model_version.into(),
                    r.epochs.into(),
                    r.best_epoch.into(),
                    r.loss.into(),
                    r.val_ndcg.into(),
                    r.seconds.into(),
                ]];
                Ok(Output::table(
                    &["model_version", "epochs", "best_epoch", "loss", "val_ndcg@20", "seconds"],
                    rows,
                    format!("trained model version {} on {} edges", r.model_version, r.edges),
                ))
            }
            Statement::Score { user, item, target } => {
                let s = self.score(user, item, target.as_deref())?;
                let rows = vec![vec![
                    user.as_str().into(),
                    item.as_str().into(),
                    s.raw.into(),
                    s.probability.into(),
                    s.model_version.into(),
                ]];
                Ok(Output::table(&["user", "item", "score", "probability", "model_version"], rows, ""))
            }
            Statement::Recommend { user, k, exclude_seen, target } => {
                let r = self.recommend_with(user, &recommend_options(*k, *exclude_seen, target)?)?;
                Ok(recommendations_table(r, &format!("for '{user}'")))
            }
            Statement::Similar { item, k } => {
                let r = self.similar(item, to_k(*k)?)?;
                Ok(recommendations_table(r, &format!("like '{item}'")))
            }
            Statement::Explain(inner) => {
                let plan = match inner.as_ref() {
                    Statement::Recommend { user, k, exclude_seen, target } => {
                        self.explain_recommend(user, &recommend_options(*k, *exclude_seen, target)?)?
                    }
                    Statement::Similar { item, k } => self.explain_similar(item, to_k(*k)?)?,
                    _ => {
                        return Err(Error::Invalid("EXPLAIN shows the plan of RECOMMEND and SIMILAR".into()))
                    }
                };
                let rows = vec![
                    vec!["method".into(), plan.method.to_string().into()],
                    vec!["reason".into(), plan.reason.into()],
                    vec!["items".into(), (plan.items as u64).into()],
                    vec!["excluded".into(), (plan.excluded as u64).into()],
                ];
                Ok(Output::table(&["property", "value"], rows, ""))
            }
            Statement::Eval { path, k, target } => {
                let k = k.map_or(Ok(20), |k| {
                    usize::try_from(k).map_err(|_| Error::Invalid(format!("TOP {k} is too large")))
                })?;
                let r = self.evaluate(path, k, target.as_deref())?;
                let m = r.metrics;
                let rows = vec![
                    vec![format!("Recall@{k}").into(), m.recall.into()],
                    vec![format!("NDCG@{k}").into(), m.ndcg.into()],
                    vec![format!("HitRate@{k}").into(), m.hit_rate.into()],
                    vec!["MRR".into(), m.mrr.into()],
                    vec!["AUC".into(), m.auc.into()],
                ];
                Ok(Output::table(
                    &["metric", "value"],
                    rows,
                    format!(
                        "{} users, {} held-out edges ({} skipped: unknown user or item), model version {}",
                        r.users, r.edges, r.skipped, r.model_version
                    ),
                ))
            }
            Statement::Sync => {
                self.sync()?;
                let through = self.stats()?.trained_through;
                Ok(Output::message(format!("trained through seq {through}")))
            }
        }
    }

    fn exec_set_worker(&self, key: &str, value: &SettingValue) -> Result<Output> {
        let mut settings = self.worker_settings();
        let word = match value {
            SettingValue::Word(w) | SettingValue::Str(w) => Some(w.to_ascii_lowercase()),
            _ => None,
        };
        match key {
            "worker" => {
                settings.mode = match word.as_deref() {
                    Some("on") => WorkerMode::On,
                    Some("off") => WorkerMode::Off,
                    Some("manual") => WorkerMode::Manual,
                    _ => {
                        return Err(Error::Invalid(format!(
                            "worker is 'on', 'off' or 'manual', not {}",
                            other_value(value)
                        )))
                    }
                }
            }
            "worker.batch" => {
                settings.batch = match value {
                    SettingValue::Int(n) if *n > 0 => *n as u64,
                    _ => {
                        return Err(Error::Invalid(format!(
                            "worker.batch is a number of edges above 0, not {}",
                            other_value(value)
                        )))
                    }
                }
            }
            "worker.epochs" => {
                settings.epochs = match value {
                    SettingValue::Int(n) if (1..=100).contains(n) => *n as usize,
                    _ => {
                        return Err(Error::Invalid(format!(
                            "worker.epochs is a number of passes from 1 to 100, not {}",
                            other_value(value)
                        )))
                    }
                }
            }
            "worker.interval" => {
                settings.interval = word.as_deref().and_then(parse_interval).ok_or_else(|| {
                    Error::Invalid(format!(
                        "worker.interval is a duration such as 5s, 500ms or 2m, not {}",
                        other_value(value)
                    ))
                })?
            }
            _ => return Err(Error::Invalid(format!("unknown setting '{key}'"))),
        }
        self.set_worker(settings)?;
        let shown = match key {
            "worker" => settings.mode.to_string(),
            "worker.batch" => settings.batch.to_string(),
            "worker.epochs" => settings.epochs.to_string(),
            _ => format!("{:?}", settings.interval),
        };
        Ok(Output::message(format!("{key} = {shown}")))
    }

    fn exec_add(&self, add: &AddEdge) -> Result<Output> {
        let mut interaction = Interaction::new(&add.user, &add.edge_type, &add.item);
        interaction.weight = add.weight.map(|w| to_f32("WEIGHT", w)).transpose()?;
        interaction.at = add.at;
        let added = self.add(&interaction)?;
        let mut summary = format!("added edge (seq {})", added.seq);
        if added.new_user {
            summary.push_str(&format!(", new user '{}'", add.user));
        }
        if added.new_item {
            summary.push_str(&format!(", new item '{}'", add.item));
        }
        Ok(Output::message(summary))
    }

    fn exec_show(&self, target: &ShowTarget) -> Result<Output> {
        match target {
            ShowTarget::Stats => {
                let s = self.stats()?;
                let rows = vec![
                    vec!["users".into(), s.users.into()],
                    vec!["items".into(), s.items.into()],
                    vec!["edges".into(), s.edges.into()],
                    vec!["events".into(), s.events.into()],
                    vec!["trained_through".into(), s.trained_through.into()],
                    vec!["models".into(), s.models.into()],
                    vec!["types".into(), (self.types().len() as u64).into()],
                    vec!["durability".into(), durability_name(self.durability()).into()],
                    vec!["format_version".into(), gnnrec_storage::FORMAT_VERSION.into()],
                ];
                Ok(Output::table(&["stat", "value"], rows, ""))
            }
            ShowTarget::Types => {
                let rows: Vec<Vec<Value>> =
                    self.types().into_iter().map(|t| vec![t.name.into(), t.weight.into()]).collect();
                let n = rows.len();
                Ok(Output::table(&["type", "weight"], rows, format!("{n} types")))
            }
            ShowTarget::User(user) => {
                let info = self.user(user)?;
                Ok(edges_table("item", info.edges, &format!("user '{user}'")))
            }
            ShowTarget::Item(item) => {
                let info = self.item(item)?;
                Ok(edges_table("user", info.edges, &format!("item '{item}'")))
            }
            ShowTarget::Model => {
                let r = self
                    .model_report()?
                    .ok_or_else(|| Error::Invalid("no model yet: run TRAIN first".into()))?;
                let snapshot = self.snapshot()?;
                let h = &snapshot.model.hyper;
                let index = self.index_info()?;
                let rows: Vec<Vec<Value>> = vec![
                    vec!["model_version".into(), r.model_version.into()],
                    vec!["trained_at".into(), r.trained_at.into()],
                    vec!["seconds".into(), r.seconds.into()],
                    vec!["targets".into(), r.targets.join(",").into()],
                    vec!["users".into(), r.users.into()],
                    vec!["items".into(), r.items.into()],
                    vec!["edges".into(), r.edges.into()],
                    vec!["examples".into(), r.examples.into()],
                    vec!["validation_edges".into(), r.validation_edges.into()],
                    vec!["epochs".into(), r.epochs.into()],
                    vec!["best_epoch".into(), r.best_epoch.into()],
                    vec!["loss".into(), r.loss.into()],
                    vec!["val_ndcg@20".into(), r.val_ndcg.into()],
                    vec!["trained_through".into(), r.trained_through.into()],
                    vec!["dim".into(), (h.dim as u64).into()],
                    vec!["loss_function".into(), format!("{:?}", h.loss).to_lowercase().into()],
                    vec!["lr".into(), h.lr.into()],
                    vec!["batch".into(), (h.batch as u64).into()],
                    vec!["negatives".into(), (h.negatives as u64).into()],
                    vec!["sampler".into(), format!("{:?}", h.sampler).to_lowercase().into()],
                    vec!["margin".into(), h.margin.into()],
                    vec!["fanout".into(), (h.fanout as u64).into()],
                    vec!["reg".into(), h.reg.into()],
                    vec!["hard".into(), (h.hard as u64).into()],
                    vec!["patience".into(), (h.patience as u64).into()],
                    vec!["val_share".into(), h.val_share.into()],
                    vec!["refit".into(), (h.refit as u64).into()],
                    vec!["recency".into(), h.recency.into()],
                    vec!["fresh".into(), h.fresh.into()],
                    vec!["own".into(), h.own.into()],
                    vec!["item_context".into(), h.item_context.into()],
                    vec!["weight_power".into(), h.weight_power.into()],
                    vec!["recent".into(), (h.recent as u64).into()],
                    vec!["covisit".into(), (h.covisit as u64).into()],
                    vec!["covisit_window".into(), (h.covisit_window as u64).into()],
                    vec!["covisit_weight".into(), h.covisit_weight.into()],
                    vec!["seed".into(), h.seed.into()],
                    vec![
                        "index_items".into(),
                        (if index.is_built() { index.items as u64 } else { 0 }).into(),
                    ],
                    vec!["index_stale".into(), (index.stale as u64).into()],
                    vec!["index_bytes".into(), (index.memory_bytes as u64).into()],
                    vec!["index".into(), index.origin.to_string().into()],
                ];
                Ok(Output::table(&["property", "value"], rows, ""))
            }
            ShowTarget::Worker => {
                let Some(w) = self.worker_status()? else {
                    return Ok(Output::message("no worker: it starts with the first TRAIN"));
                };
                let rows: Vec<Vec<Value>> = vec![
                    vec!["mode".into(), w.settings.mode.to_string().into()],
                    vec!["state".into(), if w.busy { "round" } else { "idle" }.into()],
                    vec!["model_version".into(), w.model_version.into()],
                    vec!["last_seq".into(), w.last_seq.into()],
                    vec!["trained_through".into(), w.trained_through.into()],
                    vec!["refreshed_through".into(), w.refreshed_through.into()],
                    vec!["lag_edges".into(), w.lag_edges.into()],
                    vec!["lag_seconds".into(), w.lag_seconds.into()],
                    vec!["rounds".into(), w.rounds.into()],
                    vec!["full_retrains".into(), w.full_retrains.into()],
                    vec!["last_round_seconds".into(), w.last_round_seconds.into()],
                    vec!["last_round_loss".into(), w.last_round_loss.into()],
                    vec!["busy_seconds".into(), w.busy_seconds.into()],
                    vec!["cpu_seconds".into(), w.cpu_seconds.into()],
                    vec!["batch".into(), w.settings.batch.into()],
                    vec!["epochs".into(), (w.settings.epochs as u64).into()],
                    vec!["interval".into(), format!("{:?}", w.settings.interval).into()],
                    vec!["last_error".into(), w.last_error.unwrap_or_default().into()],
                ];
                Ok(Output::table(&["property", "value"], rows, ""))
            }
        }
    }
}

/// Progress of a long statement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    Load(LoadProgress),
    /// An epoch of TRAIN finished; `epochs` is the most it will run.
    Epoch {
        report: EpochReport,
        epochs: usize,
    },
}

fn edges_table(other: &str, edges: Vec<crate::EdgeInfo>, who: &str) -> Output {
    let n = edges.len();
    let rows = edges
        .into_iter()
        .map(|e| {
            vec![
                e.other.into(),
                e.edge_type.into(),
                e.weight.into(),
                e.count.into(),
                e.first_ts.into(),
                e.last_ts.into(),
            ]
        })
        .collect();
    Output::table(
        &[other, "type", "weight", "count", "first_ts", "last_ts"],
        rows,
        format!("{who}: {}", count_edges(n as u64)),
    )
}

/// A TOP k from the parser: any u64, bounded later by [`crate::MAX_K`].
fn to_k(k: u64) -> Result<usize> {
    usize::try_from(k).map_err(|_| Error::Invalid(format!("TOP {k} is too large")))
}

fn recommend_options(k: u64, exclude_seen: bool, target: &Option<String>) -> Result<RecommendOptions> {
    let mut options = RecommendOptions::new(to_k(k)?);
    options.exclude_seen = exclude_seen;
    options.target = target.clone();
    Ok(options)
}

fn recommendations_table(r: Recommendations, whom: &str) -> Output {
    let n = r.items.len();
    let score = if r.plan.method == Method::Popular { "users" } else { "score" };
    let rows = r
        .items
        .into_iter()
        .enumerate()
        .map(|(rank, rec)| vec![(rank as u64 + 1).into(), rec.item.into(), rec.score.into()])
        .collect();
    let summary = format!("{n} items {whom}, {}, model version {}", r.plan.method, r.model_version);
    Output::table(&["rank", "item", score], rows, summary)
}

/// `5s`, `500ms`, `2m`: a positive duration of at most a day.
fn parse_interval(text: &str) -> Option<std::time::Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return None,
    };
    (seconds > 0.0 && seconds <= 86_400.0).then(|| std::time::Duration::from_secs_f64(seconds))
}

fn count_edges(n: u64) -> String {
    if n == 1 {
        "1 edge".to_owned()
    } else {
        format!("{n} edges")
    }
}

fn to_f32(what: &str, x: f64) -> Result<f32> {
    let y = x as f32;
    if y.is_finite() {
        Ok(y)
    } else {
        Err(Error::Invalid(format!("{what} {x} is out of range")))
    }
}

fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Wal => "wal",
        Durability::Full => "full",
    }
}

fn other_value(v: &SettingValue) -> String {
    match v {
        SettingValue::Int(i) => i.to_string(),
        SettingValue::Float(x) => x.to_string(),
        SettingValue::Word(w) => format!("'{w}'"),
        SettingValue::Str(s) => format!("'{s}'"),
    }
}

//! Statements in, [`Output`]s out: the language on top of the typed methods.

use gnnrec_query::{AddEdge, DeleteTarget, SettingValue, ShowTarget, Statement};

use crate::database::{Database, Durability, Interaction, LoadProgress};
use crate::error::{Error, Result};
use crate::output::{Output, Value};

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
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Vec<Output>> {
        let statements = gnnrec_query::parse(text)?;
        statements.iter().map(|s| self.execute_statement(&s.statement, progress)).collect()
    }

    /// Runs one parsed statement.
    pub fn execute_statement(
        &self,
        statement: &Statement,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Output> {
        match statement {
            Statement::Add(add) => self.exec_add(add),
            Statement::Load { path } => {
                let s = self.load_csv(path, &mut *progress)?;
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
                    Err(Error::NotAvailable("the background worker"))
                }
                _ => Err(Error::Invalid(format!("unknown setting '{}'", setting.key))),
            },
            Statement::Train { .. } => Err(Error::NotAvailable("TRAIN")),
            Statement::Score { .. } => Err(Error::NotAvailable("SCORE")),
            Statement::Recommend { .. } => Err(Error::NotAvailable("RECOMMEND")),
            Statement::Similar { .. } => Err(Error::NotAvailable("SIMILAR")),
            Statement::Eval { .. } => Err(Error::NotAvailable("EVAL")),
            Statement::Sync => Err(Error::NotAvailable("SYNC")),
        }
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
            ShowTarget::Model => Err(Error::NotAvailable("SHOW MODEL")),
            ShowTarget::Worker => Err(Error::NotAvailable("SHOW WORKER")),
        }
    }
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

//! The abstract syntax tree of the gnnrec language.
//!
//! Nodes carry no spans, so that `parse(print(ast)) == ast` holds; the span of each
//! statement in its source is kept beside it in [`ParsedStatement`].

use crate::Span;

/// One statement and where it stood in the source text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    pub statement: Statement,
    /// Byte range of the statement in the source, without the trailing `;`.
    pub span: Span,
}

/// A statement of the language. `Display` prints valid source without the final `;`.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `ADD user type item [WEIGHT w] [AT unix_seconds]`
    Add(AddEdge),
    /// `LOAD 'path.csv'`
    Load { path: String },
    /// `DELETE user type item`, `DELETE USER user`, `DELETE ITEM item`
    Delete(DeleteTarget),
    /// `CREATE TYPE name [WEIGHT w]`: declares an edge type with its default signal strength.
    CreateType { name: String, weight: Option<f64> },
    /// `TRAIN [EPOCHS n] [WITH key = value, ...]`
    Train { epochs: Option<u64>, with: Vec<Setting> },
    /// `SCORE user item [FOR type]`
    Score { user: String, item: String, target: Option<String> },
    /// `RECOMMEND user TOP k [EXCLUDE SEEN] [FOR type]`
    Recommend { user: String, k: u64, exclude_seen: bool, target: Option<String> },
    /// `SIMILAR item TOP k`
    Similar { item: String, k: u64 },
    /// `EVAL 'path.csv' [TOP k] [FOR type]`
    Eval { path: String, k: Option<u64>, target: Option<String> },
    /// `SHOW STATS | MODEL | TYPES | WORKER | USER id | ITEM id`
    Show(ShowTarget),
    /// `SET key = value`
    Set(Setting),
    /// `SYNC`
    Sync,
    /// `EXPLAIN RECOMMEND ...` or `EXPLAIN SIMILAR ...`: how the statement would be answered.
    Explain(Box<Statement>),
}

/// A single interaction, as written by `ADD`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddEdge {
    pub user: String,
    pub edge_type: String,
    pub item: String,
    pub weight: Option<f64>,
    /// Unix seconds.
    pub at: Option<i64>,
}

/// What a `DELETE` removes.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteTarget {
    Edge { user: String, edge_type: String, item: String },
    User(String),
    Item(String),
}

/// What a `SHOW` reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ShowTarget {
    Stats,
    Model,
    Types,
    Worker,
    User(String),
    Item(String),
}

/// `key = value`; keys may be dotted (`worker.batch`).
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: SettingValue,
}

/// The right-hand side of a setting.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    /// An integer literal such as `64` or `-3`.
    Int(i64),
    /// A number with a fraction or exponent such as `0.01` or `1e-3`.
    Float(f64),
    /// A bare word such as `hinge`, `on`, `full` or `5s`.
    Word(String),
    /// A quoted string.
    Str(String),
}

//! What a statement returns: a small table and a one-line summary.

use std::fmt;

/// One cell of a result table.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Int(i) => write!(f, "{i}"),
            // Four decimals keep tables narrow; programs read --json for full precision.
            Value::Float(x) => write!(f, "{x:.4}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<u64> for Value {
    fn from(i: u64) -> Value {
        // Counts in a database of this kind stay far below i64::MAX.
        Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<f32> for Value {
    fn from(x: f32) -> Value {
        Value::Float(f64::from(x))
    }
}

/// The result of one statement: a table (possibly without columns) and a summary line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// A human sentence such as "added 1 edge" or "3 rows".
    pub summary: String,
}

impl Output {
    pub(crate) fn message(summary: impl Into<String>) -> Output {
        Output { summary: summary.into(), ..Output::default() }
    }

    pub(crate) fn table(columns: &[&str], rows: Vec<Vec<Value>>, summary: impl Into<String>) -> Output {
        Output { columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows, summary: summary.into() }
    }
}

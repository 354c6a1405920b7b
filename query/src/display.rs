//! `Display` for the AST: valid source text, keywords upper case, no final `;`.
//!
//! Parsing the output gives back the same tree. That holds for every tree the parser
//! produces; a hand-built tree can hold what no source text says (a NaN weight, a setting
//! key with spaces), and then the output is the nearest text, not a faithful one.

use std::fmt;

use crate::ast::*;
use crate::lexer::{is_bare_word, is_keyword, number_shape};

/// An id, bare when it would read back as the same single word, quoted otherwise. Ids equal
/// to a keyword are quoted too: after `DELETE` or `SHOW`, a bare `user` or `item` would
/// select another form of the statement.
struct Id<'a>(&'a str);

impl fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_bare_word(self.0) && !is_keyword(self.0) {
            f.write_str(self.0)
        } else {
            Quoted(self.0).fmt(f)
        }
    }
}

/// A single-quoted string with `'` doubled.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\'', "''"))
    }
}

/// ` FOR type`, when there is a type.
struct For<'a>(&'a Option<String>);

impl fmt::Display for For<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(target) => write!(f, " FOR {}", Id(target)),
            None => Ok(()),
        }
    }
}

/// ` WEIGHT w`, when there is a weight. `{:?}` keeps a fraction or exponent on every float
/// (`2.0`, not `2`) and prints the shortest text that reads back as the same value.
struct Weight(Option<f64>);

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(weight) => write!(f, " WEIGHT {weight:?}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Add(edge) => write!(f, "ADD {edge}"),
            Statement::Load { path } => write!(f, "LOAD {}", Quoted(path)),
            Statement::Delete(target) => write!(f, "DELETE {target}"),
            Statement::CreateType { name, weight } => {
                write!(f, "CREATE TYPE {}{}", Id(name), Weight(*weight))
            }
            Statement::Train { epochs, with } => {
                f.write_str("TRAIN")?;
                if let Some(epochs) = epochs {
                    write!(f, " EPOCHS {epochs}")?;
                }
                for (i, setting) in with.iter().enumerate() {
                    write!(f, "{}{setting}", if i == 0 { " WITH " } else { ", " })?;
                }
                Ok(())
            }
            Statement::Score { user, item, target } => {
                write!(f, "SCORE {} {}{}", Id(user), Id(item), For(target))
            }
            Statement::Recommend { user, k, exclude_seen, target } => {
                write!(f, "RECOMMEND {} TOP {k}", Id(user))?;
                if *exclude_seen {
                    f.write_str(" EXCLUDE SEEN")?;
                }
                For(target).fmt(f)
            }
            Statement::Similar { item, k } => write!(f, "SIMILAR {} TOP {k}", Id(item)),
            Statement::Eval { path, k, target } => {
                write!(f, "EVAL {}", Quoted(path))?;
                if let Some(k) = k {
                    write!(f, " TOP {k}")?;
                }
                For(target).fmt(f)
            }
            Statement::Show(target) => write!(f, "SHOW {target}"),
            Statement::Set(setting) => write!(f, "SET {setting}"),
            Statement::Sync => f.write_str("SYNC"),
            Statement::Explain(inner) => write!(f, "EXPLAIN {inner}"),
        }
    }
}

/// The edge as written after `ADD`: `alice click sku-1 WEIGHT 2.0 AT 1700000000`.
impl fmt::Display for AddEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AddEdge { user, edge_type, item, weight, at } = self;
        write!(f, "{} {} {}{}", Id(user), Id(edge_type), Id(item), Weight(*weight))?;
        match at {
            Some(at) => write!(f, " AT {at}"),
            None => Ok(()),
        }
    }
}

/// The target as written after `DELETE`: `alice click sku-1`, `USER alice` or `ITEM sku-1`.
impl fmt::Display for DeleteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeleteTarget::Edge { user, edge_type, item } => {
                write!(f, "{} {} {}", Id(user), Id(edge_type), Id(item))
            }
            DeleteTarget::User(user) => write!(f, "USER {}", Id(user)),
            DeleteTarget::Item(item) => write!(f, "ITEM {}", Id(item)),
        }
    }
}

/// The target as written after `SHOW`: `STATS`, `USER alice`, ...
impl fmt::Display for ShowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShowTarget::Stats => f.write_str("STATS"),
            ShowTarget::Model => f.write_str("MODEL"),
            ShowTarget::Types => f.write_str("TYPES"),
            ShowTarget::Worker => f.write_str("WORKER"),
            ShowTarget::User(user) => write!(f, "USER {}", Id(user)),
            ShowTarget::Item(item) => write!(f, "ITEM {}", Id(item)),
        }
    }
}

/// `key = value`.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.key, self.value)
    }
}

/// The value as source: `64`, `0.01`, `hinge` or `'a string'`.
impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Int(n) => write!(f, "{n}"),
            SettingValue::Float(x) => write!(f, "{x:?}"),
            SettingValue::Word(word) if is_bare_word(word) && number_shape(word).is_none() => {
                f.write_str(word)
            }
            // A word that would not read back as a word can only be written as a string.
            SettingValue::Word(text) | SettingValue::Str(text) => Quoted(text).fmt(f),
        }
    }
}

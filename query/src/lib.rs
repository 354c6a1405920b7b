//! The gnnrec language: statements in, syntax trees out.
//!
//! [`parse`] reads a script, [`parse_statement`] a single statement. Both are pure
//! functions of their text; a [`ParseError`] says where the text went wrong and draws a caret
//! under it. [`split_statements`] and [`is_complete`] are the lexical helpers a shell needs to
//! cut input into statements before parsing it. Every AST type's `Display` prints valid
//! source, and parsing that source gives back the same tree.
//!
//! ```
//! use gnnrec_query::{parse_statement, Statement};
//!
//! let statement = parse_statement("recommend alice top 10 exclude seen;").unwrap();
//! assert_eq!(
//!     statement,
//!     Statement::Recommend { user: "alice".into(), k: 10, exclude_seen: true, target: None }
//! );
//! assert_eq!(statement.to_string(), "RECOMMEND alice TOP 10 EXCLUDE SEEN");
//!
//! let error = parse_statement("RECOMMEND alice TOP ten").unwrap_err();
//! assert_eq!(error.message, "expected a number after TOP, found 'ten'");
//! assert_eq!((error.line, error.column), (1, 21));
//! ```

pub mod ast;
mod display;
mod error;
mod lexer;
mod parser;

pub use ast::*;
pub use error::ParseError;
pub use lexer::{is_complete, split_statements, KEYWORDS};
pub use parser::{parse, parse_statement};

/// A byte range in source text, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset just past the last byte.
    pub end: usize,
}

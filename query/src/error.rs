//! The parse error, located in the text that was parsed.

use std::fmt;

use crate::Span;

/// A syntax error with its position and the source line it sits on.
///
/// `Display` renders the position, the message and the line with a caret under the offending
/// token:
///
/// ```text
/// line 1, column 17: expected an item id, found ';'
///   ADD alice click ;
///                   ^
/// ```
///
/// Lines and columns are those of the text given to the parser; a caller that parsed a piece
/// of a larger file adds its own offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseError {
    /// What went wrong: lowercase, without a final period, naming the offending token.
    pub message: String,
    /// Byte range of the offending token; empty when the input ended too soon.
    pub span: Span,
    /// Line of `span.start`, counted from 1.
    pub line: usize,
    /// Column of `span.start`, counted from 1 in characters.
    pub column: usize,
    /// The text of the line holding `span.start`, without its line break.
    pub source_line: String,
}

impl ParseError {
    /// Locates `span` in `src`; `span` must lie on character boundaries of `src`.
    pub(crate) fn new(src: &str, span: Span, message: String) -> Self {
        let before = &src[..span.start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[span.start..].find('\n').map_or(src.len(), |i| span.start + i);
        let line = &src[line_start..line_end];
        ParseError {
            message,
            span,
            line: before.matches('\n').count() + 1,
            column: src[line_start..span.start].chars().count() + 1,
            source_line: line.strip_suffix('\r').unwrap_or(line).to_owned(),
        }
    }

    /// How many characters of the source line the caret underlines: the token's part of the
    /// line, at least one. The fields are public, so this must not trust them to agree.
    fn caret_width(&self) -> usize {
        let line = &self.source_line;
        let from = line.char_indices().nth(self.column.saturating_sub(1)).map_or(line.len(), |(i, _)| i);
        let to = from.saturating_add(self.span.end.saturating_sub(self.span.start)).min(line.len());
        line.get(from..to).map_or(0, |token| token.chars().count()).max(1)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "line {}, column {}: {}", self.line, self.column, self.message)?;
        writeln!(f, "  {}", self.source_line)?;
        // Tabs are copied rather than replaced so the caret lines up however they expand.
        let indent: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "  {indent}{}", "^".repeat(self.caret_width()))
    }
}

impl std::error::Error for ParseError {}

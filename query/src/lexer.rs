//! Turns source text into tokens.
//!
//! The lexer never fails: a character that starts no token and a string whose closing quote
//! is missing become tokens of their own. That lets [`split_statements`] and [`is_complete`]
//! run over any input, and lets the parser report such a token only where it meets it, so
//! errors come out in source order.
//!
//! Numbers are not a token kind. `42`, `sku-1`, `1e5` and `hinge` are all words, and the
//! parser decides by position whether a word is an id, a keyword or a number, reading its
//! raw text.

use crate::Span;

macro_rules! keywords {
    ($($name:ident)*) => {
        /// Keyword spellings, upper case; the parser matches them ignoring ASCII case.
        pub(crate) mod kw {
            $(pub(crate) const $name: &str = stringify!($name);)*
        }

        /// Every keyword of the language, upper case, for shell completion.
        pub const KEYWORDS: &[&str] = &[$(kw::$name),*];
    };
}

keywords! {
    ADD AT CREATE DELETE EPOCHS EVAL EXCLUDE EXPLAIN FOR ITEM LOAD MODEL RECOMMEND SCORE SEEN SET SHOW
    SIMILAR STATS SYNC TOP TRAIN TYPE TYPES USER WEIGHT WITH WORKER
}

/// What a token is; its text is kept beside it in [`Token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A run of bare-word characters: keywords, ids, numbers and setting values alike.
    Word,
    /// A single-quoted string; the token text includes the quotes.
    Str,
    /// A string whose closing quote is missing; it runs to the end of the input.
    UnterminatedStr,
    Eq,
    Comma,
    Semi,
    /// A character that starts no token, such as `(` or `"`.
    Unknown,
    /// The end of the input. Its span is empty and sits right after the last token, so that
    /// "found end of input" points just past the text that needed more.
    Eof,
}

/// A token with its raw text and its byte range in the source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind,
    pub(crate) text: &'a str,
    pub(crate) span: Span,
}

/// Produces tokens on demand; after the end of the input it keeps returning [`TokenKind::Eof`].
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// End of the last token returned, where the `Eof` token is placed.
    last_end: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0, last_end: 0 }
    }

    pub(crate) fn next_token(&mut self) -> Token<'a> {
        self.skip_trivia();
        let rest = &self.src[self.pos..];
        let Some(first) = rest.chars().next() else {
            let span = Span { start: self.last_end, end: self.last_end };
            return Token { kind: TokenKind::Eof, text: "", span };
        };
        let (kind, len) = match first {
            ';' => (TokenKind::Semi, 1),
            '=' => (TokenKind::Eq, 1),
            ',' => (TokenKind::Comma, 1),
            '\'' => string_len(rest),
            c if is_word_char(c) => (TokenKind::Word, word_len(rest)),
            c => (TokenKind::Unknown, c.len_utf8()),
        };
        let start = self.pos;
        self.pos += len;
        self.last_end = self.pos;
        Token { kind, text: &self.src[start..self.pos], span: Span { start, end: self.pos } }
    }

    /// Skips whitespace and `--` comments.
    fn skip_trivia(&mut self) {
        loop {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if !trimmed.starts_with("--") {
                return;
            }
            // The comment ends before the newline, which the next round skips as whitespace.
            self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
        }
    }
}

/// The tokens of `src`, without the final `Eof`.
fn tokens(src: &str) -> impl Iterator<Item = Token<'_>> {
    let mut lexer = Lexer::new(src);
    std::iter::from_fn(move || Some(lexer.next_token()).filter(|t| t.kind != TokenKind::Eof))
}

/// Whether `c` may appear in a bare word (an unquoted id, keyword, number or value).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@' | '/')
}

/// Length of the word at the start of `rest`. A `--` ends the word even inside it, because
/// it starts a comment wherever it appears outside a string.
fn word_len(rest: &str) -> usize {
    rest.char_indices()
        .find(|&(i, c)| !is_word_char(c) || rest[i..].starts_with("--"))
        .map_or(rest.len(), |(i, _)| i)
}

/// Kind and length of the string at the start of `rest`, which begins with `'`.
fn string_len(rest: &str) -> (TokenKind, usize) {
    let mut end = 1;
    while let Some(offset) = rest[end..].find('\'') {
        end += offset + 1;
        // `''` is a quote inside the string, not its end.
        if !rest[end..].starts_with('\'') {
            return (TokenKind::Str, end);
        }
        end += 1;
    }
    (TokenKind::UnterminatedStr, rest.len())
}

/// The value of a [`TokenKind::Str`] token's text: quotes removed, `''` turned into `'`.
pub(crate) fn unquote(text: &str) -> String {
    text[1..text.len() - 1].replace("''", "'")
}

/// Whether `text` reads back as exactly one word token.
pub(crate) fn is_bare_word(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_word_char) && !text.contains("--")
}

/// Whether `text` is a keyword in any letter case.
pub(crate) fn is_keyword(text: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(text))
}

/// The kinds of numeric literal a word can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberShape {
    /// `-?D+`
    Integer,
    /// `-?D+(.D+)?([eE]-?D+)?` with a fraction or an exponent.
    Float,
}

/// Classifies a word as a number. The grammar is deliberately stricter than Rust's `parse`:
/// `inf`, `nan`, `.5` and `1.` are words, not numbers.
pub(crate) fn number_shape(word: &str) -> Option<NumberShape> {
    fn digits(s: &str) -> Option<&str> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (n > 0).then(|| &s[n..])
    }
    let unsigned = word.strip_prefix('-').unwrap_or(word);
    let mut rest = digits(unsigned)?;
    let mut shape = NumberShape::Integer;
    if let Some(fraction) = rest.strip_prefix('.') {
        rest = digits(fraction)?;
        shape = NumberShape::Float;
    }
    if let Some(exponent) = rest.strip_prefix(['e', 'E']) {
        rest = digits(exponent.strip_prefix('-').unwrap_or(exponent))?;
        shape = NumberShape::Float;
    }
    rest.is_empty().then_some(shape)
}

/// Splits a script into statements, purely lexically.
///
/// Each span covers one statement's text, from its first token to its last, without the `;`
/// that ends it. A `;` inside a quoted string or a `--` comment does not split. Pieces holding
/// only whitespace and comments are left out; a final piece without `;` is included. An
/// unterminated string runs to the end of the input. Never panics.
///
/// When [`parse`](crate::parse) succeeds, its statement spans are exactly these.
pub fn split_statements(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut open: Option<Span> = None;
    for token in tokens(text) {
        if token.kind == TokenKind::Semi {
            spans.extend(open.take());
        } else {
            let start = open.map_or(token.span.start, |span| span.start);
            open = Some(Span { start, end: token.span.end });
        }
    }
    spans.extend(open);
    spans
}

/// Whether every statement in `text` is terminated by `;`, for a REPL deciding whether to
/// read another line.
///
/// True when nothing but whitespace and comments follows the last `;` (or when the whole input
/// is whitespace and comments); false while a statement is still open, including inside an
/// unterminated string.
pub fn is_complete(text: &str) -> bool {
    tokens(text).last().is_none_or(|t| t.kind == TokenKind::Semi)
}

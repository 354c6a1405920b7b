//! A recursive-descent parser with one token of lookahead.
//!
//! Statements are positional: where an id is expected any word is taken as one, keyword or
//! not, so `ADD top click select` adds item `select`. Keywords are only recognised where the
//! grammar allows one, which is also why `USER` and `ITEM` right after `DELETE` or `SHOW`
//! select those forms: a user called "user" must then be quoted.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{kw, number_shape, unquote, Lexer, NumberShape, Token, TokenKind};
use crate::Span;

/// What may start a statement, for the error when something else does.
const STATEMENT: &str =
    "a statement (ADD, LOAD, DELETE, CREATE, TRAIN, SCORE, RECOMMEND, SIMILAR, EVAL, SHOW, SET, SYNC or EXPLAIN)";

/// Parses a whole script: statements separated by `;`, the last `;` optional. Empty
/// statements and comments are skipped. Stops at the first error.
pub fn parse(text: &str) -> Result<Vec<ParsedStatement>, ParseError> {
    let mut parser = Parser::new(text);
    let mut statements = Vec::new();
    loop {
        parser.skip_semicolons();
        if parser.next.kind == TokenKind::Eof {
            return Ok(statements);
        }
        let start = parser.next.span.start;
        let statement = parser.statement()?;
        let span = Span { start, end: parser.prev_end };
        statements.push(ParsedStatement { statement, span });
    }
}

/// Parses exactly one statement, optionally followed by `;`. No statement at all, or a
/// second one, is an error.
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    let mut parser = Parser::new(text);
    parser.skip_semicolons();
    let statement = parser.statement()?;
    parser.skip_semicolons();
    match parser.next.kind {
        TokenKind::Eof => Ok(statement),
        _ => Err(parser.unexpected("end of input after the statement")),
    }
}

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    /// The lookahead token.
    next: Token<'a>,
    /// End of the last token consumed, which closes a statement's span.
    prev_end: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let mut lexer = Lexer::new(src);
        let next = lexer.next_token();
        Parser { src, lexer, next, prev_end: 0 }
    }

    fn bump(&mut self) -> Token<'a> {
        let token = self.next;
        self.prev_end = token.span.end;
        self.next = self.lexer.next_token();
        token
    }

    fn skip_semicolons(&mut self) {
        while self.next.kind == TokenKind::Semi {
            self.bump();
        }
    }

    fn error(&self, span: Span, message: String) -> ParseError {
        ParseError::new(self.src, span, message)
    }

    /// The error for a lookahead token that does not fit. A token that is no token at all
    /// is reported as such, whatever was expected.
    fn unexpected(&self, expected: &str) -> ParseError {
        let token = self.next;
        let message = match token.kind {
            TokenKind::UnterminatedStr => "unterminated string: the closing ' is missing".to_owned(),
            TokenKind::Unknown if token.text == "\"" => {
                "unexpected character '\"', strings take single quotes".to_owned()
            }
            TokenKind::Unknown => format!("unexpected character '{}'", token.text),
            TokenKind::Eof => format!("expected {expected}, found end of input"),
            TokenKind::Str => format!("expected {expected}, found string {}", token.text),
            TokenKind::Word | TokenKind::Eq | TokenKind::Comma | TokenKind::Semi => {
                format!("expected {expected}, found '{}'", token.text)
            }
        };
        self.error(token.span, message)
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.next.kind == TokenKind::Word && self.next.text.eq_ignore_ascii_case(keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.bump();
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str, after: &str) -> Result<(), ParseError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("{keyword} after {after}")))
        }
    }

    /// Parses the optional clause introduced by `keyword` if it comes next, into `slot`.
    /// Returns whether it did, so a loop can take clauses in any order; a clause given
    /// twice is an error at its second keyword.
    fn clause<T>(
        &mut self,
        slot: &mut Option<T>,
        keyword: &str,
        value: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<bool, ParseError> {
        if !self.at_keyword(keyword) {
            return Ok(false);
        }
        let token = self.bump();
        if slot.is_some() {
            return Err(self.error(token.span, format!("duplicate {keyword} clause")));
        }
        *slot = Some(value(self)?);
        Ok(true)
    }

    /// Checks that the statement ends here; `expected` lists what could have continued it.
    fn end(&self, expected: &str) -> Result<(), ParseError> {
        match self.next.kind {
            TokenKind::Semi | TokenKind::Eof => Ok(()),
            _ => Err(self.unexpected(expected)),
        }
    }

    /// A user, item, type or path: any word, or a quoted string.
    fn id(&mut self, what: &str) -> Result<String, ParseError> {
        match self.next.kind {
            TokenKind::Word => Ok(self.bump().text.to_owned()),
            TokenKind::Str => Ok(unquote(self.bump().text)),
            _ => Err(self.unexpected(what)),
        }
    }

    /// A word shaped like a number, the value of the clause `keyword`.
    fn number(&mut self, keyword: &str) -> Result<(Token<'a>, NumberShape), ParseError> {
        let shape = match self.next.kind {
            TokenKind::Word => number_shape(self.next.text),
            _ => None,
        };
        match shape {
            Some(shape) => Ok((self.bump(), shape)),
            None => Err(self.unexpected(&format!("a number after {keyword}"))),
        }
    }

    fn out_of_range(&self, token: Token<'_>, context: &str) -> ParseError {
        self.error(token.span, format!("number '{}' {context} is out of range", token.text))
    }

    /// `TOP k` or `EPOCHS n`: a non-negative whole number.
    fn count(&mut self, keyword: &str) -> Result<u64, ParseError> {
        let (token, shape) = self.number(keyword)?;
        if shape == NumberShape::Float {
            let message = format!("expected a whole number after {keyword}, found '{}'", token.text);
            return Err(self.error(token.span, message));
        }
        if token.text.starts_with('-') {
            let message = format!("expected a non-negative number after {keyword}, found '{}'", token.text);
            return Err(self.error(token.span, message));
        }
        // The shape leaves overflow as the only way to fail.
        token.text.parse().map_err(|_| self.out_of_range(token, &format!("after {keyword}")))
    }

    /// `AT t`: whole Unix seconds, possibly negative.
    fn timestamp(&mut self) -> Result<i64, ParseError> {
        let (token, shape) = self.number(kw::AT)?;
        if shape == NumberShape::Float {
            let message = format!("expected a whole number of seconds after AT, found '{}'", token.text);
            return Err(self.error(token.span, message));
        }
        token.text.parse().map_err(|_| self.out_of_range(token, "after AT"))
    }

    /// `WEIGHT w`: any finite number.
    fn weight(&mut self) -> Result<f64, ParseError> {
        let (token, _) = self.number(kw::WEIGHT)?;
        match token.text.parse::<f64>() {
            Ok(weight) if weight.is_finite() => Ok(weight),
            _ => Err(self.out_of_range(token, "after WEIGHT")),
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let head = match self.next.kind {
            TokenKind::Word => self.next.text.to_ascii_uppercase(),
            _ => String::new(),
        };
        let parse_rest: fn(&mut Self) -> Result<Statement, ParseError> = match head.as_str() {
            kw::ADD => Self::add,
            kw::LOAD => Self::load,
            kw::DELETE => Self::delete,
            kw::CREATE => Self::create_type,
            kw::TRAIN => Self::train,
            kw::SCORE => Self::score,
            kw::RECOMMEND => Self::recommend,
            kw::SIMILAR => Self::similar,
            kw::EVAL => Self::eval,
            kw::SHOW => Self::show,
            kw::SET => Self::set,
            kw::SYNC => Self::sync,
            kw::EXPLAIN => Self::explain,
            _ => return Err(self.unexpected(STATEMENT)),
        };
        self.bump();
        parse_rest(self)
    }

    fn add(&mut self) -> Result<Statement, ParseError> {
        let user = self.id("a user id")?;
        let edge_type = self.id("an edge type")?;
        let item = self.id("an item id")?;
        let (mut weight, mut at) = (None, None);
        while self.clause(&mut weight, kw::WEIGHT, Self::weight)?
            || self.clause(&mut at, kw::AT, Self::timestamp)?
        {}
        self.end("WEIGHT, AT or ';'")?;
        Ok(Statement::Add(AddEdge { user, edge_type, item, weight, at }))
    }

    fn load(&mut self) -> Result<Statement, ParseError> {
        let path = self.id("a file path")?;
        self.end("';'")?;
        Ok(Statement::Load { path })
    }

    fn delete(&mut self) -> Result<Statement, ParseError> {
        let (target, expected) = if self.eat_keyword(kw::USER) {
            let user = self.id("a user id")?;
            // Spelling out the form read helps whoever meant a user called "user".
            let expected = format!("';' after DELETE USER {user}");
            (DeleteTarget::User(user), expected)
        } else if self.eat_keyword(kw::ITEM) {
            let item = self.id("an item id")?;
            let expected = format!("';' after DELETE ITEM {item}");
            (DeleteTarget::Item(item), expected)
        } else {
            let target = DeleteTarget::Edge {
                user: self.id("a user id, USER or ITEM")?,
                edge_type: self.id("an edge type")?,
                item: self.id("an item id")?,
            };
            (target, "';'".to_owned())
        };
        self.end(&expected)?;
        Ok(Statement::Delete(target))
    }

    fn create_type(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword(kw::TYPE, kw::CREATE)?;
        let name = self.id("a type name")?;
        let mut weight = None;
        while self.clause(&mut weight, kw::WEIGHT, Self::weight)? {}
        self.end("WEIGHT or ';'")?;
        Ok(Statement::CreateType { name, weight })
    }

    fn train(&mut self) -> Result<Statement, ParseError> {
        let (mut epochs, mut with) = (None, None);
        while self.clause(&mut epochs, kw::EPOCHS, |p| p.count(kw::EPOCHS))?
            || self.clause(&mut with, kw::WITH, Self::settings)?
        {}
        self.end("EPOCHS, WITH or ';'")?;
        Ok(Statement::Train { epochs, with: with.unwrap_or_default() })
    }

    fn score(&mut self) -> Result<Statement, ParseError> {
        let user = self.id("a user id")?;
        let item = self.id("an item id")?;
        let mut target = None;
        while self.clause(&mut target, kw::FOR, |p| p.id("an edge type"))? {}
        self.end("FOR or ';'")?;
        Ok(Statement::Score { user, item, target })
    }

    fn recommend(&mut self) -> Result<Statement, ParseError> {
        let user = self.id("a user id")?;
        self.expect_keyword(kw::TOP, "the user id")?;
        let k = self.count(kw::TOP)?;
        let (mut exclude_seen, mut target) = (None, None);
        while self.clause(&mut exclude_seen, kw::EXCLUDE, |p| p.expect_keyword(kw::SEEN, kw::EXCLUDE))?
            || self.clause(&mut target, kw::FOR, |p| p.id("an edge type"))?
        {}
        self.end("EXCLUDE SEEN, FOR or ';'")?;
        Ok(Statement::Recommend { user, k, exclude_seen: exclude_seen.is_some(), target })
    }

    /// `EXPLAIN` takes the statements that have a plan to show.
    fn explain(&mut self) -> Result<Statement, ParseError> {
        let inner: fn(&mut Self) -> Result<Statement, ParseError> = if self.eat_keyword(kw::RECOMMEND) {
            Self::recommend
        } else if self.eat_keyword(kw::SIMILAR) {
            Self::similar
        } else {
            return Err(self.unexpected("RECOMMEND or SIMILAR after EXPLAIN"));
        };
        Ok(Statement::Explain(Box::new(inner(self)?)))
    }

    fn similar(&mut self) -> Result<Statement, ParseError> {
        let item = self.id("an item id")?;
        self.expect_keyword(kw::TOP, "the item id")?;
        let k = self.count(kw::TOP)?;
        self.end("';'")?;
        Ok(Statement::Similar { item, k })
    }

    fn eval(&mut self) -> Result<Statement, ParseError> {
        let path = self.id("a file path")?;
        let (mut k, mut target) = (None, None);
        while self.clause(&mut k, kw::TOP, |p| p.count(kw::TOP))?
            || self.clause(&mut target, kw::FOR, |p| p.id("an edge type"))?
        {}
        self.end("TOP, FOR or ';'")?;
        Ok(Statement::Eval { path, k, target })
    }

    fn show(&mut self) -> Result<Statement, ParseError> {
        let target = if self.eat_keyword(kw::STATS) {
            ShowTarget::Stats
        } else if self.eat_keyword(kw::MODEL) {
            ShowTarget::Model
        } else if self.eat_keyword(kw::TYPES) {
            ShowTarget::Types
        } else if self.eat_keyword(kw::WORKER) {
            ShowTarget::Worker
        } else if self.eat_keyword(kw::USER) {
            ShowTarget::User(self.id("a user id")?)
        } else if self.eat_keyword(kw::ITEM) {
            ShowTarget::Item(self.id("an item id")?)
        } else {
            return Err(self.unexpected("STATS, MODEL, TYPES, WORKER, USER or ITEM after SHOW"));
        };
        self.end("';'")?;
        Ok(Statement::Show(target))
    }

    fn set(&mut self) -> Result<Statement, ParseError> {
        let setting = self.setting()?;
        self.end("';'")?;
        Ok(Statement::Set(setting))
    }

    fn sync(&mut self) -> Result<Statement, ParseError> {
        self.end("';'")?;
        Ok(Statement::Sync)
    }

    /// `key = value {, key = value}`, after `WITH`.
    fn settings(&mut self) -> Result<Vec<Setting>, ParseError> {
        let mut settings = vec![self.setting()?];
        while self.next.kind == TokenKind::Comma {
            self.bump();
            settings.push(self.setting()?);
        }
        Ok(settings)
    }

    fn setting(&mut self) -> Result<Setting, ParseError> {
        let key = match self.next.kind {
            TokenKind::Word if is_setting_key(self.next.text) => self.bump().text.to_owned(),
            _ => return Err(self.unexpected("a setting name such as worker.batch")),
        };
        if self.next.kind != TokenKind::Eq {
            return Err(self.unexpected(&format!("'=' after '{key}'")));
        }
        self.bump();
        let value = match self.next.kind {
            TokenKind::Str => SettingValue::Str(unquote(self.bump().text)),
            TokenKind::Word => {
                let token = self.bump();
                let context = format!("for '{key}'");
                match number_shape(token.text) {
                    None => SettingValue::Word(token.text.to_owned()),
                    Some(NumberShape::Integer) => {
                        SettingValue::Int(token.text.parse().map_err(|_| self.out_of_range(token, &context))?)
                    }
                    Some(NumberShape::Float) => match token.text.parse::<f64>() {
                        Ok(x) if x.is_finite() => SettingValue::Float(x),
                        _ => return Err(self.out_of_range(token, &context)),
                    },
                }
            }
            _ => return Err(self.unexpected(&format!("a value for '{key}'"))),
        };
        Ok(Setting { key, value })
    }
}

/// A setting name: words of letters, digits and `_` joined by dots, each word starting with
/// a letter or `_`, such as `durability` or `worker.batch`.
fn is_setting_key(text: &str) -> bool {
    text.split('.').all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || c == '_')
    })
}

//! Running statements: the one code path behind `-f`, `-c`, `.read`, piped stdin and the
//! prompt.
//!
//! Input arrives a line at a time. A line starting with `.` between statements is a
//! meta-command; other lines gather in [`Pending`] until their statements are terminated by
//! `;` (or the input ends), and each statement then runs on its own, so that an error names
//! the line of the file where its statement starts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};

use gnnrec_engine::query::{is_complete, split_statements, ParseError, Span};
use gnnrec_engine::{Database, Error};

use crate::meta::{Meta, HELP};
use crate::progress::StatementBar;
use crate::render::{self, Location};

/// How deep `.read` may nest, so that a file reading itself fails instead of recursing.
const MAX_READ_DEPTH: usize = 16;

/// What the caller should do after a line or a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Something failed: stop this script and the scripts that read it.
    Stop,
    /// `.quit`: leave the shell.
    Quit,
}

/// Text read since the last complete statement.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    text: String,
    /// The input line that `text` starts on.
    first_line: usize,
}

impl Pending {
    /// Whether a statement has begun and still lacks its `;`.
    pub(crate) fn is_open(&self) -> bool {
        !is_complete(&self.text)
    }

    pub(crate) fn clear(&mut self) {
        self.text.clear();
    }
}

/// Runs statements against a database and writes what they return.
pub(crate) struct Runner<'a> {
    db: &'a Database,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    json: bool,
    keep_going: bool,
    progress_bars: bool,
    /// The exit status so far: 0, 1 once a statement failed, 2 after an I/O error.
    status: i32,
    depth: usize,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        db: &'a Database,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        json: bool,
        keep_going: bool,
        progress_bars: bool,
    ) -> Runner<'a> {
        Runner { db, out, err, json, keep_going, progress_bars, status: 0, depth: 0 }
    }

    pub(crate) fn status(&self) -> i32 {
        self.status
    }

    /// Writes a line to stderr; there is nowhere to report a failure to do so.
    pub(crate) fn note(&mut self, message: &str) {
        let _ = writeln!(self.err, "{message}");
    }

    /// Records an I/O or usage error: exit status 2.
    pub(crate) fn io_error(&mut self, message: &str) {
        self.note(&format!("gnnrec-shell: {message}"));
        self.status = 2;
    }

    /// Runs a whole script named `name` (a file name, `<stdin>` or `<command>`).
    pub(crate) fn run_script(&mut self, name: &str, input: &mut dyn BufRead) -> Flow {
        let mut pending = Pending::default();
        let mut line = String::new();
        let mut line_no = 0;
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) => return self.finish(&mut pending, Some(name)),
                Ok(_) => {
                    line_no += 1;
                    let text = line.strip_suffix('\n').unwrap_or(&line);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    let flow = self.feed(&mut pending, Some(name), text, line_no);
                    if flow != Flow::Continue {
                        return flow;
                    }
                }
                Err(e) => {
                    self.io_error(&format!("{name}:{}: cannot read: {}", line_no + 1, io_message(&e)));
                    return Flow::Stop;
                }
            }
        }
    }

    /// Takes one line of input, line `line_no` of `file`, and runs the statements it
    /// completes. `file` is `None` at the prompt.
    pub(crate) fn feed(
        &mut self,
        pending: &mut Pending,
        file: Option<&str>,
        line: &str,
        line_no: usize,
    ) -> Flow {
        if split_statements(&pending.text).is_empty() {
            pending.text.clear();
            pending.first_line = line_no;
            if line.trim_start().starts_with('.') {
                let at = Location { file, line: line_no, column: None };
                return match Meta::parse(line) {
                    Ok(meta) => self.meta(meta, at),
                    Err(message) => self.fail(&message, at, None),
                };
            }
        }
        pending.text.push_str(line);
        pending.text.push('\n');

        let spans = split_statements(&pending.text);
        let ready = if is_complete(&pending.text) { spans.len() } else { spans.len().saturating_sub(1) };
        for span in &spans[..ready] {
            let flow = self.statement(&pending.text, *span, file, pending.first_line);
            if flow != Flow::Continue {
                pending.clear();
                return flow;
            }
        }
        match spans.get(ready) {
            Some(open) => {
                pending.first_line += newlines(&pending.text[..open.start]);
                pending.text.drain(..open.start);
            }
            None => pending.clear(),
        }
        Flow::Continue
    }

    /// Runs what is left at the end of the input: a last statement may omit its `;`.
    pub(crate) fn finish(&mut self, pending: &mut Pending, file: Option<&str>) -> Flow {
        let text = std::mem::take(&mut pending.text);
        for span in split_statements(&text) {
            let flow = self.statement(&text, span, file, pending.first_line);
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// Runs the statement at `span` of `text`, whose first line is line `first_line`.
    fn statement(&mut self, text: &str, span: Span, file: Option<&str>, first_line: usize) -> Flow {
        let line = first_line + newlines(&text[..span.start]);
        let mut bar = StatementBar::new(self.progress_bars);
        let result = self.db.execute_with_progress(&text[span.start..span.end], &mut |p| bar.update(p));
        bar.finish();
        match result {
            Ok(outputs) => {
                for output in &outputs {
                    let shown = if self.json { render::json(output) + "\n" } else { render::table(output) };
                    if let Err(e) = self.out.write_all(shown.as_bytes()) {
                        return self.output_failed(&e);
                    }
                }
                Flow::Continue
            }
            Err(Error::Parse(e)) => {
                let (at, source) = locate(text, span.start, &e, file, first_line);
                self.fail(&e.message, at, Some(&source))
            }
            Err(e) => self.fail(&e.to_string(), Location { file, line, column: None }, None),
        }
    }

    fn meta(&mut self, meta: Meta, at: Location<'_>) -> Flow {
        match meta {
            Meta::Help => match writeln!(self.out, "{HELP}") {
                Ok(()) => Flow::Continue,
                Err(e) => self.output_failed(&e),
            },
            Meta::Quit => Flow::Quit,
            Meta::Read(path) => {
                if self.depth >= MAX_READ_DEPTH {
                    return self.fail(&format!("more than {MAX_READ_DEPTH} nested .read commands"), at, None);
                }
                let file = match File::open(&path) {
                    Ok(file) => file,
                    Err(e) => {
                        return self.fail(
                            &format!("cannot read '{}': {}", path.display(), io_message(&e)),
                            at,
                            None,
                        )
                    }
                };
                self.depth += 1;
                let flow = self.run_script(&path.display().to_string(), &mut BufReader::new(file));
                self.depth -= 1;
                flow
            }
        }
    }

    /// Reports a failed statement or meta-command; `source` is the caret drawing of a parse
    /// error.
    fn fail(&mut self, message: &str, at: Location<'_>, source: Option<&str>) -> Flow {
        self.status = self.status.max(1);
        let mut text = match (at.file, at.column) {
            (Some(file), Some(column)) => format!("{file}:{}:{column}: {message}", at.line),
            (Some(file), None) => format!("{file}:{}: {message}", at.line),
            (None, _) => format!("error: {message}"),
        };
        if let Some(source) = source {
            text.push('\n');
            text.push_str(source);
        }
        self.note(&text);
        if self.json {
            if let Err(e) = writeln!(self.out, "{}", render::json_error(message, at)) {
                return self.output_failed(&e);
            }
        }
        if self.keep_going {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    /// Stdout is gone: a reader that closed the pipe early is no error, anything else is.
    fn output_failed(&mut self, e: &io::Error) -> Flow {
        if e.kind() != io::ErrorKind::BrokenPipe {
            self.io_error(&format!("cannot write the output: {}", io_message(e)));
        }
        Flow::Stop
    }
}

fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// Places a parse error of the statement starting at byte `start` of `text` in the whole
/// text, and draws its source line with a caret under the offending token.
fn locate<'f>(
    text: &str,
    start: usize,
    e: &ParseError,
    file: Option<&'f str>,
    first_line: usize,
) -> (Location<'f>, String) {
    let mut offset = (start + e.span.start).min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let source_line = text[line_start..line_end].trim_end_matches('\r');
    let before = &text[line_start..offset];
    let token_end = (offset + e.span.end.saturating_sub(e.span.start)).min(line_start + source_line.len());
    let width = text.get(offset..token_end).map_or(0, |token| token.chars().count()).max(1);
    // Tabs are copied so that the caret lines up however the terminal expands them.
    let indent: String = before.chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let at = Location {
        file,
        line: first_line + newlines(&text[..offset]),
        column: Some(before.chars().count() + 1),
    };
    (at, format!("  {source_line}\n  {indent}{}", "^".repeat(width)))
}

/// An I/O error's message, lowercase and without the "(os error N)" that std appends.
pub(crate) fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text,
    };
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
}

//! The interactive prompt: a rustyline editor with history and keyword completion.
//!
//! Each line goes to the same runner as a script's lines; a statement still open after a
//! line (as [`is_complete`](gnnrec_engine::query::is_complete) decides) gets the
//! continuation prompt.

use std::path::PathBuf;

use gnnrec_engine::query::KEYWORDS;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use crate::script::{Flow, Pending, Runner};

const PROMPT: &str = "gnnrec> ";
const CONTINUATION: &str = "   ...> ";
const META_COMMANDS: &[&str] = &[".exit", ".help", ".quit", ".read"];

/// Reads and runs lines until Ctrl-D or `.quit`, and returns the exit status. Failed
/// statements are reported and the prompt comes back: they do not make the status, only an
/// I/O error does.
pub(crate) fn run(runner: &mut Runner<'_>) -> i32 {
    let config = Config::builder().completion_type(CompletionType::List).auto_add_history(false).build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            runner.io_error(&format!("cannot start the line editor: {e}"));
            return 2;
        }
    };
    editor.set_helper(Some(ShellHelper));
    let history = history_path();
    if let Some(path) = &history {
        // A missing or unreadable history is no reason to refuse to start.
        let _ = editor.load_history(path);
    }
    runner.note(concat!("gnnrec-shell ", env!("CARGO_PKG_VERSION"), ": .help for help, Ctrl-D to leave"));

    let mut pending = Pending::default();
    let mut line_no = 0;
    'read: loop {
        let prompt = if pending.is_open() { CONTINUATION } else { PROMPT };
        match editor.readline(prompt) {
            Ok(input) => {
                if !input.trim().is_empty() {
                    let _ = editor.add_history_entry(input.as_str());
                }
                // A paste can bring several lines at once: each is taken as if typed, and a
                // failure drops the rest, as in a script.
                for line in input.split('\n') {
                    line_no += 1;
                    match runner.feed(&mut pending, None, line, line_no) {
                        Flow::Continue => {}
                        Flow::Stop => break,
                        Flow::Quit => break 'read,
                    }
                }
            }
            // Ctrl-C drops the line being typed and any unfinished statement.
            Err(ReadlineError::Interrupted) => pending.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                runner.io_error(&format!("cannot read the terminal: {e}"));
                break;
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    if runner.status() == 2 {
        2
    } else {
        0
    }
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".gnnrec_history"))
}

/// Completes keywords, case-insensitively, in the case the user started typing, and the
/// names of meta-commands at the start of a line.
struct ShellHelper;

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = completions(line, pos);
        Ok((start, words.into_iter().map(|w| Pair { display: w.clone(), replacement: w }).collect()))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// Where the word before the cursor starts, and what it may become.
fn completions(line: &str, pos: usize) -> (usize, Vec<String>) {
    let Some(before) = line.get(..pos) else { return (pos, Vec::new()) };
    let trimmed = before.trim_start();
    if trimmed.starts_with('.') {
        if trimmed.contains(char::is_whitespace) {
            return (pos, Vec::new());
        }
        let found =
            META_COMMANDS.iter().filter(|m| m.starts_with(trimmed)).map(|m| (*m).to_owned()).collect();
        return (pos - trimmed.len(), found);
    }
    let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    let word = &before[start..];
    if word.is_empty() {
        return (pos, Vec::new());
    }
    let lower = word.chars().all(|c| !c.is_uppercase());
    let mut found: Vec<String> = KEYWORDS
        .iter()
        .filter(|k| k.len() >= word.len() && k.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes()))
        .map(|k| if lower { k.to_ascii_lowercase() } else { (*k).to_owned() })
        .collect();
    found.sort();
    (start, found)
}

#[cfg(test)]
mod tests {
    use super::completions;

    #[test]
    fn keywords_in_the_users_case() {
        assert_eq!(completions("rec", 3), (0, vec!["recommend".to_owned()]));
        assert_eq!(completions("SHOW ST", 7), (5, vec!["STATS".to_owned()]));
        assert_eq!(
            completions("show t", 6),
            (5, vec!["top".to_owned(), "train".to_owned(), "type".to_owned(), "types".to_owned()])
        );
        assert_eq!(completions("ADD alice click sku-1 We", 24), (22, vec!["WEIGHT".to_owned()]));
        assert_eq!(completions("show ", 5), (5, Vec::new()));
        assert_eq!(completions("xyz", 3), (0, Vec::new()));
    }

    #[test]
    fn meta_commands_at_the_start_of_a_line() {
        assert_eq!(completions(".re", 3), (0, vec![".read".to_owned()]));
        assert_eq!(
            completions("  .", 3),
            (2, vec![".exit".to_owned(), ".help".to_owned(), ".quit".to_owned(), ".read".to_owned()])
        );
        assert_eq!(completions(".read de", 8), (8, Vec::new()));
    }
}

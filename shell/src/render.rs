//! Results as aligned tables for people and as JSON lines for programs.

use std::fmt::Write as _;

use gnnrec_engine::{Output, Value};
use serde_json::Value as Json;

/// An output as text, psql-style: a header, a separator and the rows, numbers right-aligned
/// and text left-aligned, then the summary (or a row count) and, after a table, a blank line.
/// Every line ends with a newline; an output with neither columns nor summary is empty.
pub(crate) fn table(output: &Output) -> String {
    let mut text = String::new();
    if output.columns.is_empty() {
        if !output.summary.is_empty() {
            text.push_str(&output.summary);
            text.push('\n');
        }
        return text;
    }

    let cells: Vec<Vec<String>> =
        output.rows.iter().map(|row| row.iter().map(|v| printable(&v.to_string())).collect()).collect();
    let headers: Vec<String> = output.columns.iter().map(|c| printable(c)).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(cell.chars().count()),
                None => widths.push(cell.chars().count()),
            }
        }
    }
    // A header sits over its numbers when the column holds nothing else.
    let numeric: Vec<bool> = (0..widths.len())
        .map(|i| {
            let mut values =
                output.rows.iter().filter_map(|row| row.get(i)).filter(|v| **v != Value::Null).peekable();
            values.peek().is_some() && values.all(is_number)
        })
        .collect();

    let header_line = headers.iter().enumerate().map(|(i, h)| (h.as_str(), numeric[i]));
    push_line(&mut text, &widths, header_line);
    let separator: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    text.push_str(&separator.join("+"));
    text.push('\n');
    for (row, values) in cells.iter().zip(&output.rows) {
        push_line(&mut text, &widths, row.iter().zip(values).map(|(cell, v)| (cell.as_str(), is_number(v))));
    }

    if output.summary.is_empty() {
        let n = output.rows.len();
        let _ = writeln!(text, "({n} row{})", if n == 1 { "" } else { "s" });
    } else {
        text.push_str(&output.summary);
        text.push('\n');
    }
    text.push('\n');
    text
}

/// One table line: ` a | b `, without trailing spaces.
fn push_line<'a>(text: &mut String, widths: &[usize], cells: impl Iterator<Item = (&'a str, bool)>) {
    let mut line = String::new();
    for (i, (cell, right)) in cells.enumerate() {
        if i > 0 {
            line.push('|');
        }
        let width = widths[i];
        if right {
            let _ = write!(line, " {cell:>width$} ");
        } else {
            let _ = write!(line, " {cell:<width$} ");
        }
    }
    text.push_str(line.trim_end());
    text.push('\n');
}

fn is_number(value: &Value) -> bool {
    matches!(value, Value::Int(_) | Value::Float(_))
}

/// Control characters would break the table's lines; they are shown escaped.
fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// An output as one line of JSON: `{"columns":[...],"rows":[[...]],"summary":"..."}`.
pub(crate) fn json(output: &Output) -> String {
    let rows: Vec<Json> =
        output.rows.iter().map(|row| Json::Array(row.iter().map(json_value).collect())).collect();
    format!(
        r#"{{"columns":{},"rows":{},"summary":{}}}"#,
        Json::from(output.columns.clone()),
        Json::Array(rows),
        Json::from(output.summary.as_str())
    )
}

fn json_value(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Int(i) => Json::from(*i),
        // NaN and infinities have no JSON number; they become null.
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::from(s.as_str()),
    }
}

/// Where an error happened, for the JSON error line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location<'a> {
    /// The script's name; `None` for a statement typed at the prompt.
    pub file: Option<&'a str>,
    pub line: usize,
    /// Only parse errors have a column.
    pub column: Option<usize>,
}

/// An error as one line of JSON: `{"error":"...","file":...,"line":...}`, with a `column`
/// for parse errors.
pub(crate) fn json_error(message: &str, at: Location<'_>) -> String {
    let mut text = format!(
        r#"{{"error":{},"file":{},"line":{}"#,
        Json::from(message),
        at.file.map_or(Json::Null, Json::from),
        at.line
    );
    if let Some(column) = at.column {
        let _ = write!(text, r#","column":{column}"#);
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(columns: &[&str], rows: Vec<Vec<Value>>, summary: &str) -> Output {
        Output {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
            summary: summary.to_owned(),
        }
    }

    #[test]
    fn aligns_numbers_right_and_text_left() {
        let out = output(
            &["item", "weight", "count"],
            vec![
                vec!["sku-1".into(), Value::Float(2.5), Value::Int(12)],
                vec!["a-much-longer-id".into(), Value::Float(1.0), Value::Null],
            ],
            "user 'alice': 2 edges",
        );
        let want = " item             | weight | count
------------------+--------+-------
 sku-1            | 2.5000 |    12
 a-much-longer-id | 1.0000 |
user 'alice': 2 edges

";
        assert_eq!(table(&out), want);
    }

    #[test]
    fn mixed_column_keeps_its_header_left_and_counts_rows() {
        let out = output(
            &["stat", "value"],
            vec![vec!["edges".into(), Value::Int(3)], vec!["mode".into(), "wal".into()]],
            "",
        );
        let want = " stat  | value
-------+-------
 edges |     3
 mode  | wal
(2 rows)

";
        assert_eq!(table(&out), want);
        assert_eq!(table(&output(&["x"], vec![vec![Value::Int(1)]], "")), " x\n---\n 1\n(1 row)\n\n");
        assert_eq!(table(&output(&["a", "b"], vec![], "")), " a | b\n---+---\n(0 rows)\n\n");
    }

    #[test]
    fn messages_and_control_characters() {
        assert_eq!(table(&output(&[], vec![], "added 1 edge")), "added 1 edge\n");
        assert_eq!(table(&output(&[], vec![], "")), "");
        let out = output(&["id"], vec![vec!["a\nb".into()]], "1 row");
        assert_eq!(table(&out), " id\n------\n a\\nb\n1 row\n\n");
    }

    #[test]
    fn json_lines() {
        let out = output(
            &["item", "weight", "count", "note"],
            vec![
                vec!["sku-\"1\"".into(), Value::Float(0.5), Value::Int(3), Value::Null],
                vec![Value::Float(f64::NAN)],
            ],
            "done",
        );
        assert_eq!(
            json(&out),
            r#"{"columns":["item","weight","count","note"],"rows":[["sku-\"1\"",0.5,3,null],[null]],"summary":"done"}"#
        );
        let at = Location { file: Some("<stdin>"), line: 3, column: None };
        assert_eq!(
            json_error("unknown user 'bob'", at),
            r#"{"error":"unknown user 'bob'","file":"<stdin>","line":3}"#
        );
        let at = Location { file: None, line: 1, column: Some(5) };
        assert_eq!(json_error("bad", at), r#"{"error":"bad","file":null,"line":1,"column":5}"#);
    }
}

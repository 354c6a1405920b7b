//! Parsing interaction files (`user,item,type[,weight][,timestamp]`) into a bulk load.
//!
//! The whole file is validated before anything is written: the first malformed row, in
//! file order, becomes an error naming its line, and the store is never touched.
//! Parsing runs on every core: the file is cut at line ends into one piece per thread,
//! each piece is parsed and its ids interned locally, then the pieces are merged.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use gnnrec_storage::{BulkEdge, BulkLoad, TypeId};

use crate::error::{Error, Result};
use crate::MAX_ID_BYTES;

const COLUMNS: [&str; 5] = ["user", "item", "type", "weight", "timestamp"];

/// Reads and validates an interaction file. `type_id` resolves edge type names.
pub(crate) fn parse_file(
    path: &Path,
    type_id: &(dyn Fn(&str) -> Option<TypeId> + Sync),
    default_ts: i64,
) -> Result<BulkLoad> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse_bytes(path, &bytes, type_id, default_ts)
}

pub(crate) fn parse_bytes(
    path: &Path,
    bytes: &[u8],
    type_id: &(dyn Fn(&str) -> Option<TypeId> + Sync),
    default_ts: i64,
) -> Result<BulkLoad> {
    let err = |line: u64, reason: String| Error::Csv { path: path.to_path_buf(), line, reason };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let (header, body) = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (bytes, &bytes[bytes.len()..]),
    };
    let columns = parse_header(header).map_err(|reason| err(1, reason))?;

    // Quoted fields may hold commas; they may not span lines, which is what makes cutting
    // the file at line ends safe.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let pieces = split_at_lines(body, threads);
    let parsed: Vec<std::result::Result<Piece<'_>, (u64, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|piece| s.spawn(move || parse_piece(piece, columns, type_id, default_ts)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err((0, "parser thread panicked".into()))))
            .collect()
    });

    // Line numbers: the header is line 1; each piece knows how many lines it spans.
    let mut first_line = 2;
    let mut ok = Vec::with_capacity(parsed.len());
    for piece in parsed {
        match piece {
            Ok(p) => {
                first_line += p.lines;
                ok.push(p);
            }
            Err((local_line, reason)) => return Err(err(first_line + local_line, reason)),
        }
    }
    Ok(merge(ok))
}

fn parse_header(header: &[u8]) -> std::result::Result<usize, String> {
    let expected = "expected the header user,item,type[,weight][,timestamp]";
    if header.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(format!("empty file: {expected}"));
    }
    let text =
        std::str::from_utf8(header).map_err(|_| format!("the header is not valid UTF-8: {expected}"))?;
    let names: Vec<String> =
        text.trim_end_matches('\r').split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    if names.len() < 3 || names.len() > 5 || names.iter().zip(COLUMNS).any(|(a, b)| a != b) {
        return Err(format!("bad header '{}': {expected}", truncate(text.trim_end(), 80)));
    }
    Ok(names.len())
}

/// Cuts `body` into about `n` pieces that each end at a line end.
fn split_at_lines(body: &[u8], n: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let mut rest = body;
    let target = body.len() / n.max(1) + 1;
    while !rest.is_empty() {
        let cut = if rest.len() <= target {
            rest.len()
        } else {
            rest[target..].iter().position(|&b| b == b'\n').map_or(rest.len(), |p| target + p + 1)
        };
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

/// One piece of the file, parsed, with its ids interned locally.
struct Piece<'a> {
    users: Vec<Cow<'a, str>>,
    items: Vec<Cow<'a, str>>,
    edges: Vec<BulkEdge>,
    lines: u64,
}

/// Parses one piece. An error is (line within the piece, reason).
fn parse_piece<'a>(
    piece: &'a [u8],
    columns: usize,
    type_id: &(dyn Fn(&str) -> Option<TypeId> + Sync),
    default_ts: i64,
) -> std::result::Result<Piece<'a>, (u64, String)> {
    let mut users: HashMap<Cow<'a, str>, u32> = HashMap::new();
    let mut items: HashMap<Cow<'a, str>, u32> = HashMap::new();
    let mut out = Piece { users: Vec::new(), items: Vec::new(), edges: Vec::new(), lines: 0 };
    let mut types: HashMap<String, TypeId> = HashMap::new();
    let mut fields: Vec<Cow<'a, str>> = Vec::with_capacity(5);
    for (index, raw) in piece.split(|&b| b == b'\n').enumerate() {
        let line = index as u64;
        out.lines = line + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        let fail = |reason: String| (line, reason);
        let text = std::str::from_utf8(raw)
            .map_err(|e| fail(format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1)))?;
        split_fields(text, &mut fields).map_err(fail)?;
        if fields.len() != columns {
            return Err(fail(format!("expected {columns} columns, found {}", fields.len())));
        }
        check_id("user", &fields[0]).map_err(fail)?;
        check_id("item", &fields[1]).map_err(fail)?;
        let type_name = fields[2].trim();
        let edge_type = match types.get(type_name) {
            Some(&t) => t,
            None => {
                let t = type_id(type_name).ok_or_else(|| {
                    fail(format!(
                        "unknown edge type '{}' (declare it with CREATE TYPE)",
                        truncate(type_name, 80)
                    ))
                })?;
                types.insert(type_name.to_owned(), t);
                t
            }
        };
        let weight = match fields.get(3).map(|f| f.trim()) {
            None | Some("") => 1.0,
            Some(w) => parse_weight(w).map_err(fail)?,
        };
        let ts = match fields.get(4).map(|f| f.trim()) {
            None | Some("") => default_ts,
            Some(t) => t
                .parse::<i64>()
                .map_err(|_| fail(format!("bad timestamp '{}': expected unix seconds", truncate(t, 80))))?,
        };
        let mut fields = fields.drain(..);
        let (user, item) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
        drop(fields);
        let user = intern(&mut users, &mut out.users, user);
        let item = intern(&mut items, &mut out.items, item);
        out.edges.push(BulkEdge { user, edge_type, item, weight, ts });
    }
    // Splitting "a\nb\n" at line ends yields a third, empty piece that is not a line.
    if piece.ends_with(b"\n") {
        out.lines -= 1;
    }
    Ok(out)
}

fn intern<'a>(
    map: &mut HashMap<Cow<'a, str>, u32>,
    names: &mut Vec<Cow<'a, str>>,
    name: Cow<'a, str>,
) -> u32 {
    if let Some(&id) = map.get(name.as_ref()) {
        return id;
    }
    let id = names.len() as u32;
    names.push(name.clone());
    map.insert(name, id);
    id
}

fn check_id(what: &str, field: &str) -> std::result::Result<(), String> {
    if field.is_empty() {
        return Err(format!("empty {what} id"));
    }
    if field.len() > MAX_ID_BYTES {
        return Err(format!("{what} id is {} bytes long, the limit is {MAX_ID_BYTES}", field.len()));
    }
    Ok(())
}

fn parse_weight(text: &str) -> std::result::Result<f32, String> {
    match text.parse::<f32>() {
        Ok(w) if w.is_finite() => Ok(w),
        _ => Err(format!("bad weight '{}': expected a finite number", truncate(text, 80))),
    }
}

/// Splits one CSV line into fields, honouring `"` quotes with `""` escapes.
fn split_fields<'a>(line: &'a str, out: &mut Vec<Cow<'a, str>>) -> std::result::Result<(), String> {
    out.clear();
    if !line.contains('"') {
        out.extend(line.split(',').map(Cow::Borrowed));
        return Ok(());
    }
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let after = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            break &quoted[i + 1..];
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated quoted field (quoted fields cannot span lines)".into()),
                }
            };
            out.push(Cow::Owned(value));
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None if after.is_empty() => return Ok(()),
                None => return Err("unexpected text after a closing quote".into()),
            }
        } else {
            match rest.find(',') {
                Some(comma) => {
                    out.push(Cow::Borrowed(&rest[..comma]));
                    rest = &rest[comma + 1..];
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Ok(());
                }
            }
        }
    }
}

/// Merges the pieces' local interners into one numbering, in order of first appearance.
fn merge(pieces: Vec<Piece<'_>>) -> BulkLoad {
    let mut users: HashMap<Cow<'_, str>, u32> = HashMap::new();
    let mut items: HashMap<Cow<'_, str>, u32> = HashMap::new();
    let mut load = BulkLoad::default();
    let mut user_names: Vec<Cow<'_, str>> = Vec::new();
    let mut item_names: Vec<Cow<'_, str>> = Vec::new();
    load.edges.reserve(pieces.iter().map(|p| p.edges.len()).sum());
    // Consuming the pieces frees each one's rows as soon as they are copied.
    for piece in pieces {
        let user_map: Vec<u32> =
            piece.users.into_iter().map(|u| intern(&mut users, &mut user_names, u)).collect();
        let item_map: Vec<u32> =
            piece.items.into_iter().map(|i| intern(&mut items, &mut item_names, i)).collect();
        load.edges.extend(piece.edges.iter().map(|e| BulkEdge {
            user: user_map[e.user as usize],
            item: item_map[e.item as usize],
            ..*e
        }));
    }
    load.users = user_names.into_iter().map(Cow::into_owned).collect();
    load.items = item_names.into_iter().map(Cow::into_owned).collect();
    load
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

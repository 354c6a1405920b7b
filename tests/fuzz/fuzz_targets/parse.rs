//! The parser and the lexical helpers never panic, agree on where statements are, and every
//! statement parsed prints back to source that parses to the same statement.

#![no_main]

use gnnrec_query::{is_complete, parse, parse_statement, split_statements};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let spans = split_statements(text);
        is_complete(text);
        if let Ok(statements) = parse(text) {
            let parsed: Vec<_> = statements.iter().map(|s| s.span).collect();
            assert_eq!(parsed, spans, "parse and split_statements disagree");
            for parsed in statements {
                let printed = parsed.statement.to_string();
                match parse_statement(&printed) {
                    Ok(reparsed) => assert_eq!(reparsed, parsed.statement, "{printed}"),
                    Err(error) => panic!("printed statement does not parse:\n{error}"),
                }
            }
        }
    }
});

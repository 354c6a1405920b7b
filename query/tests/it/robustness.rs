//! No input makes the parser or the lexical helpers panic, and what they return agrees.

use gnnrec_query::*;
use proptest::prelude::*;
use proptest::sample::select;

/// Pieces that are not keywords but matter to the lexer and the parser.
const FRAGMENTS: &[&str] = &[
    "'",
    "''",
    ";",
    "--",
    "-",
    "=",
    ",",
    ".",
    "\"",
    "(",
    "\n",
    "\r\n",
    "\t",
    "1e5",
    "-3",
    "2.5",
    "0",
    "1e400",
    "99999999999999999999",
    "nan",
    "é",
    "购买",
    "alice",
    "sku-1",
    "worker.batch",
    "'a b'",
    "'it''s'",
];

/// Random token soup: keywords, fragments and words, joined with or without spaces.
fn soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        select(KEYWORDS).prop_map(str::to_owned),
        select(FRAGMENTS).prop_map(str::to_owned),
        "[a-z0-9]{1,4}",
        any::<char>().prop_map(String::from),
    ];
    let separator = select(&["", " ", " ", "\n"][..]);
    prop::collection::vec((piece, separator), 0..24)
        .prop_map(|parts| parts.into_iter().map(|(piece, sep)| piece + sep).collect())
}

fn check(text: &str) {
    let spans = split_statements(text);
    for span in &spans {
        assert!(text.get(span.start..span.end).is_some(), "bad span {span:?}");
    }
    is_complete(text);
    match parse(text) {
        Ok(statements) => {
            let parsed: Vec<Span> = statements.iter().map(|s| s.span).collect();
            assert_eq!(parsed, spans, "parse and split_statements disagree");
            for parsed in statements {
                let printed = parsed.statement.to_string();
                assert_eq!(parse_statement(&printed), Ok(parsed.statement), "{printed}");
            }
        }
        Err(error) => {
            assert!(error.span.start <= error.span.end && error.span.end <= text.len());
            assert!(error.line >= 1 && error.column >= 1);
            let rendered = error.to_string();
            assert!(rendered.contains(&error.message) && rendered.contains('^'));
        }
    }
    // parse_statement agrees with parse on whether the text holds exactly one statement.
    if let Ok(statement) = parse_statement(text) {
        let parsed = parse(text).expect("one statement is a script");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].statement, statement);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn token_soup_never_panics(text in soup()) {
        check(&text);
    }
}

#[test]
fn keywords_are_upper_case_and_unique() {
    let mut sorted = KEYWORDS.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), KEYWORDS.len());
    assert!(KEYWORDS.iter().all(|k| *k == k.to_ascii_uppercase()));
}

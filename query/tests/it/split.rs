//! `split_statements` and `is_complete`, the lexical helpers of the shell.

use gnnrec_query::{is_complete, split_statements};

fn pieces(text: &str) -> Vec<&str> {
    split_statements(text).into_iter().map(|span| &text[span.start..span.end]).collect()
}

#[test]
fn splits_at_semicolons_and_trims_to_the_tokens() {
    assert_eq!(pieces("SYNC; SHOW STATS;"), ["SYNC", "SHOW STATS"]);
    assert_eq!(pieces("  ADD a b c\n  WEIGHT 1 ;\n"), ["ADD a b c\n  WEIGHT 1"]);
    assert_eq!(pieces("SYNC;SHOW MODEL"), ["SYNC", "SHOW MODEL"], "a final ';' is optional");
    assert_eq!(pieces("ADD é ü ö; SCORE é ü"), ["ADD é ü ö", "SCORE é ü"]);
}

#[test]
fn semicolons_in_strings_do_not_split() {
    assert_eq!(pieces("SET note = 'a;b'; SYNC"), ["SET note = 'a;b'", "SYNC"]);
    assert_eq!(pieces("SET note = 'it''s;'; SYNC"), ["SET note = 'it''s;'", "SYNC"]);
    assert_eq!(pieces("LOAD '-- not a comment;'"), ["LOAD '-- not a comment;'"]);
}

#[test]
fn semicolons_and_quotes_in_comments_do_not_split() {
    assert_eq!(pieces("SYNC -- a; 'b\n; SHOW MODEL"), ["SYNC", "SHOW MODEL"]);
    assert_eq!(pieces("ADD a b c -- it's; done\n WEIGHT 2;"), ["ADD a b c -- it's; done\n WEIGHT 2"]);
}

#[test]
fn pieces_without_statement_text_are_left_out() {
    assert_eq!(pieces(""), Vec::<&str>::new());
    assert_eq!(pieces(" ; ;  -- only a comment\n ;\n"), Vec::<&str>::new());
    assert_eq!(pieces(";;SYNC;;-- end"), ["SYNC"]);
}

#[test]
fn an_unterminated_string_runs_to_the_end() {
    assert_eq!(pieces("SYNC; LOAD 'x; y\n;"), ["SYNC", "LOAD 'x; y\n;"]);
}

#[test]
fn text_that_is_no_statement_is_still_split() {
    assert_eq!(pieces("( ) ; \" ;"), ["( )", "\""]);
}

#[test]
fn complete_when_every_statement_is_terminated() {
    for text in [
        "SYNC;",
        "SYNC; -- done",
        "SYNC;\n\n",
        "ADD a b c;\nSHOW STATS;",
        "LOAD 'a;';",
        "SET x = 'it''s';",
        "SYNC -- ok\n;",
    ] {
        assert!(is_complete(text), "{text:?}");
    }
}

#[test]
fn complete_when_there_is_no_statement_text() {
    for text in ["", "   \n", "-- just a comment", ";", " ; -- x ; 'y"] {
        assert!(is_complete(text), "{text:?}");
    }
}

#[test]
fn incomplete_while_a_statement_is_open() {
    for text in ["SYNC", "SYNC -- done;", "SYNC;\nSHOW", "ADD a b c\n  WEIGHT 2", "SYNC; ("] {
        assert!(!is_complete(text), "{text:?}");
    }
}

#[test]
fn incomplete_inside_an_unterminated_string() {
    for text in ["LOAD 'a;", "SET x = 'it'';", "LOAD 'a -- b;\n"] {
        assert!(!is_complete(text), "{text:?}");
    }
}

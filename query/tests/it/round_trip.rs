//! `Display` prints source that parses back to the same tree, for any tree the language can
//! express: ids with quotes, spaces, unicode or keyword spellings, and any numbers.

use gnnrec_query::*;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

/// A keyword with each letter's case chosen at random.
fn keyword_any_case() -> impl Strategy<Value = String> {
    (select(KEYWORDS), any::<u32>()).prop_map(|(keyword, mask)| {
        keyword
            .chars()
            .enumerate()
            .map(|(i, c)| if mask >> i & 1 == 1 { c.to_ascii_lowercase() } else { c })
            .collect()
    })
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.:@/-]{1,10}",
        "-?[0-9]{1,4}(\\.[0-9]{1,2})?(e-?[0-9])?",
        "[ a-z';=,\"-]{0,6}",
        "\\PC{0,8}",
        any::<String>(),
        keyword_any_case(),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |x| x.is_finite())
}

fn setting() -> impl Strategy<Value = Setting> {
    let key = prop_oneof!["[a-zA-Z_][a-zA-Z0-9_]{0,6}(\\.[a-z_][a-z0-9_]{0,6}){0,2}", keyword_any_case(),];
    let value = prop_oneof![
        any::<i64>().prop_map(SettingValue::Int),
        finite().prop_map(SettingValue::Float),
        "[a-zA-Z_][a-zA-Z0-9_.:@/]{0,8}(-[a-z0-9]{1,3})?".prop_map(SettingValue::Word),
        "[0-9]{1,3}[a-zA-Z]{1,2}".prop_map(SettingValue::Word),
        keyword_any_case().prop_map(SettingValue::Word),
        any::<String>().prop_map(SettingValue::Str),
    ];
    (key, value).prop_map(|(key, value)| Setting { key, value })
}

fn statement() -> impl Strategy<Value = Statement> {
    prop_oneof![
        (id(), id(), id(), of(finite()), of(any::<i64>())).prop_map(|(user, edge_type, item, weight, at)| {
            Statement::Add(AddEdge { user, edge_type, item, weight, at })
        }),
        any::<String>().prop_map(|path| Statement::Load { path }),
        (id(), id(), id()).prop_map(|(user, edge_type, item)| {
            Statement::Delete(DeleteTarget::Edge { user, edge_type, item })
        }),
        id().prop_map(|user| Statement::Delete(DeleteTarget::User(user))),
        id().prop_map(|item| Statement::Delete(DeleteTarget::Item(item))),
        (id(), of(finite())).prop_map(|(name, weight)| Statement::CreateType { name, weight }),
        (of(any::<u64>()), prop::collection::vec(setting(), 0..4))
            .prop_map(|(epochs, with)| Statement::Train { epochs, with }),
        (id(), id(), of(id())).prop_map(|(user, item, target)| Statement::Score { user, item, target }),
        (id(), any::<u64>(), any::<bool>(), of(id())).prop_map(|(user, k, exclude_seen, target)| {
            Statement::Recommend { user, k, exclude_seen, target }
        }),
        (id(), any::<u64>()).prop_map(|(item, k)| Statement::Similar { item, k }),
        (any::<String>(), of(any::<u64>()), of(id())).prop_map(|(path, k, target)| Statement::Eval {
            path,
            k,
            target
        }),
        prop_oneof![
            Just(ShowTarget::Stats),
            Just(ShowTarget::Model),
            Just(ShowTarget::Types),
            Just(ShowTarget::Worker),
            id().prop_map(ShowTarget::User),
            id().prop_map(ShowTarget::Item),
        ]
        .prop_map(Statement::Show),
        setting().prop_map(Statement::Set),
        Just(Statement::Sync),
        (id(), any::<u64>(), any::<bool>(), of(id())).prop_map(|(user, k, exclude_seen, target)| {
            Statement::Explain(Box::new(Statement::Recommend { user, k, exclude_seen, target }))
        }),
        (id(), any::<u64>())
            .prop_map(|(item, k)| Statement::Explain(Box::new(Statement::Similar { item, k }))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn printed_statements_parse_back(statement in statement()) {
        let printed = statement.to_string();
        prop_assert_eq!(parse_statement(&printed), Ok(statement.clone()), "{}", printed);
        let script = format!("{printed};\n{printed}");
        let parsed: Vec<_> = parse(&script).expect("script").into_iter().map(|s| s.statement).collect();
        prop_assert_eq!(parsed, vec![statement.clone(), statement]);
    }
}

#[test]
fn floats_print_as_floats() {
    let add = parse_statement("ADD a b c WEIGHT 2").expect("parses");
    assert_eq!(add.to_string(), "ADD a b c WEIGHT 2.0");
    let set = parse_statement("SET lr = 1e-7").expect("parses");
    assert_eq!(set.to_string(), "SET lr = 1e-7");
    assert_eq!(parse_statement(&set.to_string()), Ok(set));
}

#[test]
fn ids_that_are_keywords_are_quoted() {
    let delete = Statement::Delete(DeleteTarget::Edge {
        user: "user".into(),
        edge_type: "click".into(),
        item: "Item".into(),
    });
    assert_eq!(delete.to_string(), "DELETE 'user' click 'Item'");
}

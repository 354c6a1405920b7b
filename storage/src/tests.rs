//! Tests that need the store's insides: on-disk states that only a crash or another
//! version of gnnrec could leave behind.

use rocksdb::WriteBatch;

use crate::schema::{meta_keys, PendingLoad, CF_EVENTS, CF_META};
use crate::store::encode_bincode;
use crate::{BulkEdge, BulkLoad, Error, Event, NodeKind, Store};

fn small_load() -> BulkLoad {
    BulkLoad {
        users: vec!["ann".into(), "bob".into()],
        items: vec!["x".into(), "y".into()],
        edges: vec![
            BulkEdge { user: 0, edge_type: 0, item: 0, weight: 1.0, ts: 5 },
            BulkEdge { user: 1, edge_type: 3, item: 1, weight: 2.0, ts: 6 },
            BulkEdge { user: 0, edge_type: 0, item: 0, weight: 1.0, ts: 7 },
        ],
    }
}

#[test]
fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Store::open(&path).unwrap();
    store.db.put_cf(store.cf(CF_META), meta_keys::FORMAT_VERSION, 99u32.to_be_bytes()).unwrap();
    drop(store);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::FormatVersion { found: 99, expected: 1, .. }), "{err}");
    assert!(err.to_string().contains("format version 99"), "{err}");
}

#[test]
fn bulk_load_folds_repeats_and_logs_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    store.add_edge("ann", "like", "x", 1.0, 1).unwrap();
    let report = store.bulk_load(&small_load(), &mut |_, _, _| {}).unwrap();
    assert_eq!((report.edges, report.new_users, report.new_items), (3, 1, 1));
    assert_eq!((report.first_seq, report.last_seq), (2, 4));
    let ann = store.require_node(NodeKind::User, "ann").unwrap();
    let x = store.require_node(NodeKind::Item, "x").unwrap();
    let click = store.edge(ann, 0, x).unwrap().unwrap();
    assert_eq!((click.count, click.first_ts, click.last_ts, click.weight), (2, 5, 7, 2.0));
    store.check_integrity().unwrap();
}

#[test]
fn an_uncommitted_load_is_rolled_back_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Store::open(&path).unwrap();
    store.add_edge("ann", "like", "x", 1.0, 1).unwrap();
    // What a crash in the middle of logging leaves: the record, some events, a new node.
    let pending = PendingLoad {
        first_seq: 2,
        last_seq: 4,
        first_user: 1,
        first_item: 1,
        next_user: 2,
        next_item: 2,
        committed: false,
        applied_through: 1,
    };
    let mut batch = WriteBatch::default();
    batch.put_cf(store.cf(CF_META), meta_keys::PENDING_LOAD, encode_bincode(&pending).unwrap());
    batch.put_cf(store.cf("user_ids"), b"bob", 1u32.to_be_bytes());
    batch.put_cf(store.cf("user_names"), 1u32.to_be_bytes(), b"bob");
    let event = Event::AddEdge { user: 1, edge_type: 0, item: 0, weight: 1.0, ts: 3 };
    batch.put_cf(store.cf(CF_EVENTS), 2u64.to_be_bytes(), event.encode());
    store.db.write(batch).unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.last_seq(), 1);
    assert_eq!(store.node_id(NodeKind::User, "bob").unwrap(), None);
    assert_eq!(store.node_id_bound(NodeKind::User), 1);
    store.check_integrity().unwrap();
    // The ids the rolled-back load had taken are handed out again.
    assert_eq!(store.add_edge("carl", "click", "x", 1.0, 9).unwrap().user, 1);
}

#[test]
fn a_committed_load_is_rolled_forward_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Store::open(&path).unwrap();
    // Log the load the normal way, then forget that two of its events were applied.
    store.bulk_load(&small_load(), &mut |_, _, _| {}).unwrap();
    let ann = store.require_node(NodeKind::User, "ann").unwrap();
    let bob = store.require_node(NodeKind::User, "bob").unwrap();
    let (x, y) =
        (store.require_node(NodeKind::Item, "x").unwrap(), store.require_node(NodeKind::Item, "y").unwrap());
    let mut batch = WriteBatch::default();
    for (a, t, b) in [(ann, 0u16, x), (bob, 3, y)] {
        batch.delete_cf(store.cf("edges_out"), crate::schema::edge_key(a, t, b));
        batch.delete_cf(store.cf("edges_in"), crate::schema::edge_key(b, t, a));
    }
    let pending = PendingLoad {
        first_seq: 1,
        last_seq: 3,
        first_user: 0,
        first_item: 0,
        next_user: 2,
        next_item: 2,
        committed: true,
        applied_through: 0,
    };
    batch.put_cf(store.cf(CF_META), meta_keys::PENDING_LOAD, encode_bincode(&pending).unwrap());
    store.db.write(batch).unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    let click = store.edge(ann, 0, x).unwrap().unwrap();
    assert_eq!((click.count, click.weight), (2, 2.0));
    assert_eq!(store.edge(bob, 3, y).unwrap().unwrap().count, 1);
    assert!(store.db.get_cf(store.cf(CF_META), meta_keys::PENDING_LOAD).unwrap().is_none());
    store.check_integrity().unwrap();
}

#[test]
fn deleted_node_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Store::open(&path).unwrap();
    store.add_edge("ann", "click", "x", 1.0, 1).unwrap();
    store.add_edge("bob", "click", "x", 1.0, 1).unwrap();
    assert_eq!(store.delete_node(NodeKind::User, "bob").unwrap(), 1);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.add_edge("carl", "click", "x", 1.0, 1).unwrap().user, 2);
    assert_eq!(store.neighbours(NodeKind::Item, 0, None).unwrap().len(), 2);
    store.check_integrity().unwrap();
}

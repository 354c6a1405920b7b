//! The on-disk layout. Everything that is written to RocksDB is encoded here.
//!
//! # Column families
//!
//! | family       | key                                   | value                              |
//! |--------------|---------------------------------------|------------------------------------|
//! | `meta`       | ASCII name                            | see [`meta_keys`]                  |
//! | `types`      | type id `u16`                         | bincode [`TypeDef`]                |
//! | `user_ids`   | external id (UTF-8 bytes)             | internal id `u32`                  |
//! | `item_ids`   | external id (UTF-8 bytes)             | internal id `u32`                  |
//! | `user_names` | internal id `u32`                     | external id (UTF-8 bytes)          |
//! | `item_names` | internal id `u32`                     | external id (UTF-8 bytes)          |
//! | `edges_out`  | user `u32`, type `u16`, item `u32`    | [`EdgeValue`] (merge operator)     |
//! | `edges_in`   | item `u32`, type `u16`, user `u32`    | [`EdgeValue`] (merge operator)     |
//! | `events`     | sequence number `u64`                 | [`Event`]                          |
//! | `embeddings` | kind `u8` (0 user, 1 item), id `u32`  | bincode [`StoredEmbedding`]        |
//! | `models`     | model version `u64`                   | checkpoint bytes (bincode, engine) |
//!
//! Integers in keys are big-endian so that scans come out in numeric order; integers in
//! the fixed-size values ([`EdgeValue`], [`Event`]) are little-endian.
//!
//! Both edge families always hold the same set of (user, type, item) triples: every write
//! batch that touches one touches the other. Edge values are only ever written as merge
//! operands, so repeating an interaction never reads the old value.
//!
//! FORMAT_VERSION is stored in `meta` when the database is created and checked on open;
//! any change to this table bumps it.

use bincode::{Decode, Encode};

/// Version of the layout above. Opening a database of another version is an error.
pub const FORMAT_VERSION: u32 = 1;

pub const CF_META: &str = "meta";
pub const CF_TYPES: &str = "types";
pub const CF_USER_IDS: &str = "user_ids";
pub const CF_ITEM_IDS: &str = "item_ids";
pub const CF_USER_NAMES: &str = "user_names";
pub const CF_ITEM_NAMES: &str = "item_names";
pub const CF_EDGES_OUT: &str = "edges_out";
pub const CF_EDGES_IN: &str = "edges_in";
pub const CF_EVENTS: &str = "events";
pub const CF_EMBEDDINGS: &str = "embeddings";
pub const CF_MODELS: &str = "models";

/// Every column family of a gnnrec database; `default` is RocksDB's own and stays empty.
pub const COLUMN_FAMILIES: &[&str] = &[
    CF_META,
    CF_TYPES,
    CF_USER_IDS,
    CF_ITEM_IDS,
    CF_USER_NAMES,
    CF_ITEM_NAMES,
    CF_EDGES_OUT,
    CF_EDGES_IN,
    CF_EVENTS,
    CF_EMBEDDINGS,
    CF_MODELS,
];

/// Keys of the `meta` family.
pub mod meta_keys {
    /// `u32` big-endian: the layout version, written once at creation.
    pub const FORMAT_VERSION: &[u8] = b"format_version";
    /// `u32` big-endian: the next internal user id to hand out (ids are never reused).
    pub const NEXT_USER: &[u8] = b"next_user";
    /// `u32` big-endian: the next internal item id to hand out.
    pub const NEXT_ITEM: &[u8] = b"next_item";
    /// `u64` big-endian: every event with a sequence number up to this one is trained.
    pub const TRAINED_THROUGH: &[u8] = b"trained_through";
    /// bincode `PendingLoad`: present only while a bulk load is in flight.
    pub const PENDING_LOAD: &[u8] = b"pending_load";
}

/// Internal dense id of a user or an item.
pub type NodeId = u32;
/// Internal id of an edge type.
pub type TypeId = u16;
/// Position in the event log; the first event has sequence number 1.
pub type Seq = u64;

/// The two kinds of node. A user and an item may share an external id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    User,
    Item,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::User => "user",
            NodeKind::Item => "item",
        }
    }

    fn tag(self) -> u8 {
        match self {
            NodeKind::User => 0,
            NodeKind::Item => 1,
        }
    }
}

/// A declared edge type and its default signal strength.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct TypeDef {
    pub name: String,
    /// How much one interaction of this type says about preference, relative to others.
    pub weight: f32,
}

/// The types every database starts with, in id order.
pub const BUILTIN_TYPES: &[(&str, f32)] = &[("click", 0.25), ("cart", 0.5), ("like", 0.75), ("buy", 1.0)];

/// The state of one (user, type, item) edge; also the merge operand that updates it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeValue {
    /// Sum of the weights of every interaction folded into the edge.
    pub weight: f32,
    /// Number of interactions folded into the edge.
    pub count: u32,
    /// Unix seconds of the earliest and the latest interaction.
    pub first_ts: i64,
    pub last_ts: i64,
}

pub const EDGE_VALUE_LEN: usize = 24;

impl EdgeValue {
    /// The operand of one interaction.
    pub fn single(weight: f32, ts: i64) -> EdgeValue {
        EdgeValue { weight, count: 1, first_ts: ts, last_ts: ts }
    }

    pub fn encode(&self) -> [u8; EDGE_VALUE_LEN] {
        let mut out = [0u8; EDGE_VALUE_LEN];
        out[0..4].copy_from_slice(&self.weight.to_le_bytes());
        out[4..8].copy_from_slice(&self.count.to_le_bytes());
        out[8..16].copy_from_slice(&self.first_ts.to_le_bytes());
        out[16..24].copy_from_slice(&self.last_ts.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<EdgeValue> {
        let b: &[u8; EDGE_VALUE_LEN] = bytes.try_into().ok()?;
        Some(EdgeValue {
            weight: f32::from_le_bytes(b[0..4].try_into().ok()?),
            count: u32::from_le_bytes(b[4..8].try_into().ok()?),
            first_ts: i64::from_le_bytes(b[8..16].try_into().ok()?),
            last_ts: i64::from_le_bytes(b[16..24].try_into().ok()?),
        })
    }

    /// Folds a later interaction into this edge.
    pub fn absorb(&mut self, other: &EdgeValue) {
        self.weight += other.weight;
        self.count = self.count.saturating_add(other.count);
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
    }
}

/// The associative merge operator of both edge families.
///
/// Returning `None` on a malformed operand makes RocksDB report corruption instead of
/// silently storing garbage.
pub(crate) fn merge_edge_values(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &rocksdb::MergeOperands,
) -> Option<Vec<u8>> {
    let mut acc: Option<EdgeValue> = match existing {
        Some(bytes) => Some(EdgeValue::decode(bytes)?),
        None => None,
    };
    for op in operands.iter() {
        let value = EdgeValue::decode(op)?;
        match acc.as_mut() {
            Some(a) => a.absorb(&value),
            None => acc = Some(value),
        }
    }
    acc.map(|v| v.encode().to_vec())
}

/// One entry of the event log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    AddEdge { user: NodeId, edge_type: TypeId, item: NodeId, weight: f32, ts: i64 },
    DeleteEdge { user: NodeId, edge_type: TypeId, item: NodeId },
    DeleteUser { user: NodeId },
    DeleteItem { item: NodeId },
}

const EVENT_ADD: u8 = 1;
const EVENT_DELETE_EDGE: u8 = 2;
const EVENT_DELETE_USER: u8 = 3;
const EVENT_DELETE_ITEM: u8 = 4;
/// op `u8`, user `u32`, item `u32`, type `u16`, weight `f32`, ts `i64`.
pub const EVENT_LEN: usize = 23;

impl Event {
    pub fn encode(&self) -> [u8; EVENT_LEN] {
        let (op, user, item, edge_type, weight, ts) = match *self {
            Event::AddEdge { user, edge_type, item, weight, ts } => {
                (EVENT_ADD, user, item, edge_type, weight, ts)
            }
            Event::DeleteEdge { user, edge_type, item } => (EVENT_DELETE_EDGE, user, item, edge_type, 0.0, 0),
            Event::DeleteUser { user } => (EVENT_DELETE_USER, user, 0, 0, 0.0, 0),
            Event::DeleteItem { item } => (EVENT_DELETE_ITEM, 0, item, 0, 0.0, 0),
        };
        let mut out = [0u8; EVENT_LEN];
        out[0] = op;
        out[1..5].copy_from_slice(&user.to_le_bytes());
        out[5..9].copy_from_slice(&item.to_le_bytes());
        out[9..11].copy_from_slice(&edge_type.to_le_bytes());
        out[11..15].copy_from_slice(&weight.to_le_bytes());
        out[15..23].copy_from_slice(&ts.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Event> {
        let b: &[u8; EVENT_LEN] = bytes.try_into().ok()?;
        let user = u32::from_le_bytes(b[1..5].try_into().ok()?);
        let item = u32::from_le_bytes(b[5..9].try_into().ok()?);
        let edge_type = u16::from_le_bytes(b[9..11].try_into().ok()?);
        let weight = f32::from_le_bytes(b[11..15].try_into().ok()?);
        let ts = i64::from_le_bytes(b[15..23].try_into().ok()?);
        Some(match b[0] {
            EVENT_ADD => Event::AddEdge { user, edge_type, item, weight, ts },
            EVENT_DELETE_EDGE => Event::DeleteEdge { user, edge_type, item },
            EVENT_DELETE_USER => Event::DeleteUser { user },
            EVENT_DELETE_ITEM => Event::DeleteItem { item },
            _ => return None,
        })
    }
}

/// A node's embedding and the model version that produced it.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct StoredEmbedding {
    pub model_version: u64,
    pub vector: Vec<f32>,
}

/// Written before a bulk load touches anything and removed when it is done; on open it
/// says whether to roll an interrupted load back (not committed) or forward (committed).
#[derive(Debug, Clone, Copy, PartialEq, Encode, Decode)]
pub(crate) struct PendingLoad {
    pub first_seq: Seq,
    pub last_seq: Seq,
    pub first_user: NodeId,
    pub first_item: NodeId,
    pub next_user: NodeId,
    pub next_item: NodeId,
    pub committed: bool,
    /// Every event up to this one has been applied to the edge families.
    pub applied_through: Seq,
}

pub fn edge_key(a: NodeId, edge_type: TypeId, b: NodeId) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0..4].copy_from_slice(&a.to_be_bytes());
    k[4..6].copy_from_slice(&edge_type.to_be_bytes());
    k[6..10].copy_from_slice(&b.to_be_bytes());
    k
}

pub fn decode_edge_key(k: &[u8]) -> Option<(NodeId, TypeId, NodeId)> {
    let k: &[u8; 10] = k.try_into().ok()?;
    Some((
        u32::from_be_bytes(k[0..4].try_into().ok()?),
        u16::from_be_bytes(k[4..6].try_into().ok()?),
        u32::from_be_bytes(k[6..10].try_into().ok()?),
    ))
}

pub fn embedding_key(kind: NodeKind, id: NodeId) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = kind.tag();
    k[1..5].copy_from_slice(&id.to_be_bytes());
    k
}

pub fn decode_embedding_key(k: &[u8]) -> Option<(NodeKind, NodeId)> {
    let k: &[u8; 5] = k.try_into().ok()?;
    let kind = match k[0] {
        0 => NodeKind::User,
        1 => NodeKind::Item,
        _ => return None,
    };
    Some((kind, u32::from_be_bytes(k[1..5].try_into().ok()?)))
}

pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips() {
        let events = [
            Event::AddEdge { user: 7, edge_type: 3, item: u32::MAX, weight: 2.5, ts: -5 },
            Event::DeleteEdge { user: 1, edge_type: 0, item: 2 },
            Event::DeleteUser { user: 9 },
            Event::DeleteItem { item: 4 },
        ];
        for e in events {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode(&[9u8; EVENT_LEN]), None);
        assert_eq!(Event::decode(&[1u8; 3]), None);
    }

    #[test]
    fn edge_values_fold() {
        let mut v = EdgeValue::single(1.0, 100);
        v.absorb(&EdgeValue::single(2.0, 50));
        assert_eq!(v, EdgeValue { weight: 3.0, count: 2, first_ts: 50, last_ts: 100 });
        assert_eq!(EdgeValue::decode(&v.encode()), Some(v));
    }

    #[test]
    fn keys_sort_numerically() {
        assert!(edge_key(1, 0, 300) < edge_key(2, 0, 1));
        assert!(edge_key(256, 0, 0) > edge_key(255, 9, 9));
        assert_eq!(decode_edge_key(&edge_key(5, 6, 7)), Some((5, 6, 7)));
    }
}

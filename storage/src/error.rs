use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process (or another handle in this one) has the database open.
    #[error("database is locked by another process: {}", .0.display())]
    Locked(PathBuf),
    /// The path holds something that is not a gnnrec database.
    #[error("'{}' is not a gnnrec database ({reason})", path.display())]
    NotADatabase { path: PathBuf, reason: String },
    /// The database was written with another layout version.
    #[error("'{}' has format version {found}, this build reads version {expected}", path.display())]
    FormatVersion { path: PathBuf, found: u32, expected: u32 },
    /// An edge type that was never declared.
    #[error("unknown edge type '{0}'")]
    UnknownType(String),
    /// An edge type declared twice.
    #[error("edge type '{0}' already exists")]
    TypeExists(String),
    /// A user that does not exist.
    #[error("unknown user '{0}'")]
    UnknownUser(String),
    /// An item that does not exist.
    #[error("unknown item '{0}'")]
    UnknownItem(String),
    /// An edge that does not exist.
    #[error("no edge {user} -[{edge_type}]-> {item}")]
    UnknownEdge { user: String, edge_type: String, item: String },
    /// A value that the store cannot hold.
    #[error("{0}")]
    InvalidInput(String),
    /// Bytes on disk that do not decode.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A file-system error outside RocksDB.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// An error reported by RocksDB.
    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn corrupt(what: &'static str, detail: impl Into<String>) -> Error {
    Error::Corrupt { what, detail: detail.into() }
}

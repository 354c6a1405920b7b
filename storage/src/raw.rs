//! A plain RocksDB with the store's column families and options, for the ingest benchmark:
//! writing the store's key/value pairs here with batched puts is the limit for this layout.

use std::path::Path;

use rocksdb::{WriteBatch, DB};

use crate::error::Result;
use crate::schema::COLUMN_FAMILIES;
use crate::store::db_options;

/// A fresh RocksDB that takes pre-encoded writes and nothing else.
pub struct RawBaseline {
    db: DB,
}

impl RawBaseline {
    pub fn create(path: impl AsRef<Path>) -> Result<RawBaseline> {
        let mut opts = db_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        Ok(RawBaseline { db: DB::open_cf(&opts, path, COLUMN_FAMILIES)? })
    }

    /// Writes `(column family, key, value)` triples as one batch of puts through the WAL.
    pub fn put_batch<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a [u8], &'a [u8])>,
    ) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (cf, k, v) in entries {
            let handle = self
                .db
                .cf_handle(cf)
                .ok_or_else(|| crate::Error::InvalidInput(format!("no column family '{cf}'")))?;
            batch.put_cf(handle, k, v);
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// Flushes memtables so that the size on disk can be compared with the store's.
    pub fn flush(&self) -> Result<()> {
        Ok(self.db.flush()?)
    }
}

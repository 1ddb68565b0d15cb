//! Applies `migrations/NNNN_*.sql` in order, tracked by `PRAGMA user_version`.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_missing_packs.sql"),
    include_str!("../../migrations/0003_damaged_blobs.sql"),
    include_str!("../../migrations/0004_damaged_padding.sql"),
    include_str!("../../migrations/0005_damaged_trailer.sql"),
];

/// Brings the schema up to date, refusing a database from a newer snap.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(Error::UnsupportedFormat {
            found: format!("index schema {current}"),
            supported: format!("index schema {}", MIGRATIONS.len()),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

//! The merge key's unique index, which lets a merge be one
//! `INSERT ... ON CONFLICT (key) DO UPDATE`.
//!
//! A merge table gets `CREATE UNIQUE INDEX ON t (key columns) NULLS NOT
//! DISTINCT` (PostgreSQL 15): NULL key values conflict with NULL key values,
//! so the conflict is the same null-safe match (`IS NOT DISTINCT FROM`,
//! ANDed across key columns) as the merge's dedupe. weft marks the index it
//! creates with the comment [`MARK`] (`COMMENT ON INDEX`), so it can tell its
//! own index from a user's.
//!
//! Tables created by an older weft have a plain (non-unique) index on the key
//! (`CREATE INDEX ON t (key)`). The first merge into such a table migrates
//! it in the load's transaction, under a savepoint: it drops every valid
//! non-unique, non-partial btree index whose columns are exactly the key
//! columns in key order (the old weft index, or an index the unique one
//! makes redundant), then creates the unique index. When the table already
//! holds two rows of one key (loaded by `append` or `replace` before the
//! stream became a merge, or under another key), the unique index cannot be
//! built: the savepoint is rolled back (the old index stays) and that merge
//! and the next ones in this process take the delete + insert path, with the
//! same result. The attempt is made once per table and key per process (a
//! failed build reads the whole table), and again after a `replace`. The
//! migration builds the index over the whole table, and its `DROP INDEX`
//! holds off the table's readers until that load commits (once per table).
//!
//! An `append` or `replace` into a table with weft's unique index that would
//! put two rows of a key in the table (the stream stopped being a merge)
//! demotes the index in the same transaction: a plain index on the same
//! columns replaces it and the rows are inserted, exactly as before the
//! index existed. A merge under a new key drops weft's unique index on the
//! old key (it would refuse rows the new key keeps apart).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

use super::pg;
use super::sql::{column_list, ident};
use crate::WarehouseError;

/// The comment on the unique key index weft creates.
pub(crate) const MARK: &str = "weft merge key";

/// Tables (quoted, with the key columns) whose unique key index could not
/// be built because of duplicate keys; shared by a warehouse's clones.
#[derive(Debug, Default)]
pub(crate) struct Duplicates(Mutex<HashSet<(String, Vec<String>)>>);

impl Duplicates {
    fn contains(&self, table: &str, keys: &[String]) -> bool {
        let set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        set.contains(&(table.to_string(), keys.to_vec()))
    }

    fn insert(&self, table: &str, keys: &[String]) {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        set.insert((table.to_string(), keys.to_vec()));
    }

    /// Forgets `table` (its rows were all replaced).
    pub(crate) fn forget(&self, table: &str) {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        set.retain(|(t, _)| t != table);
    }
}

/// One index of the target table, as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    /// The index's name (unquoted; in the table's schema).
    pub(crate) name: String,
    /// Its key columns, in index order.
    pub(crate) columns: Vec<String>,
    unique: bool,
    nulls_not_distinct: bool,
    /// Valid, immediate, btree, without predicate, expressions or INCLUDE columns.
    plain: bool,
    /// Every column of the index is `NOT NULL`.
    not_null: bool,
    /// Carries weft's [`MARK`].
    weft: bool,
}

impl Index {
    /// Whether `INSERT ... ON CONFLICT (keys)` may use it as the arbiter with
    /// null-safe key matching: unique on exactly the key columns (in any
    /// order), NULLs not distinct or impossible.
    fn arbiter_for(&self, keys: &[String]) -> bool {
        self.plain
            && self.unique
            && (self.nulls_not_distinct || self.not_null)
            && self.columns.len() == keys.len()
            && keys.iter().all(|k| self.columns.contains(k))
    }

    /// An older weft's key index (or one the unique index makes redundant).
    fn old_key_index(&self, keys: &[String]) -> bool {
        self.plain && !self.unique && self.columns == keys
    }

    /// weft's own unique key index.
    pub(crate) fn weft_unique(&self) -> bool {
        self.weft && self.unique
    }
}

/// The indexes of `schema.table`.
pub(crate) async fn indexes(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
    shown: &str,
) -> Result<Vec<Index>, WarehouseError> {
    let rows = tx
        .query(
            "SELECT ic.relname::text, \
               ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                     ORDER BY k.ord), \
               i.indisunique, i.indnullsnotdistinct, \
               i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL \
                 AND i.indnatts = i.indnkeyatts AND am.amname = 'btree', \
               coalesce((SELECT bool_and(a.attnotnull) FROM pg_catalog.pg_attribute a \
                         WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])), false), \
               coalesce(pg_catalog.obj_description(i.indexrelid, 'pg_class') = $3, false) \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_catalog.pg_am am ON am.oid = ic.relam \
             WHERE n.nspname = $1 AND c.relname = $2 \
             ORDER BY ic.relname",
            &[&schema, &table, &MARK],
        )
        .await
        .map_err(pg("read indexes", shown))?;
    Ok(rows
        .iter()
        .map(|r| Index {
            name: r.get(0),
            columns: r.get(1),
            unique: r.get(2),
            nulls_not_distinct: r.get(3),
            plain: r.get(4),
            not_null: r.get(5),
            weft: r.get(6),
        })
        .collect())
}

/// `CREATE UNIQUE INDEX ON {table} (keys) NULLS NOT DISTINCT`.
fn create_unique(table: &str, keys: &[String]) -> String {
    format!(
        "CREATE UNIQUE INDEX ON {table} ({}) NULLS NOT DISTINCT",
        column_list(keys.iter().map(String::as_str))
    )
}

/// Marks the unique key index just created (named by PostgreSQL:
/// `{stream}_{key}_idx`, numbered when taken) with [`MARK`].
async fn mark(
    tx: &Transaction<'_>,
    schema: &str,
    stream: &str,
    keys: &[String],
    shown: &str,
) -> Result<(), WarehouseError> {
    let created = indexes(tx, schema, stream, shown)
        .await?
        .into_iter()
        .find(|i| i.arbiter_for(keys) && i.nulls_not_distinct && !i.weft);
    if let Some(index) = created {
        tx.batch_execute(&format!(
            "COMMENT ON INDEX {}.{} IS '{MARK}'",
            ident(schema),
            ident(&index.name)
        ))
        .await
        .map_err(pg("mark key index", shown))?;
    }
    Ok(())
}

/// The unique key index of a new merge table.
pub(crate) async fn create_for_new_table(
    tx: &Transaction<'_>,
    schema: &str,
    stream: &str,
    table: &str,
    keys: &[String],
    shown: &str,
) -> Result<(), WarehouseError> {
    tx.batch_execute(&create_unique(table, keys))
        .await
        .map_err(pg("create key index", shown))?;
    mark(tx, schema, stream, keys, shown).await
}

/// Makes sure an existing merge table has a unique key index (see the module
/// doc); returns whether the merge can be an `INSERT ... ON CONFLICT`.
pub(crate) async fn ensure_unique(
    tx: &Transaction<'_>,
    schema: &str,
    stream: &str,
    table: &str,
    keys: &[String],
    duplicates: &Duplicates,
    shown: &str,
) -> Result<bool, WarehouseError> {
    let all = indexes(tx, schema, stream, shown).await?;
    // weft's unique index on another key would refuse rows this key keeps apart.
    for stale in all
        .iter()
        .filter(|i| i.weft_unique() && !i.arbiter_for(keys))
    {
        tracing::info!(table = %shown, index = %stale.name, "dropping the unique index of an earlier merge key");
        tx.batch_execute(&format!(
            "DROP INDEX {}.{}",
            ident(schema),
            ident(&stale.name)
        ))
        .await
        .map_err(pg("drop key index", shown))?;
    }
    if all.iter().any(|i| i.arbiter_for(keys)) {
        return Ok(true);
    }
    if duplicates.contains(table, keys) {
        return Ok(false);
    }
    let savepoint = |cmd: &str| format!("{cmd} SAVEPOINT __weft_key_index");
    tx.batch_execute(&savepoint(""))
        .await
        .map_err(pg("create key index", shown))?;
    let attempt = async {
        for old in all.iter().filter(|i| i.old_key_index(keys)) {
            tx.batch_execute(&format!(
                "DROP INDEX {}.{}",
                ident(schema),
                ident(&old.name)
            ))
            .await?;
        }
        tx.batch_execute(&create_unique(table, keys)).await
    };
    match attempt.await {
        Ok(()) => {
            tx.batch_execute(&savepoint("RELEASE"))
                .await
                .map_err(pg("create key index", shown))?;
            mark(tx, schema, stream, keys, shown).await?;
            tracing::info!(table = %shown, "merge key index is now unique (NULLS NOT DISTINCT)");
            Ok(true)
        }
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            tx.batch_execute(&savepoint("ROLLBACK TO"))
                .await
                .map_err(pg("create key index", shown))?;
            tracing::info!(
                table = %shown,
                "the table holds duplicate keys: merging by delete + insert"
            );
            duplicates.insert(table, keys);
            Ok(false)
        }
        Err(e) => Err(pg("create key index", shown)(e)),
    }
}

/// Replaces weft's unique index `index` by a plain index on its columns
/// (an append or replace is putting two rows of one key in the table).
pub(crate) async fn demote(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
    index: &Index,
    shown: &str,
) -> Result<(), WarehouseError> {
    tracing::info!(table = %shown, index = %index.name, "duplicate keys appended: the merge key index is no longer unique");
    tx.batch_execute(&format!(
        "DROP INDEX {}.{}; CREATE INDEX ON {table} ({})",
        ident(schema),
        ident(&index.name),
        column_list(index.columns.iter().map(String::as_str))
    ))
    .await
    .map_err(pg("demote key index", shown))
}

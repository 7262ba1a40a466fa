//! The journal in one SQLite file (bundled SQLite, WAL mode): `batches`, `entries` with a
//! `UNIQUE` idempotency key, and `balances`. Money is integer minor units, never REAL.
//!
//! Takes a journal path; gives the `Store` operations, each `append` one `BEGIN IMMEDIATE`
//! transaction so two `post`s serialize (the second waits a bounded time, then fails).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, Transaction};

use super::chain;
use super::store::{NewBatch, State, Store};
use super::{from_minor, to_minor, Balance, Batch, BatchHead, Entry};

/// How long a reader waits for a `post` holding the journal before it fails.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(20);

/// `PRAGMA application_id` of a journal: "SLAJ".
const APPLICATION_ID: i64 = 0x534C_414A;

const SCHEMA: &str = "
CREATE TABLE batches (
    number          INTEGER PRIMARY KEY,
    posted_at       TEXT NOT NULL,
    run_dir         TEXT NOT NULL,
    ledger_sha256   TEXT NOT NULL UNIQUE,
    as_of           TEXT NOT NULL,
    first_month     TEXT NOT NULL,
    last_month      TEXT NOT NULL,
    customers       TEXT,
    policy          TEXT NOT NULL,
    note            TEXT NOT NULL,
    entry_count     INTEGER NOT NULL,
    entries_sha256  TEXT NOT NULL,
    previous_sha256 TEXT NOT NULL,
    batch_sha256    TEXT NOT NULL
) STRICT;
CREATE TABLE entries (
    batch               INTEGER NOT NULL REFERENCES batches(number),
    seq                 INTEGER NOT NULL,
    customer_id         INTEGER NOT NULL,
    service_month       TEXT NOT NULL,
    currency            TEXT NOT NULL,
    amount_minor        INTEGER NOT NULL,
    balance_after_minor INTEGER NOT NULL,
    reason              TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL UNIQUE,
    entry_sha256        TEXT NOT NULL,
    PRIMARY KEY (batch, seq)
) STRICT;
CREATE TABLE balances (
    customer_id   INTEGER NOT NULL,
    service_month TEXT NOT NULL,
    currency      TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL,
    PRIMARY KEY (customer_id, service_month, currency)
) STRICT;
";

pub(crate) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// How long to wait for another writer before failing.
    wait: Duration,
}

impl SqliteStore {
    /// Opens the journal at `path`, creating it when absent (for `post`).
    pub(crate) fn create_or_open(path: &Path, wait: Duration) -> anyhow::Result<SqliteStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let store = Self::open(path, flags, wait)?;
        store.ensure_schema()?;
        Ok(store)
    }

    /// Opens an existing journal (for the `journal` commands): never creates one.
    pub(crate) fn open_existing(path: &Path) -> anyhow::Result<SqliteStore> {
        if !path.is_file() {
            return Err(crate::error::hinted(
                format!("journal `{}` does not exist", crate::paths::shown(path)),
                format!(
                    "`sla-ledger post --journal {} --run DIR` creates it with its first batch",
                    crate::paths::shown(path)
                ),
            ));
        }
        let store = Self::open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, BUSY_TIMEOUT)?;
        if store.application_id()? != APPLICATION_ID {
            return Err(store.not_a_journal());
        }
        Ok(store)
    }

    fn open(path: &Path, flags: OpenFlags, wait: Duration) -> anyhow::Result<SqliteStore> {
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            crate::error::with_hint(
                e,
                format!("cannot open journal `{}`", crate::paths::shown(path)),
                "`--journal` names a file in an existing folder this user can write",
            )
        })?;
        let store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            wait,
        };
        store.conn.busy_timeout(wait)?;
        // WAL: readers never block the one writer; FULL: a committed batch survives a crash.
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| store.failure(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(crate::error::hinted(
                format!(
                    "journal `{}` cannot use WAL mode (got `{mode}`)",
                    crate::paths::shown(path)
                ),
                "keep the journal on a local file system",
            ));
        }
        store
            .conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(|e| store.failure(e))?;
        Ok(store)
    }

    fn application_id(&self) -> anyhow::Result<i64> {
        self.conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.failure(e))
    }

    fn not_a_journal(&self) -> anyhow::Error {
        crate::error::hinted(
            format!(
                "`{}` is an SQLite file but not an sla-ledger journal",
                crate::paths::shown(&self.path)
            ),
            "pass the `--journal` file that `sla-ledger post` wrote",
        )
    }

    /// Creates the tables of a new journal; refuses any other database.
    fn ensure_schema(&self) -> anyhow::Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.failure(e))?;
        let result = (|| -> anyhow::Result<()> {
            let id = self.application_id()?;
            if id == APPLICATION_ID {
                return Ok(());
            }
            let tables: i64 = self
                .conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(|e| self.failure(e))?;
            if id != 0 || tables != 0 {
                return Err(self.not_a_journal());
            }
            self.conn
                .execute_batch(SCHEMA)
                .map_err(|e| self.failure(e))?;
            self.conn
                .execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
                .map_err(|e| self.failure(e))?;
            Ok(())
        })();
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.conn.execute_batch(end).map_err(|e| self.failure(e));
        result.and(ended)
    }

    fn failure(&self, e: rusqlite::Error) -> anyhow::Error {
        failure_for(&self.path, self.wait, e)
    }
}

/// Another connection holds the journal: the caller may try again until its wait is over.
#[derive(Debug, thiserror::Error)]
#[error(
    "journal `{}` is busy: another `post` held it for more than {wait_secs} s; nothing was booked",
    crate::paths::shown(path)
)]
pub(crate) struct Busy {
    pub path: PathBuf,
    pub wait_secs: u64,
}

/// An SQLite error in the user's words; a busy journal says who holds it and what to do.
fn failure_for(path: &Path, wait: Duration, e: rusqlite::Error) -> anyhow::Error {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    if busy {
        return anyhow::Error::new(Busy {
            path: path.to_path_buf(),
            wait_secs: wait.as_secs(),
        });
    }
    if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        return crate::error::hinted(
            format!(
                "`{}` is not an SQLite file, so not a journal",
                crate::paths::shown(path)
            ),
            "pass the `--journal` file that `sla-ledger post` wrote, or a new file name",
        );
    }
    anyhow::Error::new(e).context(format!("journal `{}`", crate::paths::shown(path)))
}

/// A stored count or number: never negative in a journal `post` wrote.
fn count(row: &rusqlite::Row, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            Box::new(e),
        )
    })
}

/// Batch numbers and counts stay far below `i64::MAX`; saturate rather than wrap.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn read_batches(conn: &Connection) -> rusqlite::Result<Vec<(Batch, Option<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT number, posted_at, run_dir, ledger_sha256, as_of, first_month, last_month,
                customers, policy, note, entry_count, entries_sha256, previous_sha256, batch_sha256
         FROM batches ORDER BY number",
    )?;
    let rows = stmt.query_map([], |r| {
        let customers: Option<String> = r.get(7)?;
        Ok((
            Batch {
                number: count(r, 0)?,
                head: BatchHead {
                    posted_at: r.get(1)?,
                    run_dir: r.get(2)?,
                    ledger_sha256: r.get(3)?,
                    as_of: r.get(4)?,
                    first_month: r.get(5)?,
                    last_month: r.get(6)?,
                    customers: None,
                    policy: r.get(8)?,
                    note: r.get(9)?,
                },
                entry_count: count(r, 10)?,
                entries_sha256: r.get(11)?,
                previous_sha256: r.get(12)?,
                batch_sha256: r.get(13)?,
            },
            customers,
        ))
    })?;
    rows.collect()
}

/// Parses each batch's `customers` (a JSON list, or NULL for every customer).
fn with_customers(rows: Vec<(Batch, Option<String>)>) -> anyhow::Result<Vec<Batch>> {
    let mut batches = Vec::with_capacity(rows.len());
    for (mut batch, customers) in rows {
        if let Some(text) = customers {
            batch.head.customers = Some(serde_json::from_str(&text).map_err(|_| {
                crate::error::hinted(
                    format!(
                        "batch {} column `customers` holds {}, not a JSON list of customer ids; the journal was changed after it was posted",
                        batch.number,
                        crate::text::quoted(&text),
                    ),
                    "restore the journal from a backup taken before the change",
                )
            })?);
        }
        batches.push(batch);
    }
    Ok(batches)
}

fn read_entries(conn: &Connection, since_batch: u64) -> rusqlite::Result<Vec<Entry>> {
    let mut stmt = conn.prepare(
        "SELECT batch, seq, customer_id, service_month, currency, amount_minor,
                balance_after_minor, reason, idempotency_key, entry_sha256
         FROM entries WHERE batch >= ?1 ORDER BY batch, seq",
    )?;
    let rows = stmt.query_map([signed(since_batch)], |r| {
        Ok(Entry {
            batch: count(r, 0)?,
            seq: count(r, 1)?,
            customer_id: r.get(2)?,
            service_month: r.get(3)?,
            currency: r.get(4)?,
            amount: from_minor(r.get(5)?),
            balance_after: from_minor(r.get(6)?),
            reason: r.get(7)?,
            idempotency_key: r.get(8)?,
            entry_sha256: r.get(9)?,
        })
    })?;
    rows.collect()
}

fn read_balances(conn: &Connection) -> rusqlite::Result<Vec<Balance>> {
    let mut stmt = conn.prepare(
        "SELECT customer_id, service_month, currency, amount_minor FROM balances
         ORDER BY customer_id, service_month, currency",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Balance {
            customer_id: r.get(0)?,
            service_month: r.get(1)?,
            currency: r.get(2)?,
            amount: from_minor(r.get(3)?),
        })
    })?;
    rows.collect()
}

fn write_batch(tx: &Transaction, batch: &Batch, entries: &[Entry]) -> anyhow::Result<()> {
    let customers = batch
        .head
        .customers
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    tx.execute(
        "INSERT INTO batches VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            signed(batch.number),
            batch.head.posted_at,
            batch.head.run_dir,
            batch.head.ledger_sha256,
            batch.head.as_of,
            batch.head.first_month,
            batch.head.last_month,
            customers,
            batch.head.policy,
            batch.head.note,
            signed(batch.entry_count),
            batch.entries_sha256,
            batch.previous_sha256,
            batch.batch_sha256,
        ],
    )?;
    let mut insert =
        tx.prepare("INSERT INTO entries VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
    let mut upsert = tx.prepare(
        "INSERT INTO balances VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (customer_id, service_month, currency) DO UPDATE SET amount_minor = ?4",
    )?;
    for e in entries {
        let (amount, after) = (to_minor(e.amount)?, to_minor(e.balance_after)?);
        insert.execute(params![
            signed(e.batch),
            signed(e.seq),
            e.customer_id,
            e.service_month,
            e.currency,
            amount,
            after,
            e.reason,
            e.idempotency_key,
            e.entry_sha256,
        ])?;
        upsert.execute(params![e.customer_id, e.service_month, e.currency, after])?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn batches(&mut self) -> anyhow::Result<Vec<Batch>> {
        with_customers(read_batches(&self.conn).map_err(|e| self.failure(e))?)
    }

    fn entries(&mut self, since_batch: u64) -> anyhow::Result<Vec<Entry>> {
        read_entries(&self.conn, since_batch).map_err(|e| self.failure(e))
    }

    fn balances(&mut self) -> anyhow::Result<Vec<Balance>> {
        read_balances(&self.conn).map_err(|e| self.failure(e))
    }

    fn append(
        &mut self,
        decide: &mut dyn FnMut(&State) -> anyhow::Result<Option<NewBatch>>,
    ) -> anyhow::Result<Option<(Batch, Vec<Entry>)>> {
        let (path, wait) = (self.path.clone(), self.wait);
        let busy = |e: rusqlite::Error| failure_for(&path, wait, e);
        // IMMEDIATE takes the write lock before reading, so the state `decide` sees is the
        // state the batch is appended to.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(busy)?;
        let state = State {
            batches: with_customers(read_batches(&tx).map_err(busy)?)?,
            balances: read_balances(&tx)
                .map_err(busy)?
                .into_iter()
                .map(|b| ((b.customer_id, b.service_month, b.currency), b.amount))
                .collect(),
        };
        let Some(new) = decide(&state)? else {
            return Ok(None);
        };
        let (batch, entries) = chain::seal(&state, new)?;
        write_batch(&tx, &batch, &entries).with_context(|| {
            format!(
                "cannot write batch {} to `{}`",
                batch.number,
                crate::paths::shown(&path)
            )
        })?;
        tx.commit().map_err(busy)?;
        Ok(Some((batch, entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::store::NewEntry;
    use rust_decimal::Decimal;

    fn temp_journal(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sla-ledger-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::remove_file(&path).ok();
        path
    }

    fn batch(ledger: &str, minor: i64) -> NewBatch {
        NewBatch {
            head: BatchHead {
                posted_at: "2026-05-01T00:00:00Z".into(),
                run_dir: "out/a".into(),
                ledger_sha256: ledger.into(),
                as_of: "2026-04-30".into(),
                first_month: "2026-01".into(),
                last_month: "2026-01".into(),
                customers: Some(vec![2]),
                policy: "{}".into(),
                note: String::new(),
            },
            entries: vec![NewEntry {
                customer_id: 2,
                service_month: "2026-01".into(),
                currency: "CNY".into(),
                amount: Decimal::new(minor, 2),
                balance_after: Decimal::new(minor, 2),
                reason: "first".into(),
                idempotency_key: format!("key-{ledger}"),
            }],
        }
    }

    #[test]
    fn issue16_storage_an_appended_batch_reads_back_as_sealed() {
        let path = temp_journal("roundtrip.db");
        let mut store = SqliteStore::create_or_open(&path, BUSY_TIMEOUT).unwrap();
        let (sealed, entries) = store
            .append(&mut |_| Ok(Some(batch("l1", 10001))))
            .unwrap()
            .unwrap();
        assert_eq!(store.batches().unwrap(), [sealed]);
        assert_eq!(store.entries(1).unwrap(), entries);
        assert_eq!(store.balances().unwrap()[0].amount, Decimal::new(10001, 2));
        drop(store);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn issue16_storage_a_failed_post_leaves_the_journal_as_it_was() {
        let path = temp_journal("failed.db");
        let mut store = SqliteStore::create_or_open(&path, BUSY_TIMEOUT).unwrap();
        store.append(&mut |_| Ok(Some(batch("l1", 100)))).unwrap();
        // The same idempotency key again: refused by the database, nothing of the batch kept.
        let mut twice = batch("l2", 200);
        twice.entries[0].idempotency_key = "key-l1".into();
        assert!(store.append(&mut |_| Ok(Some(twice.clone()))).is_err());
        assert!(store.append(&mut |_| anyhow::bail!("refused")).is_err());
        assert_eq!(store.batches().unwrap().len(), 1);
        assert_eq!(store.entries(1).unwrap().len(), 1);
        assert_eq!(store.balances().unwrap()[0].amount, Decimal::new(100, 2));
        drop(store);
        std::fs::remove_file(&path).ok();
    }
}

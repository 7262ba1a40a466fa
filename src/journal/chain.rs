//! The hash chain: each entry's SHA-256, each batch's SHA-256 over its fields, its entries and
//! the previous batch's SHA-256; `verify` recomputes all of it and every balance.
//!
//! Takes batches, entries and balances as read back; gives the sealed batch of a `post`, or
//! the first batch or entry that does not match.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::sqlite::SqliteStore;
use super::store::{Cell, NewBatch, State, Store};
use super::{to_minor, Balance, Batch, Entry};
use crate::cli::JournalFileArgs;
use crate::ledger::money;

/// What the first batch links to.
pub(crate) const GENESIS_SHA256: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            write!(s, "{b:02x}").ok();
            s
        })
}

/// SHA-256 of an entry's fields as a JSON array (unambiguous whatever the text holds).
pub(crate) fn entry_sha256(e: &Entry) -> anyhow::Result<String> {
    let fields = serde_json::json!([
        e.batch,
        e.seq,
        e.customer_id,
        e.service_month,
        e.currency,
        to_minor(e.amount)?,
        to_minor(e.balance_after)?,
        e.reason,
        e.idempotency_key,
    ]);
    Ok(sha256_hex(&fields.to_string()))
}

/// SHA-256 of the entries' hashes, one a line, in booking order.
pub(crate) fn entries_sha256(entries: &[Entry]) -> String {
    let text: String = entries
        .iter()
        .map(|e| format!("{}\n", e.entry_sha256))
        .collect();
    sha256_hex(&text)
}

/// SHA-256 of a batch's fields, including its entries' hash and the previous batch's.
pub(crate) fn batch_sha256(b: &Batch) -> String {
    let fields = serde_json::json!([
        b.number,
        b.head.posted_at,
        b.head.run_dir,
        b.head.ledger_sha256,
        b.head.as_of,
        b.head.first_month,
        b.head.last_month,
        b.head.customers,
        b.head.policy,
        b.head.note,
        b.entry_count,
        b.entries_sha256,
        b.previous_sha256,
    ]);
    sha256_hex(&fields.to_string())
}

/// Numbers a new batch after the last one and links it into the chain.
pub(crate) fn seal(state: &State, new: NewBatch) -> anyhow::Result<(Batch, Vec<Entry>)> {
    let last = state.batches.last();
    let number = last.map_or(1, |b| b.number + 1);
    let mut entries = Vec::with_capacity(new.entries.len());
    for (i, e) in new.entries.into_iter().enumerate() {
        let mut entry = Entry {
            batch: number,
            seq: i as u64 + 1,
            customer_id: e.customer_id,
            service_month: e.service_month,
            currency: e.currency,
            amount: e.amount,
            balance_after: e.balance_after,
            reason: e.reason,
            idempotency_key: e.idempotency_key,
            entry_sha256: String::new(),
        };
        entry.entry_sha256 = entry_sha256(&entry)?;
        entries.push(entry);
    }
    let mut batch = Batch {
        number,
        head: new.head,
        entry_count: entries.len() as u64,
        entries_sha256: entries_sha256(&entries),
        previous_sha256: last.map_or(GENESIS_SHA256.to_string(), |b| b.batch_sha256.clone()),
        batch_sha256: String::new(),
    };
    batch.batch_sha256 = batch_sha256(&batch);
    Ok((batch, entries))
}

/// The first thing in a journal that does not match what was booked.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Finding {
    #[error("batch {found} follows batch {previous}; expected batch {expected}")]
    Numbering {
        previous: u64,
        expected: u64,
        found: u64,
    },
    #[error("batch {batch} links to previous SHA-256 `{found}`, but the batch before it has `{expected}`")]
    Link {
        batch: u64,
        found: String,
        expected: String,
    },
    #[error("batch {batch} entry {seq} (customer {customer_id}, {service_month}, {currency}) does not match its recorded SHA-256")]
    EntryHash {
        batch: u64,
        seq: u64,
        customer_id: i64,
        service_month: String,
        currency: String,
    },
    #[error("batch {batch} entry {seq} (customer {customer_id}, {service_month}, {currency}) records balance {found} after it; its entries add up to {expected}")]
    BalanceAfter {
        batch: u64,
        seq: u64,
        customer_id: i64,
        service_month: String,
        currency: String,
        found: String,
        expected: String,
    },
    #[error("batch {batch} records {recorded} entries; {found} are stored")]
    EntryCount {
        batch: u64,
        recorded: u64,
        found: u64,
    },
    #[error("batch {batch}: its entries do not match the SHA-256 it recorded (an entry was added, removed or reordered)")]
    EntriesHash { batch: u64 },
    #[error(
        "batch {batch} does not match its recorded SHA-256 (a field of the batch was changed)"
    )]
    BatchHash { batch: u64 },
    #[error("the balance of customer {customer_id}, {service_month}, {currency} is {found}; its entries add up to {expected}")]
    Balance {
        customer_id: i64,
        service_month: String,
        currency: String,
        found: String,
        expected: String,
    },
}

/// Recomputes the chain and every balance; gives the head batch's SHA-256 (or the genesis).
pub(crate) fn verify(
    batches: &[Batch],
    entries: &[Entry],
    balances: &[Balance],
) -> anyhow::Result<Result<String, Finding>> {
    let mut by_batch: BTreeMap<u64, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        by_batch.entry(e.batch).or_default().push(e);
    }
    let mut running: BTreeMap<Cell, Decimal> = BTreeMap::new();
    let mut previous: Option<&Batch> = None;
    for batch in batches {
        if let Err(finding) = check_batch(batch, previous, &by_batch, &mut running)? {
            return Ok(Err(finding));
        }
        previous = Some(batch);
    }
    if let Some(extra) = by_batch
        .keys()
        .find(|n| !batches.iter().any(|b| b.number == **n))
    {
        return Ok(Err(Finding::EntriesHash { batch: *extra }));
    }
    if let Err(finding) = check_balances(&running, balances) {
        return Ok(Err(finding));
    }
    Ok(Ok(previous.map_or(GENESIS_SHA256.to_string(), |b| {
        b.batch_sha256.clone()
    })))
}

fn check_batch(
    batch: &Batch,
    previous: Option<&Batch>,
    by_batch: &BTreeMap<u64, Vec<&Entry>>,
    running: &mut BTreeMap<Cell, Decimal>,
) -> anyhow::Result<Result<(), Finding>> {
    let expected = previous.map_or(1, |p| p.number + 1);
    if batch.number != expected {
        return Ok(Err(Finding::Numbering {
            previous: previous.map_or(0, |p| p.number),
            expected,
            found: batch.number,
        }));
    }
    let link = previous.map_or(GENESIS_SHA256, |p| p.batch_sha256.as_str());
    if batch.previous_sha256 != link {
        return Ok(Err(Finding::Link {
            batch: batch.number,
            found: batch.previous_sha256.clone(),
            expected: link.to_string(),
        }));
    }
    let entries: Vec<Entry> = by_batch
        .get(&batch.number)
        .map(|v| v.iter().map(|e| (*e).clone()).collect())
        .unwrap_or_default();
    for e in &entries {
        if entry_sha256(e)? != e.entry_sha256 {
            return Ok(Err(Finding::EntryHash {
                batch: e.batch,
                seq: e.seq,
                customer_id: e.customer_id,
                service_month: e.service_month.clone(),
                currency: e.currency.clone(),
            }));
        }
        let cell = (e.customer_id, e.service_month.clone(), e.currency.clone());
        let sum = running.entry(cell).or_default();
        *sum += e.amount;
        if *sum != e.balance_after {
            return Ok(Err(Finding::BalanceAfter {
                batch: e.batch,
                seq: e.seq,
                customer_id: e.customer_id,
                service_month: e.service_month.clone(),
                currency: e.currency.clone(),
                found: money(e.balance_after),
                expected: money(*sum),
            }));
        }
    }
    if entries.len() as u64 != batch.entry_count {
        return Ok(Err(Finding::EntryCount {
            batch: batch.number,
            recorded: batch.entry_count,
            found: entries.len() as u64,
        }));
    }
    if entries_sha256(&entries) != batch.entries_sha256 {
        return Ok(Err(Finding::EntriesHash {
            batch: batch.number,
        }));
    }
    if batch_sha256(batch) != batch.batch_sha256 {
        return Ok(Err(Finding::BatchHash {
            batch: batch.number,
        }));
    }
    Ok(Ok(()))
}

/// The stored balances must be exactly the sums of the entries (zero cells may be absent).
fn check_balances(running: &BTreeMap<Cell, Decimal>, balances: &[Balance]) -> Result<(), Finding> {
    let stored: BTreeMap<Cell, Decimal> = balances
        .iter()
        .map(|b| {
            let cell = (b.customer_id, b.service_month.clone(), b.currency.clone());
            (cell, b.amount)
        })
        .collect();
    let cells = running.keys().chain(stored.keys());
    for cell in cells {
        let expected = running.get(cell).copied().unwrap_or_default();
        let found = stored.get(cell).copied().unwrap_or_default();
        if expected != found {
            return Err(Finding::Balance {
                customer_id: cell.0,
                service_month: cell.1.clone(),
                currency: cell.2.clone(),
                found: money(found),
                expected: money(expected),
            });
        }
    }
    Ok(())
}

/// `sla-ledger journal verify --journal FILE`.
pub(crate) fn verify_command(args: &JournalFileArgs) -> anyhow::Result<()> {
    let mut store = SqliteStore::open_existing(&args.journal)?;
    let batches = store.batches()?;
    let entries = store.entries(1)?;
    let balances = store.balances()?;
    match verify(&batches, &entries, &balances)? {
        Ok(head) => crate::text::print(&format!(
            "sla-ledger journal verify: `{}` holds {} batch(es) and {} entries; the hash chain and every balance match\n  head: {head}\n",
            crate::paths::shown(&args.journal),
            batches.len(),
            entries.len()
        )),
        Err(finding) => Err(crate::error::hinted(
            format!(
                "journal `{}`: {finding}; it was changed after it was posted",
                crate::paths::shown(&args.journal),
            ),
            "restore the journal from a backup taken before the change, then post the runs booked since",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::store::NewEntry;
    use crate::journal::BatchHead;

    fn new_batch(entries: Vec<NewEntry>) -> NewBatch {
        NewBatch {
            head: BatchHead {
                posted_at: "2026-05-01T00:00:00Z".into(),
                run_dir: "out/a".into(),
                ledger_sha256: "l".into(),
                as_of: "2026-04-30".into(),
                first_month: "2026-01".into(),
                last_month: "2026-01".into(),
                customers: None,
                policy: "{}".into(),
                note: String::new(),
            },
            entries,
        }
    }

    fn entry(amount: i64, after: i64) -> NewEntry {
        NewEntry {
            customer_id: 2,
            service_month: "2026-01".into(),
            currency: "CNY".into(),
            amount: Decimal::new(amount, 2),
            balance_after: Decimal::new(after, 2),
            reason: "first".into(),
            idempotency_key: "k".into(),
        }
    }

    fn balance(amount: i64) -> Balance {
        Balance {
            customer_id: 2,
            service_month: "2026-01".into(),
            currency: "CNY".into(),
            amount: Decimal::new(amount, 2),
        }
    }

    #[test]
    fn issue16_verify_passes_a_sealed_chain_and_names_a_changed_amount() {
        let (b1, mut e1) = seal(&State::default(), new_batch(vec![entry(10001, 10001)])).unwrap();
        let state = State {
            batches: vec![b1.clone()],
            ..State::default()
        };
        let (b2, e2) = seal(&state, new_batch(vec![entry(20001, 30002)])).unwrap();
        assert_eq!(b2.previous_sha256, b1.batch_sha256);
        let batches = [b1, b2];
        let all: Vec<Entry> = e1.iter().chain(&e2).cloned().collect();
        assert!(verify(&batches, &all, &[balance(30002)]).unwrap().is_ok());

        e1[0].amount = Decimal::new(90001, 2);
        let all: Vec<Entry> = e1.iter().chain(&e2).cloned().collect();
        let finding = verify(&batches, &all, &[balance(30002)])
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            finding,
            Finding::EntryHash {
                batch: 1,
                seq: 1,
                ..
            }
        ));
    }

    #[test]
    fn issue16_verify_names_a_balance_that_its_entries_do_not_add_up_to() {
        let (b1, e1) = seal(&State::default(), new_batch(vec![entry(10001, 10001)])).unwrap();
        let finding = verify(&[b1], &e1, &[balance(10000)]).unwrap().unwrap_err();
        assert_eq!(
            finding.to_string(),
            "the balance of customer 2, 2026-01, CNY is 100.00; its entries add up to 100.01"
        );
    }
}

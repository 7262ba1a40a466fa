//! `sla-ledger post`: books a finished run's payouts as entries against the journal's balances.
//!
//! Takes a run output (checked against its manifest, as `diff` does) and the journal's state;
//! gives one entry per customer, service month and currency whose payout differs from what is
//! booked, only inside the run's own scope. A run already booked books nothing; a backdated
//! run or one under another policy is refused unless told.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::bail;
use rust_decimal::Decimal;

use super::sqlite::{Busy, SqliteStore};
use super::store::{NewBatch, NewEntry, State, Store};
use super::{Batch, BatchHead, Entry, MONEY_SCALE};
use crate::adjustments::changes::{idempotency_key, payout_by_currency, payout_changes};
use crate::adjustments::run_ledger::RunLedger;
use crate::cli::PostArgs;
use crate::ledger::money;
use crate::scope::{self, RunScope};

/// A customer and service month.
type Month = (i64, String);

/// Per customer-month, an amount by currency.
type ByCurrency = BTreeMap<Month, BTreeMap<String, Decimal>>;

/// The entries a run books, and what it did not book.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub entries: Vec<NewEntry>,
    /// Provisional rows pay 0.00 by SPEC until their month ends: never booked.
    pub provisional_rows: usize,
    /// Booked customer-months outside the run's scope, whose balances stay as they are.
    pub months_left_out: usize,
}

/// Per customer-month, the run's payout by currency (empty: an `error` row or no billing,
/// which pays 0.00), and the months whose row is provisional.
fn targets(run: &RunLedger, scope: &RunScope) -> anyhow::Result<(ByCurrency, BTreeSet<Month>)> {
    let mut targets = ByCurrency::new();
    let mut provisional = BTreeSet::new();
    for row in &run.rows {
        let month = (row.customer_id, row.service_month.clone());
        if !scope.covers(month.0, &month.1) {
            return Err(crate::error::hinted(
                format!(
                    "`{}`: customer {} {} lies outside the run's own scope ({})",
                    crate::paths::shown(&run.dir),
                    month.0,
                    month.1,
                    scope.describe()
                ),
                "pass the `--out` folder of an `sla-ledger run`, unchanged",
            ));
        }
        if targets.contains_key(&month) || provisional.contains(&month) {
            return Err(crate::error::hinted(
                format!(
                    "`{}`: customer {} {} appears twice in `ledger.csv`",
                    crate::paths::shown(&run.dir),
                    month.0,
                    month.1
                ),
                "pass the `--out` folder of an `sla-ledger run`, unchanged",
            ));
        }
        if row.cell("provisional") == "true" {
            provisional.insert(month);
            continue;
        }
        targets.insert(month, payout_by_currency(Some(row))?);
    }
    Ok((targets, provisional))
}

/// The ledger SHA-256 of the last batch whose run looked at `month`: the entry's basis, so its
/// idempotency key is `diff`'s key for that run and this one.
fn basis<'a>(scopes: &'a [(RunScope, &'a Batch)], month: &Month) -> Option<&'a str> {
    scopes
        .iter()
        .rev()
        .find(|(s, _)| s.covers(month.0, &month.1))
        .map(|(_, b)| b.head.ledger_sha256.as_str())
}

/// Entries that bring each customer-month of the run's scope to the run's payout; provisional
/// months and everything outside the scope keep their balances.
pub(crate) fn plan_entries(
    run: &RunLedger,
    scope: &RunScope,
    state: &State,
    policy_changed: bool,
) -> anyhow::Result<Plan> {
    let (targets, provisional) = targets(run, scope)?;
    let mut booked = ByCurrency::new();
    for ((customer, month, currency), amount) in &state.balances {
        booked
            .entry((*customer, month.clone()))
            .or_default()
            .insert(currency.clone(), *amount);
    }
    let scopes = batch_scopes(&state.batches)?;
    let months: BTreeSet<&Month> = targets
        .keys()
        .chain(booked.keys().filter(|m| scope.covers(m.0, &m.1)))
        .filter(|m| !provisional.contains(*m))
        .collect();
    let (empty, mut entries) = (BTreeMap::new(), Vec::new());
    for month in months {
        let before = booked.get(month).unwrap_or(&empty);
        let basis = basis(&scopes, month);
        let reason = reason(before, targets.get(month), policy_changed);
        let target = targets.get(month).cloned().unwrap_or_default();
        for (currency, balance, due) in payout_changes(before, &target) {
            let mut amount = due - balance;
            amount.rescale(MONEY_SCALE);
            if amount.is_zero() {
                continue;
            }
            let mut balance_after = balance + amount;
            balance_after.rescale(MONEY_SCALE);
            entries.push(NewEntry {
                customer_id: month.0,
                service_month: month.1.clone(),
                currency: currency.clone(),
                amount,
                balance_after,
                reason: reason.clone(),
                idempotency_key: idempotency_key(
                    month.0,
                    &month.1,
                    &currency,
                    basis.unwrap_or(""),
                    &run.sha256,
                ),
            });
        }
    }
    Ok(Plan {
        entries,
        provisional_rows: provisional.len(),
        months_left_out: booked.keys().filter(|m| !scope.covers(m.0, &m.1)).count(),
    })
}

fn batch_scopes(batches: &[Batch]) -> anyhow::Result<Vec<(RunScope, &Batch)>> {
    batches.iter().map(|b| Ok((b.scope()?, b))).collect()
}

/// `first` (nothing booked before), `not_in_run` (booked, but the run has no such row),
/// `currency` (booked in another currency: reversed, and the new one booked), or `correction`;
/// `policy+...` when the run's policy differs from the last batch's.
fn reason(
    before: &BTreeMap<String, Decimal>,
    target: Option<&BTreeMap<String, Decimal>>,
    policy_changed: bool,
) -> String {
    let booked_in = |c: &String| before.get(c).is_some_and(|a| !a.is_zero());
    let plain = match target {
        _ if before.is_empty() => "first",
        None => "not_in_run",
        Some(t) if t.keys().any(|c| !before.contains_key(c)) && before.keys().any(booked_in) => {
            "currency"
        }
        Some(_) => "correction",
    };
    if policy_changed {
        scope::with_policy_reason(plain)
    } else {
        plain.to_string()
    }
}

/// The last batch whose run covered a customer-month this run covers.
fn last_overlapping<'a>(
    batches: &'a [Batch],
    scope: &RunScope,
) -> anyhow::Result<Option<(&'a Batch, RunScope)>> {
    for batch in batches.iter().rev() {
        let s = batch.scope()?;
        if s.overlaps(scope) {
            return Ok(Some((batch, s)));
        }
    }
    Ok(None)
}

/// Refuses a run as of a day before the last overlapping batch's (it would undo later
/// corrections) unless `--allow-backdated`; gives whether the policy changed.
fn check_order(args: &PostArgs, scope: &RunScope, state: &State) -> anyhow::Result<bool> {
    let Some((last, last_scope)) = last_overlapping(&state.batches, scope)? else {
        return Ok(false);
    };
    if scope.as_of < last.head.as_of && !args.allow_backdated {
        return Err(crate::error::hinted(
            format!(
                "`{}` is as of {}, earlier than batch {} (as of {}), which booked overlapping months; posting it would undo later corrections",
                crate::paths::shown(&args.run),
                scope.as_of,
                last.number,
                last.head.as_of,
            ),
            format!(
                "post a run as of {} or later, or pass `--allow-backdated` if undoing them is intended",
                last.head.as_of,
            ),
        ));
    }
    scope::check_policy(
        (&last_scope, &format!("batch {}", last.number)),
        (scope, &format!("`{}`", crate::paths::shown(&args.run))),
        args.allow_policy_change,
    )
}

/// What `post` did, for its summary.
enum Outcome {
    AlreadyBooked(u64),
    /// The batch, and (provisional rows, booked customer-months outside the scope) not booked.
    Booked(Box<(Batch, Vec<Entry>)>, (usize, usize)),
}

/// `sla-ledger post --journal FILE --run OUT [--note TEXT]`.
pub fn post_command(args: &PostArgs) -> anyhow::Result<()> {
    let run = RunLedger::load(&args.run)?;
    let scope = RunScope::load(&args.run)?;
    let wait = std::time::Duration::from_secs(args.wait_secs);
    let deadline = std::time::Instant::now() + wait;
    // SQLite's own busy handler is not asked in every case (a journal being created or
    // switched to WAL by another `post`), so a busy journal is also tried again here, until
    // the wait is over. Each try is one transaction: a failed one booked nothing.
    let outcome = loop {
        match post_once(args, &run, &scope, wait) {
            Err(e)
                if e.downcast_ref::<Busy>().is_some() && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) if e.downcast_ref::<Busy>().is_some() => {
                return Err(crate::error::hinted(
                    e.to_string(),
                    "wait until the other `post` has finished, then post again (`--wait-secs` waits longer)",
                ))
            }
            other => break other?,
        }
    };
    crate::text::print(&summary(args, &run, &scope, &outcome))
}

/// One try of `post`: open the journal, verify it, append the batch in one transaction.
fn post_once(
    args: &PostArgs,
    run: &RunLedger,
    scope: &RunScope,
    wait: std::time::Duration,
) -> anyhow::Result<Outcome> {
    let mut store = SqliteStore::create_or_open(&args.journal, wait)?;
    // A batch appended to a changed journal would seal the change into the chain.
    let (batches, entries, balances) = (store.batches()?, store.entries(1)?, store.balances()?);
    if let Err(finding) = super::chain::verify(&batches, &entries, &balances)? {
        return Err(crate::error::hinted(
            format!("journal `{}`: {finding}; nothing was booked", crate::paths::shown(&args.journal)),
            format!(
                "`sla-ledger journal verify --journal {}` says the same; restore the journal from a backup",
                crate::paths::shown(&args.journal),
            ),
        ));
    }
    let (mut already, mut unbooked) = (None, (0, 0));
    let appended = store.append(&mut |state| {
        if let Some(b) = state
            .batches
            .iter()
            .find(|b| b.head.ledger_sha256 == run.sha256)
        {
            already = Some(b.number);
            return Ok(None);
        }
        let policy_changed = check_order(args, scope, state)?;
        let plan = plan_entries(run, scope, state, policy_changed)?;
        unbooked = (plan.provisional_rows, plan.months_left_out);
        Ok(Some(new_batch(args, run, scope, plan.entries)?))
    })?;
    Ok(match (appended, already) {
        (Some(booked), _) => Outcome::Booked(Box::new(booked), unbooked),
        (None, Some(number)) => Outcome::AlreadyBooked(number),
        (None, None) => bail!("the journal store appended nothing and named no batch"),
    })
}

fn new_batch(
    args: &PostArgs,
    run: &RunLedger,
    scope: &RunScope,
    entries: Vec<NewEntry>,
) -> anyhow::Result<NewBatch> {
    Ok(NewBatch {
        head: BatchHead {
            posted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            run_dir: args.run.display().to_string(),
            ledger_sha256: run.sha256.clone(),
            as_of: scope.as_of.clone(),
            first_month: scope.first_month.to_string(),
            last_month: scope.last_month.to_string(),
            customers: scope
                .customers
                .as_ref()
                .map(|c| c.iter().copied().collect()),
            policy: serde_json::to_string(&scope.policy)?,
            note: args.note.clone().unwrap_or_default(),
        },
        entries,
    })
}

fn summary(args: &PostArgs, run: &RunLedger, scope: &RunScope, outcome: &Outcome) -> String {
    let mut text = String::new();
    let (batch, entries, (provisional_rows, months_left_out)) = match outcome {
        Outcome::AlreadyBooked(number) => {
            return format!(
                "sla-ledger post: `{}` (ledger SHA-256 {}) is already booked in batch {number} of `{}`; nothing booked\n",
                crate::paths::shown(&args.run),
                &run.sha256[..12],
                crate::paths::shown(&args.journal)
            );
        }
        Outcome::Booked(booked, unbooked) => (&booked.0, &booked.1, *unbooked),
    };
    writeln!(
        text,
        "sla-ledger post: batch {} of `{}` books {} entr{} from `{}` (as of {}; {})",
        batch.number,
        crate::paths::shown(&args.journal),
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        crate::paths::shown(&args.run),
        scope.as_of,
        scope.describe()
    )
    .ok();
    for (currency, (count, net)) in super::history::totals(entries) {
        writeln!(
            text,
            "  {currency}: {count} entr{}, net {}",
            if count == 1 { "y" } else { "ies" },
            money(net)
        )
        .ok();
    }
    writeln!(
        text,
        "  provisional rows not booked: {provisional_rows} (a provisional month pays 0.00 until it ends)"
    )
    .ok();
    writeln!(
        text,
        "  left out (outside the run's scope): {months_left_out} booked customer-month(s), balances unchanged"
    )
    .ok();
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scope(customers: Option<Vec<i64>>) -> RunScope {
        RunScope {
            first_month: "2026-01".parse().unwrap(),
            last_month: "2026-01".parse().unwrap(),
            customers: customers.map(|c| c.into_iter().collect()),
            as_of: "2026-04-30".into(),
            policy: serde_json::json!({"name": "CCC"}),
        }
    }

    fn ledger(rows: &[(i64, &str, &str, &str)]) -> RunLedger {
        let header = crate::ledger::COLUMNS.join(",");
        let mut csv = format!("{header}\n");
        for (customer, currency, payout, provisional) in rows {
            let mut cells: Vec<String> = crate::ledger::COLUMNS
                .iter()
                .map(|_| String::new())
                .collect();
            let at = |name: &str| {
                crate::ledger::COLUMNS
                    .iter()
                    .position(|c| *c == name)
                    .unwrap()
            };
            cells[at("customer_id")] = customer.to_string();
            cells[at("service_month")] = "2026-01".into();
            cells[at("currency")] = currency.to_string();
            cells[at("payout")] = payout.to_string();
            cells[at("provisional")] = provisional.to_string();
            csv.push_str(&cells.join(","));
            csv.push('\n');
        }
        let dir = std::env::temp_dir().join(format!("sla-ledger-post-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.join(format!("ledger-{n}.csv"));
        std::fs::write(&path, csv).unwrap();
        let rows = crate::adjustments::run_ledger::read_ledger_csv(&path).unwrap();
        std::fs::remove_file(&path).ok();
        RunLedger {
            dir: PathBuf::from("run"),
            sha256: "run-sha".into(),
            rows,
        }
    }

    fn booked(cells: &[(i64, &str, i64)]) -> State {
        State {
            batches: Vec::new(),
            balances: cells
                .iter()
                .map(|(c, cur, minor)| {
                    (
                        (*c, "2026-01".to_string(), cur.to_string()),
                        Decimal::new(*minor, 2),
                    )
                })
                .collect(),
        }
    }

    fn shown(plan: &Plan) -> Vec<(i64, String, String, String)> {
        plan.entries
            .iter()
            .map(|e| {
                (
                    e.customer_id,
                    e.currency.clone(),
                    money(e.amount),
                    money(e.balance_after),
                )
            })
            .collect()
    }

    #[test]
    fn issue16_post_books_the_payout_minus_the_balance_and_nothing_when_equal() {
        let run = ledger(&[(1, "CNY", "300.02", "false"), (2, "CNY", "5.00", "false")]);
        let plan = plan_entries(
            &run,
            &scope(None),
            &booked(&[(1, "CNY", 10001), (2, "CNY", 500)]),
            false,
        )
        .unwrap();
        assert_eq!(
            shown(&plan),
            [(1, "CNY".into(), "200.01".into(), "300.02".into())]
        );
    }

    #[test]
    fn issue16_post_reverses_the_old_currency_and_books_the_new_one_never_nets() {
        let run = ledger(&[(1, "USD", "2.00", "false")]);
        let plan = plan_entries(&run, &scope(None), &booked(&[(1, "CNY", 1000)]), false).unwrap();
        assert_eq!(
            shown(&plan),
            [
                (1, "CNY".into(), "-10.00".into(), "0.00".into()),
                (1, "USD".into(), "2.00".into(), "2.00".into())
            ]
        );
        assert!(plan.entries.iter().all(|e| e.reason == "currency"));
    }

    #[test]
    fn issue16_post_never_books_a_provisional_row_and_keeps_other_customers() {
        let run = ledger(&[(1, "CNY", "0.00", "true")]);
        let state = booked(&[(1, "CNY", 700), (2, "CNY", 900)]);
        let plan = plan_entries(&run, &scope(Some(vec![1])), &state, false).unwrap();
        assert_eq!(plan.entries, []);
        assert_eq!(plan.provisional_rows, 1);
    }

    #[test]
    fn issue16_post_reverses_a_month_the_full_run_no_longer_has() {
        let run = ledger(&[(1, "CNY", "7.00", "false")]);
        let plan = plan_entries(
            &run,
            &scope(None),
            &booked(&[(1, "CNY", 700), (2, "CNY", 900)]),
            false,
        )
        .unwrap();
        assert_eq!(
            shown(&plan),
            [(2, "CNY".into(), "-9.00".into(), "0.00".into())]
        );
        assert_eq!(plan.entries[0].reason, "not_in_run");
    }
}

//! The payout journal (issue 16): what has been paid, booked once per run, provably unchanged.
//!
//! Takes finished run outputs (`post`) and gives batches of signed entries per customer,
//! service month and currency, their balances, a hash chain over every batch (`verify`) and
//! an export for the accounting system. The storage sits behind `store::Store`; `sqlite` is
//! the one implementation today.

pub(crate) mod balances;
pub(crate) mod chain;
pub(crate) mod export;
pub(crate) mod history;
pub mod post;
pub(crate) mod sqlite;
pub(crate) mod store;

use anyhow::Context;
use rust_decimal::Decimal;

use crate::cli::JournalCommand;

/// Money in the journal has two decimals, as in the ledger (SPEC §7).
pub(crate) const MONEY_SCALE: u32 = 2;

/// One booked entry: a signed amount for a customer, service month and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub batch: u64,
    /// 1-based position in its batch.
    pub seq: u64,
    pub customer_id: i64,
    pub service_month: String,
    pub currency: String,
    pub amount: Decimal,
    /// The cell's balance once this entry is booked.
    pub balance_after: Decimal,
    pub reason: String,
    pub idempotency_key: String,
    /// SHA-256 of the fields above (see `chain::entry_sha256`).
    pub entry_sha256: String,
}

/// What a batch says of the run it booked: the same for a batch to append and a sealed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchHead {
    /// UTC, RFC 3339.
    pub posted_at: String,
    pub run_dir: String,
    pub ledger_sha256: String,
    pub as_of: String,
    pub first_month: String,
    pub last_month: String,
    /// `None`: the run covered every customer.
    pub customers: Option<Vec<i64>>,
    /// The run's effective policy, as JSON text from its manifest.
    pub policy: String,
    pub note: String,
}

/// One `post`: the run it booked, what that run looked at, and its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub number: u64,
    pub head: BatchHead,
    pub entry_count: u64,
    pub entries_sha256: String,
    pub previous_sha256: String,
    pub batch_sha256: String,
}

impl Batch {
    /// What the batch's run looked at, for the scope, backdating and policy rules.
    pub(crate) fn scope(&self) -> anyhow::Result<crate::scope::RunScope> {
        let month = |text: &str| {
            text.parse::<crate::time::YearMonth>()
                .map_err(|e| anyhow::anyhow!("batch {}: month `{text}`: {e}", self.number))
        };
        Ok(crate::scope::RunScope {
            first_month: month(&self.head.first_month)?,
            last_month: month(&self.head.last_month)?,
            customers: self
                .head
                .customers
                .as_ref()
                .map(|c| c.iter().copied().collect()),
            as_of: self.head.as_of.clone(),
            policy: serde_json::from_str(&self.head.policy)
                .with_context(|| format!("batch {}: its policy is not JSON", self.number))?,
        })
    }

    /// `2026-01` or `2026-01..2026-03`.
    pub(crate) fn months(&self) -> String {
        if self.head.first_month == self.head.last_month {
            self.head.first_month.clone()
        } else {
            format!("{}..{}", self.head.first_month, self.head.last_month)
        }
    }
}

/// What has been booked for one customer, service month and currency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Balance {
    pub customer_id: i64,
    pub service_month: String,
    pub currency: String,
    pub amount: Decimal,
}

/// Integer minor units (cents) of a two-decimal amount: what the store keeps, never REAL.
pub(crate) fn to_minor(amount: Decimal) -> anyhow::Result<i64> {
    let mut scaled = amount;
    scaled.rescale(MONEY_SCALE);
    if scaled != amount {
        anyhow::bail!("amount `{amount}` has more than {MONEY_SCALE} decimals");
    }
    i64::try_from(scaled.mantissa())
        .with_context(|| format!("amount `{amount}` is out of range for the journal"))
}

pub(crate) fn from_minor(minor: i64) -> Decimal {
    Decimal::new(minor, MONEY_SCALE)
}

/// `sla-ledger journal balance|history|verify|export`.
pub fn journal_command(command: &JournalCommand) -> anyhow::Result<()> {
    match command {
        JournalCommand::Balance(args) => balances::balance_command(args),
        JournalCommand::History(args) => history::history_command(args),
        JournalCommand::Verify(args) => chain::verify_command(args),
        JournalCommand::Export(args) => export::export_command(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue16_storage_money_is_integer_minor_units_both_ways() {
        let amount = Decimal::new(-20001, 2);
        assert_eq!(to_minor(amount).unwrap(), -20001);
        assert_eq!(from_minor(-20001), amount);
        assert_eq!(to_minor(Decimal::new(5, 0)).unwrap(), 500);
        assert!(to_minor(Decimal::new(1005, 3)).is_err());
    }
}

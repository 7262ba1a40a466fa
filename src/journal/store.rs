//! The storage seam: what `post` and the `journal` commands need from a journal, so a server
//! database can stand in for SQLite later.
//!
//! Takes a decision function for `append`; gives batches, entries and balances as read back.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{Balance, Batch, BatchHead, Entry};

/// A cell of the journal: customer, service month, currency.
pub(crate) type Cell = (i64, String, String);

/// The journal as one `append` sees it, inside its transaction.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub batches: Vec<Batch>,
    pub balances: BTreeMap<Cell, Decimal>,
}

/// A batch to append; the store numbers it and links it into the chain (`chain::seal`).
#[derive(Debug, Clone)]
pub(crate) struct NewBatch {
    pub head: BatchHead,
    pub entries: Vec<NewEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewEntry {
    pub customer_id: i64,
    pub service_month: String,
    pub currency: String,
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub reason: String,
    pub idempotency_key: String,
}

pub(crate) trait Store {
    fn batches(&mut self) -> anyhow::Result<Vec<Batch>>;
    /// Entries of batch `since_batch` and later, in booking order.
    fn entries(&mut self, since_batch: u64) -> anyhow::Result<Vec<Entry>>;
    fn balances(&mut self) -> anyhow::Result<Vec<Balance>>;
    /// Reads the state, lets `decide` choose a batch, and appends it, all in one transaction:
    /// concurrent appends serialize, and a failed or killed one leaves the journal as it was.
    fn append(
        &mut self,
        decide: &mut dyn FnMut(&State) -> anyhow::Result<Option<NewBatch>>,
    ) -> anyhow::Result<Option<(Batch, Vec<Entry>)>>;
}

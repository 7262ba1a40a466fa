//! What `explain` shows, section by section, as plain serialisable values: the JSON output,
//! and what `text.rs` renders. Built by `sections.rs` from the stage results.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::inputs::exemptions::Notice;
use crate::policy::Clause;
use crate::quarantine::Entry;
use crate::stages::exemptions::ExemptionMatch;
use crate::time::format_instant;

#[derive(Debug, Serialize)]
pub(crate) struct Explanation {
    pub customer_id: i64,
    pub service_month: String,
    pub as_of: String,
    pub period_start: String,
    pub period_end: String,
    pub provisional: bool,
    /// Inclusive local date ranges the subscriptions cover in the month (SLA 1.2).
    pub covered: Vec<[String; 2]>,
    pub calls: CallsSection,
    pub system_errors: Vec<ErrorLine>,
    pub exempt_by_clause: BTreeMap<String, u64>,
    /// Each clause named above with its titles: `5.9 监管部门和运营商管控 / regulator or
    /// carrier controls` (the number alone where the policy gives none).
    pub clause_names: BTreeMap<String, String>,
    pub availability: AvailabilitySection,
    pub fee: FeeSection,
    pub compensation: Option<CompensationSection>,
    pub claims: ClaimsSection,
    pub payout: String,
    pub status: String,
    /// The line `run` writes in `ledger.csv` for this month, and its columns by name.
    pub ledger_csv: String,
    pub ledger_row: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CallsSection {
    /// Rows of the customer that passed the row checks.
    pub valid_rows: u64,
    /// Rows of the customer set aside as defects (SPEC §2).
    pub quarantined: Vec<QuarantineLine>,
    /// Valid rows dropped as another copy of a request id.
    pub duplicate_rows: u64,
    pub conflicting_duplicates: Vec<QuarantineLine>,
    pub unique_calls: u64,
    /// Unique calls on local dates of the month its subscriptions do not cover.
    pub outside_coverage_in_month: u64,
    /// Unique calls in other months.
    pub other_months: u64,
    pub counted: u64,
    /// Counted calls by status.
    pub counted_by_status: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct QuarantineLine {
    pub source: String,
    pub row: Option<u64>,
    pub reason: String,
    pub detail: String,
}

impl From<&Entry> for QuarantineLine {
    fn from(e: &Entry) -> Self {
        QuarantineLine {
            source: e.source.clone(),
            row: e.row,
            reason: e.reason.as_str().to_string(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ErrorLine {
    pub request_id: String,
    pub ts: String,
    pub error_code: Option<String>,
    pub calls_in_second: u32,
    /// The smallest matching clause, or `None`: the call is unavailable.
    pub exempt_under: Option<String>,
    #[serde(skip)]
    pub clause: Option<Clause>,
    pub matched: Vec<ExemptionMatch>,
    /// A burst second that a counted notice covered, so 5.7 did not apply.
    pub burst_suspended_by_notice: Option<NoticeLine>,
    /// Windows covering the call that exempt nothing for lack of advance notice.
    pub unannounced_windows: Vec<String>,
    /// Notices covering the call that were given too late to count.
    pub late_notices: Vec<NoticeLine>,
}

#[derive(Debug, Serialize)]
pub(crate) struct NoticeLine {
    pub start: String,
    pub end: String,
}

impl From<&Notice> for NoticeLine {
    fn from(n: &Notice) -> Self {
        NoticeLine {
            start: format_instant(n.start),
            end: format_instant(n.end),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct AvailabilitySection {
    pub total_calls: u64,
    pub system_errors: u64,
    pub exempt_errors: u64,
    pub unavailable_calls: u64,
    pub availability_pct: String,
    /// Each tier bound from the top, compared exactly, down to the first one reached.
    pub comparisons: Vec<String>,
    pub tier_rate: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct BillingLine {
    pub kind: String,
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct FeeSection {
    pub billing_rows: Vec<BillingLine>,
    /// Billing rows of this month that were quarantined.
    pub quarantined: Vec<QuarantineLine>,
    pub currency: Option<String>,
    pub monthly_fee: Option<String>,
    /// Why the month cannot be priced (an `error` row).
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CompensationSection {
    pub monthly_fee: String,
    pub tier_rate: String,
    /// `monthly_fee × tier_rate`, unrounded.
    pub exact: String,
    pub rounding: &'static str,
    pub rounded: String,
    /// The fee caps the compensation.
    pub capped_at_fee: bool,
    pub compensation: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ClaimsSection {
    pub claim_opens: Option<String>,
    pub claim_deadline: Option<String>,
    pub claim_status: Option<String>,
    pub claim_id: Option<String>,
    pub claims: Vec<ClaimLine>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ClaimLine {
    pub claim_id: String,
    pub submitted_at: String,
    pub submitted_local_date: String,
    pub channel: String,
    pub valid: bool,
    pub why: String,
}

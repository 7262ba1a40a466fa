//! The scope rule of `diff` and `post` (issue 16): never claw back what a run did not look at.
//!
//! Takes run outputs' `manifest.json` (`job.months`, `job.customers`, `job.as_of`,
//! `job.policy`); gives what each run covered, what two runs both covered, and the refusal of
//! runs under different policies. It computes no money: `diff` and `post` do, inside a scope.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::time::YearMonth;

/// What a run looked at, from its `manifest.json` (`job.months`, `job.customers`, `job.as_of`,
/// `job.policy`): the scope rules of `diff` and `post` compare only what both sides covered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunScope {
    pub(crate) first_month: YearMonth,
    pub(crate) last_month: YearMonth,
    /// `None`: every customer (the run had no `--customers`).
    pub(crate) customers: Option<BTreeSet<i64>>,
    pub(crate) as_of: String,
    /// The effective policy as the manifest recorded it.
    pub(crate) policy: serde_json::Value,
}

impl RunScope {
    /// Reads the scope of the run output `dir`.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<RunScope> {
        let path = dir.join("manifest.json");
        let manifest = crate::manifest::read_run_manifest(dir)?;
        scope_of(&manifest["job"]).map_err(|problem| {
            crate::error::hinted(
                format!("`{}`: {problem}", crate::paths::shown(&path)),
                "pass the `--out` folder of an `sla-ledger run` of this version",
            )
        })
    }

    pub(crate) fn covers(&self, customer_id: i64, service_month: &str) -> bool {
        let in_months = service_month
            .parse::<YearMonth>()
            .is_ok_and(|m| self.first_month <= m && m <= self.last_month);
        let in_customers = self
            .customers
            .as_ref()
            .is_none_or(|c| c.contains(&customer_id));
        in_months && in_customers
    }

    /// Whether some customer-month is covered by both scopes.
    pub(crate) fn overlaps(&self, other: &RunScope) -> bool {
        let months = self.first_month <= other.last_month && other.first_month <= self.last_month;
        let customers = match (&self.customers, &other.customers) {
            (Some(a), Some(b)) => !a.is_disjoint(b),
            _ => true,
        };
        months && customers
    }

    /// The customer-months both scopes cover, or `None` when they share none.
    pub(crate) fn common(&self, other: &RunScope) -> Option<RunScope> {
        if !self.overlaps(other) {
            return None;
        }
        let customers = match (&self.customers, &other.customers) {
            (Some(a), Some(b)) => Some(a.intersection(b).copied().collect()),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        };
        Some(RunScope {
            first_month: self.first_month.max(other.first_month),
            last_month: self.last_month.min(other.last_month),
            customers,
            as_of: other.as_of.clone(),
            policy: other.policy.clone(),
        })
    }

    /// `months 2026-01..2026-03, customers 1, 2` or `..., every customer`.
    pub(crate) fn describe(&self) -> String {
        let customers = match &self.customers {
            None => "every customer".to_string(),
            Some(c) => {
                let ids: Vec<String> = c.iter().map(i64::to_string).collect();
                format!("customers {}", ids.join(", "))
            }
        };
        format!(
            "months {}..{}, {customers}",
            self.first_month, self.last_month
        )
    }

    /// A short name of the policy: its `name` and the SHA-256 of its recorded JSON.
    pub(crate) fn policy_sha256(&self) -> String {
        let text = self.policy.to_string();
        hex(&Sha256::digest(text.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            write!(s, "{b:02x}").ok();
            s
        })
}

fn scope_of(job: &serde_json::Value) -> Result<RunScope, String> {
    let month = |field: &str| -> Result<YearMonth, String> {
        let text = job["months"][field].as_str().unwrap_or("");
        text.parse::<YearMonth>()
            .map_err(|e| format!("`job.months.{field}` is `{text}`: {e}"))
    };
    let customers = match &job["customers"] {
        serde_json::Value::Null => None,
        serde_json::Value::Array(ids) => Some(
            ids.iter()
                .map(|v| v.as_i64().ok_or("`job.customers` holds a non-integer"))
                .collect::<Result<BTreeSet<i64>, _>>()?,
        ),
        _ => return Err("`job.customers` is neither a list nor null".into()),
    };
    let as_of = job["as_of"].as_str().unwrap_or("");
    if chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d").is_err() {
        return Err(format!(
            "`job.as_of` is `{as_of}`; expected a date YYYY-MM-DD"
        ));
    }
    if !job["policy"].is_object() {
        return Err("`job.policy` is missing".into());
    }
    Ok(RunScope {
        first_month: month("first")?,
        last_month: month("last")?,
        customers,
        as_of: as_of.to_string(),
        policy: job["policy"].clone(),
    })
}

/// Refuses runs under different policies unless `allow_policy_change`; then labels every
/// entry `policy`, so a tier that moved is not read as a changed incident.
pub(crate) fn check_policy(
    prior: (&RunScope, &str),
    current: (&RunScope, &str),
    allow_policy_change: bool,
) -> anyhow::Result<bool> {
    let ((prior, prior_name), (current, current_name)) = (prior, current);
    if prior.policy == current.policy {
        return Ok(false);
    }
    if !allow_policy_change {
        return Err(crate::error::hinted(
            format!(
                "{prior_name} was run under policy `{}` (SHA-256 {}), {current_name} under policy `{}` (SHA-256 {}); the difference would mix a policy change into corrections",
                crate::text::shown(prior.policy["name"].as_str().unwrap_or("?")),
                &prior.policy_sha256()[..12],
                crate::text::shown(current.policy["name"].as_str().unwrap_or("?")),
                &current.policy_sha256()[..12],
            ),
            "rerun under the same `--policy`, or pass `--allow-policy-change` to label the entries `policy`",
        ));
    }
    Ok(true)
}

/// Labels an entry's reason as caused by a policy change.
pub(crate) fn with_policy_reason(reason: &str) -> String {
    if reason.is_empty() {
        "policy".into()
    } else {
        format!("policy+{reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(first: &str, last: &str, customers: Option<&[i64]>) -> RunScope {
        RunScope {
            first_month: first.parse().unwrap(),
            last_month: last.parse().unwrap(),
            customers: customers.map(|c| c.iter().copied().collect()),
            as_of: "2026-04-30".into(),
            policy: serde_json::json!({"name": "CCC"}),
        }
    }

    #[test]
    fn issue16_scope_compares_only_the_customer_months_both_runs_cover() {
        let full = scope("2026-01", "2026-03", None);
        let rerun = scope("2026-02", "2026-04", Some(&[2, 9]));
        let common = full.common(&rerun).unwrap();
        assert_eq!(common.describe(), "months 2026-02..2026-03, customers 2, 9");
        assert!(common.covers(2, "2026-03"));
        assert!(!common.covers(2, "2026-01") && !common.covers(3, "2026-02"));
        assert!(!common.covers(2, "garbage"));
        let other = scope("2026-01", "2026-03", Some(&[5]));
        assert_eq!(rerun.common(&other), None);
    }
}

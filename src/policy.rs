//! The SLA's numbers: availability tiers, exemption clauses, notice rules, burst threshold and
//! claim windows, and the clauses' short titles. The default is the CCC SLA; `--policy FILE`
//! reads the same shape from TOML.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::lang::Lang;

/// An exemption clause of SLA section 5, `5.N` with N from 1 to 18. Ordered by N, so
/// `5.2 < 5.10` (SPEC §4: an exempt error is attributed to the smallest matching clause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Clause(u8);

impl Clause {
    pub const FIRST: u8 = 1;
    pub const LAST: u8 = 18;

    pub fn new(number: u8) -> Option<Self> {
        (Self::FIRST..=Self::LAST)
            .contains(&number)
            .then_some(Self(number))
    }

    pub fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "5.{}", self.0)
    }
}

impl FromStr for Clause {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = || {
            format!(
                "{} is not an SLA clause; expected `5.N` with N from 1 to 18",
                crate::text::quoted(text)
            )
        };
        let digits = text.strip_prefix("5.").ok_or_else(expected)?;
        let canonical = !digits.is_empty()
            && digits.len() <= 2
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !canonical {
            return Err(expected());
        }
        digits
            .parse::<u8>()
            .ok()
            .and_then(Clause::new)
            .ok_or_else(expected)
    }
}

impl Serialize for Clause {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One compensation tier: availability at or above `at_least_pct` (and below the tier above)
/// earns `rate` of the monthly fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tier {
    pub at_least_pct: Decimal,
    pub rate: Decimal,
}

/// The SLA numbers every stage reads. Built only through [`Policy::ccc`] or
/// [`Policy::from_toml`], both of which validate it.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub name: String,
    #[serde(serialize_with = "serialize_tz")]
    pub timezone: Tz,
    /// Ordered from the highest bound down; the last bound is 0.
    pub tiers: Vec<Tier>,
    pub notice_required: Vec<Clause>,
    /// Calls per second of one customer at which a burst begins (SLA 5.7).
    pub burst_qps: Decimal,
    pub burst_clause: Clause,
    /// A claim opens the day after this many working days of the following month (SLA 3.2).
    pub claim_opens_after_working_days: u32,
    /// A claim closes this many days after the service month's last covered date (SLA 3.2).
    pub claim_deadline_days: u32,
    /// Short titles of the exemption clauses (SLA 5), per language; any may be missing.
    /// Words only, so not part of the policy the manifest records: `diff` and `post` compare
    /// recorded policies, and a retitled clause changes no payout.
    #[serde(skip)]
    pub clause_titles: BTreeMap<Clause, BTreeMap<Lang, String>>,
}

fn serialize_tz<S: serde::Serializer>(tz: &Tz, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(tz.name())
}

/// The TOML form of a policy; every field must be present.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    timezone: String,
    notice_required: Vec<String>,
    burst_qps: String,
    burst_clause: String,
    claim_opens_after_working_days: u32,
    claim_deadline_days: u32,
    tiers: Vec<TierFile>,
    /// `"5.N" = { en = "...", zh-CN = "..." }`; optional, as is each clause and language.
    #[serde(default)]
    clause_titles: BTreeMap<String, BTreeMap<Lang, String>>,
}

/// Characters a clause title may have: a short title fits beside a chart's bar.
pub const CLAUSE_TITLE_MAX_CHARS: usize = 80;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    at_least_pct: String,
    rate: String,
}

/// The CCC SLA as TOML: the built-in default, and the template for `--policy` files.
pub const CCC_POLICY_TOML: &str = include_str!("../jobs/policy-ccc.toml");

impl Policy {
    /// The Cloud Call Center SLA (99.50 / 99.00 / 95.00; 10 / 30 / 50 %).
    pub fn ccc() -> Policy {
        Policy::from_toml(CCC_POLICY_TOML).expect("the built-in CCC policy is valid")
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read policy file `{}`", crate::paths::shown(path)))?;
        Policy::from_toml(&text).map_err(|message| {
            UsageError::new(format!(
                "policy file `{}`: {message}",
                crate::paths::shown(path)
            ))
            .into()
        })
    }

    pub fn from_toml(text: &str) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let timezone: Tz = file.timezone.parse().map_err(|_| {
            format!(
                "unknown time zone `{}`; expected an IANA name",
                file.timezone
            )
        })?;
        let clause = |text: &String| text.parse::<Clause>();
        let decimal = |field: &str, text: &str| {
            Decimal::from_str_exact(text).map_err(|_| {
                format!(
                    "`{field}` = {} is not a decimal number",
                    crate::text::quoted(text)
                )
            })
        };
        let tiers = file
            .tiers
            .iter()
            .map(|t| {
                Ok(Tier {
                    at_least_pct: decimal("at_least_pct", &t.at_least_pct)?,
                    rate: decimal("rate", &t.rate)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let policy = Policy {
            name: file.name,
            timezone,
            tiers,
            notice_required: file
                .notice_required
                .iter()
                .map(clause)
                .collect::<Result<_, _>>()?,
            burst_qps: decimal("burst_qps", &file.burst_qps)?,
            burst_clause: clause(&file.burst_clause)?,
            claim_opens_after_working_days: file.claim_opens_after_working_days,
            claim_deadline_days: file.claim_deadline_days,
            clause_titles: clause_titles(file.clause_titles)?,
        };
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), String> {
        if self.tiers.is_empty() {
            return Err("a policy needs at least one tier".into());
        }
        let hundred = Decimal::ONE_HUNDRED;
        for pair in self.tiers.windows(2) {
            if pair[0].at_least_pct <= pair[1].at_least_pct {
                return Err("tiers must be listed from the highest `at_least_pct` down".into());
            }
        }
        for tier in &self.tiers {
            if tier.at_least_pct < Decimal::ZERO || tier.at_least_pct > hundred {
                return Err(format!(
                    "tier bound {} is outside 0..100",
                    tier.at_least_pct
                ));
            }
            if tier.rate < Decimal::ZERO || tier.rate > Decimal::ONE {
                return Err(format!("tier rate {} is outside 0..1", tier.rate));
            }
            if tier.rate.scale() > 2 || tier.at_least_pct.scale() > 4 {
                return Err("tier rates take at most 2 decimals, bounds at most 4".into());
            }
        }
        if !self.tiers.last().is_some_and(|t| t.at_least_pct.is_zero()) {
            return Err("the last tier must start at `0` so every availability has a rate".into());
        }
        if self.burst_qps <= Decimal::ZERO {
            return Err("`burst_qps` must be positive".into());
        }
        if self.claim_opens_after_working_days == 0 {
            return Err("`claim_opens_after_working_days` must be at least 1".into());
        }
        Ok(())
    }

    /// The short title of `clause` in `lang`, when the policy gives one (the built-in CCC
    /// policy titles every clause in every language).
    pub fn clause_title(&self, clause: Clause, lang: Lang) -> Option<&str> {
        self.clause_titles
            .get(&clause)
            .and_then(|titles| titles.get(&lang))
            .map(String::as_str)
    }

    /// `5.9 regulator or carrier controls`: the clause with its title in `lang`, or the
    /// number alone (`5.9`) when the policy gives it no title in that language.
    pub fn clause_label(&self, clause: Clause, lang: Lang) -> String {
        match self.clause_title(clause, lang) {
            Some(title) => format!("{clause} {title}"),
            None => clause.to_string(),
        }
    }

    /// The fewest counted calls in one second that make a burst: `ceil(burst_qps)` (SLA 5.7).
    pub fn burst_min_calls(&self) -> u32 {
        u32::try_from(self.burst_qps.ceil().mantissa()).unwrap_or(u32::MAX)
    }

    pub fn requires_notice(&self, clause: Clause) -> bool {
        self.notice_required.contains(&clause)
    }

    /// The highest tier whose bound the availability reaches, compared exactly:
    /// `available / total * 100 >= bound`, in integers (SPEC §4).
    pub fn tier_for(&self, available: u64, total: u64) -> &Tier {
        self.tiers
            .iter()
            .find(|tier| reaches_pct(available, total, tier.at_least_pct))
            .expect("the last tier starts at 0")
    }
}

/// The `clause_titles` table, checked: each key a clause (`5.N`), each title one line of at
/// most [`CLAUSE_TITLE_MAX_CHARS`] characters with something to read.
fn clause_titles(
    file: BTreeMap<String, BTreeMap<Lang, String>>,
) -> Result<BTreeMap<Clause, BTreeMap<Lang, String>>, String> {
    let mut titles = BTreeMap::new();
    for (key, by_lang) in file {
        let clause = key
            .parse::<Clause>()
            .map_err(|e| format!("`clause_titles`: {e}"))?;
        for (lang, title) in &by_lang {
            let problem = if title.trim().is_empty() {
                Some("is empty; give a title or leave the key out".to_string())
            } else if title.chars().any(char::is_control) {
                Some("holds a control character; a title is one line of text".to_string())
            } else if title.chars().count() > CLAUSE_TITLE_MAX_CHARS {
                Some(format!(
                    "has {} characters; a title has at most {CLAUSE_TITLE_MAX_CHARS}",
                    title.chars().count()
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!(
                    "`clause_titles` {clause} `{lang}` = {} {problem}",
                    crate::text::quoted(title)
                ));
            }
        }
        // Keys are canonical clause texts, so two keys never name one clause.
        titles.insert(clause, by_lang);
    }
    Ok(titles)
}

/// `available / total * 100 >= bound` without rounding; `total = 0` counts as 100 %.
pub fn reaches_pct(available: u64, total: u64, bound: Decimal) -> bool {
    if total == 0 {
        return Decimal::ONE_HUNDRED >= bound;
    }
    // bound = mantissa / 10^scale, so the test is available * 100 * 10^scale >= mantissa * total.
    let scale_factor = 10i128.pow(bound.scale());
    let lhs = i128::from(available) * 100 * scale_factor;
    let rhs = bound.mantissa() * i128::from(total);
    lhs >= rhs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn sla_5_clause_numbers_parse_strictly_and_order_numerically() {
        assert_eq!("5.7".parse::<Clause>().unwrap().number(), 7);
        assert!("5.2".parse::<Clause>().unwrap() < "5.10".parse::<Clause>().unwrap());
        for bad in ["6.1", "5.0", "5.19", "5.07", "5.", "5.1.1", " 5.1", "5.x"] {
            assert!(bad.parse::<Clause>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn sla_3_1_ccc_tiers_are_the_contract_numbers() {
        let policy = Policy::ccc();
        let bounds: Vec<_> = policy
            .tiers
            .iter()
            .map(|t| (t.at_least_pct, t.rate))
            .collect();
        assert_eq!(
            bounds,
            [
                (dec("99.50"), dec("0.00")),
                (dec("99.00"), dec("0.10")),
                (dec("95.00"), dec("0.30")),
                (dec("0"), dec("0.50")),
            ]
        );
        assert_eq!(policy.burst_min_calls(), 5);
        assert_eq!(policy.timezone.name(), "Asia/Shanghai");
    }

    #[test]
    fn sla_3_1_tier_bounds_are_compared_exactly() {
        let policy = Policy::ccc();
        // 199 of 200 = 99.5 % exactly: no compensation.
        assert_eq!(policy.tier_for(199, 200).rate, dec("0.00"));
        // 1990 of 2001 = 99.4502... %: just below the standard.
        assert_eq!(policy.tier_for(1990, 2001).rate, dec("0.10"));
        assert_eq!(policy.tier_for(99, 100).rate, dec("0.10"));
        assert_eq!(policy.tier_for(19, 20).rate, dec("0.30"));
        assert_eq!(policy.tier_for(18, 20).rate, dec("0.50"));
        assert_eq!(policy.tier_for(0, 0).rate, dec("0.00"));
    }

    #[test]
    fn sla_5_7_burst_threshold_is_the_ceiling_of_qps() {
        let text = CCC_POLICY_TOML.replace("burst_qps = \"5\"", "burst_qps = \"4.2\"");
        assert_eq!(Policy::from_toml(&text).unwrap().burst_min_calls(), 5);
    }

    /// The CCC policy text without its `[clause_titles]` table: a policy written before titles.
    fn ccc_without_titles() -> String {
        let (numbers, _titles) = CCC_POLICY_TOML
            .split_once("\n[clause_titles]")
            .expect("the CCC policy has a titles table");
        numbers.to_string()
    }

    #[test]
    fn sla_5_the_ccc_policy_titles_every_clause_in_every_language() {
        let policy = Policy::ccc();
        for number in Clause::FIRST..=Clause::LAST {
            let clause = Clause::new(number).unwrap();
            for lang in Lang::ALL {
                let title = policy.clause_title(clause, lang);
                assert!(title.is_some_and(|t| !t.is_empty()), "{clause} {lang}");
            }
        }
        let clause = "5.9".parse::<Clause>().unwrap();
        assert_eq!(
            policy.clause_label(clause, Lang::ZhCn),
            "5.9 监管部门和运营商管控"
        );
        assert_eq!(
            policy.clause_label(clause, Lang::En),
            "5.9 regulator or carrier controls"
        );
    }

    #[test]
    fn sla_5_a_policy_without_titles_still_runs_and_shows_numbers_alone() {
        let policy = Policy::from_toml(&ccc_without_titles()).unwrap();
        let clause = "5.12".parse::<Clause>().unwrap();
        assert_eq!(policy.clause_title(clause, Lang::En), None);
        assert_eq!(policy.clause_label(clause, Lang::ZhCn), "5.12");
        // The numbers are the built-in policy's, titles aside.
        let ccc = Policy::ccc();
        assert_eq!(policy.tiers, ccc.tiers);
        assert_eq!(
            serde_json::to_value(&policy).unwrap(),
            serde_json::to_value(&ccc).unwrap(),
            "titles are not part of the recorded policy"
        );
    }

    #[test]
    fn sla_5_a_custom_policy_sets_its_own_titles_in_any_language() {
        let text = format!(
            "{}\n[clause_titles]\n\"5.10\" = {{ en = \"bad numbers\" }}\n",
            ccc_without_titles()
        );
        let policy = Policy::from_toml(&text).unwrap();
        let clause = "5.10".parse::<Clause>().unwrap();
        assert_eq!(policy.clause_label(clause, Lang::En), "5.10 bad numbers");
        assert_eq!(policy.clause_label(clause, Lang::ZhCn), "5.10");
        assert_eq!(
            policy.clause_label(Clause::new(9).unwrap(), Lang::En),
            "5.9"
        );
    }

    #[test]
    fn sla_5_clause_titles_name_real_clauses_and_languages_and_stay_one_short_line() {
        let with = |entry: &str| {
            Policy::from_toml(&format!(
                "{}\n[clause_titles]\n{entry}\n",
                ccc_without_titles()
            ))
        };
        for (entry, needle) in [
            ("\"6.1\" = { en = \"x\" }", "6.1"),
            ("\"5.19\" = { en = \"x\" }", "5.19"),
            ("\"5.1\" = { fr = \"x\" }", "`zh-CN`"),
            ("\"5.1\" = { en = \"  \" }", "is empty"),
            ("\"5.1\" = { en = \"a\\nb\" }", "control character"),
            (
                &format!("\"5.1\" = {{ en = \"{}\" }}", "x".repeat(81)),
                "at most 80",
            ),
        ] {
            let err = with(entry).unwrap_err();
            assert!(err.contains(needle), "{entry}: {err}");
        }
    }

    #[test]
    fn policy_files_reject_unknown_keys_and_unordered_tiers() {
        let unknown = format!("surprise = 1\n{CCC_POLICY_TOML}");
        assert!(Policy::from_toml(&unknown)
            .unwrap_err()
            .contains("surprise"));
        let unordered = CCC_POLICY_TOML.replace("\"99.00\"", "\"99.90\"");
        assert!(Policy::from_toml(&unordered).is_err());
    }
}

//! Every word of `report.html`, in each language `--report-lang` takes: one table, [`EN`] and
//! [`ZH_CN`], so a label cannot be added in one language and forgotten in another (a missing
//! field does not compile) and the page's code holds no prose.
//!
//! Entries are HTML fragments written by this program (some hold `<code>` or `<strong>`).
//! `{name}` marks where [`fill`] puts a value; a test checks both languages use the same
//! names. Numbers, ids (`valid`, `5.9`, `CNY`) and file names stay as they are in the
//! ledger, whatever the language.

use crate::lang::Lang;
use crate::ledger::ClaimStatus;

/// Declares [`Strings`] and the list of its entries by name, for the tests.
macro_rules! strings {
    ($($(#[$doc:meta])* $field:ident,)*) => {
        /// The words of one language.
        pub struct Strings {
            $($(#[$doc])* pub $field: &'static str,)*
        }

        impl Strings {
            /// Every entry, by field name.
            #[cfg(test)]
            fn entries(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($field), self.$field)),*]
            }
        }
    };
}

strings! {
    /// `<title>` and the page heading: `{first}`, `{last}`, `{as_of}`.
    title,
    /// The line under the heading: `{policy}`, `{months}`, `{as_of}`, `{program}`.
    header,
    overview_heading,
    card_service_months,
    card_provisional,
    card_below_standard,
    card_error_rows,
    card_calls_counted,
    card_quarantine_entries,
    totals_heading,
    totals_note,
    totals_empty,
    col_currency,
    col_months,
    col_fees_paid,
    col_compensation,
    col_payout,
    histogram_heading,
    /// `{floor}`: the lowest bin's upper bound, in percent.
    histogram_note,
    /// `{n}`: service months.
    histogram_aria,
    /// `{from}`, `{to}`, `{n}`.
    histogram_bar_title,
    histogram_axis,
    /// `{bound}`: the best tier's range.
    tier_range_top,
    /// `{low}`, `{high}`: a lower tier's range.
    tier_range_between,
    /// `{range}`, `{rate}`.
    tier_legend_entry,
    tiers_heading,
    tiers_note,
    /// `{rate}`.
    tier_bar_label,
    tiers_chart_aria,
    col_tier,
    col_availability,
    exemptions_heading,
    /// `{total}`: the exempt calls, already marked up.
    exemptions_note,
    exemptions_empty,
    exemptions_chart_aria,
    col_clause,
    col_clause_title,
    col_exempt_calls,
    top_heading,
    /// `{n}`: how many customers are listed at most.
    top_note,
    top_empty,
    col_customer,
    col_months_owed,
    claims_heading,
    claims_note,
    claims_chart_aria,
    col_status,
    claim_valid,
    claim_open,
    claim_pending,
    claim_forfeited,
    claim_not_due,
    open_heading,
    open_empty,
    col_month,
    col_opens,
    col_deadline,
    col_days_left,
    quarantine_heading,
    /// `{read}`, `{counted}`, `{quarantined}`, `{duplicates}`, `{not_counted}`.
    quarantine_note,
    quarantine_empty,
    col_source,
    col_reason,
    col_entries,
    errors_heading,
    errors_note,
    col_why,
}

impl Strings {
    /// The words of `lang`.
    pub fn of(lang: Lang) -> &'static Strings {
        match lang {
            Lang::En => &EN,
            Lang::ZhCn => &ZH_CN,
        }
    }

    /// What a claim status is called; the status itself (`valid`) is the ledger's id.
    pub fn claim_status(&self, status: ClaimStatus) -> &'static str {
        match status {
            ClaimStatus::Valid => self.claim_valid,
            ClaimStatus::Open => self.claim_open,
            ClaimStatus::Pending => self.claim_pending,
            ClaimStatus::Forfeited => self.claim_forfeited,
            ClaimStatus::NotDue => self.claim_not_due,
        }
    }
}

/// `template` with each `{name}` replaced by its value, in one pass: a value is never read as
/// a template (a policy named `{months}` stays that), and an unknown `{name}` stays as written.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub const EN: Strings = Strings {
    title: "SLA ledger {first}..{last} as of {as_of}",
    header: "Policy {policy} · months {months} · as of {as_of} · {program}",
    overview_heading: "Overview",
    card_service_months: "service months",
    card_provisional: "provisional",
    card_below_standard: "below the standard",
    card_error_rows: "error rows",
    card_calls_counted: "calls counted",
    card_quarantine_entries: "quarantine entries",
    totals_heading: "Totals per currency",
    totals_note: "Over <code>ok</code> rows with billing. Payout is owed only where a valid \
                  claim was filed; compensation is what the availability earned.",
    totals_empty: "No billed service months.",
    col_currency: "Currency",
    col_months: "Months",
    col_fees_paid: "Fees paid",
    col_compensation: "Compensation",
    col_payout: "Payout",
    histogram_heading: "Availability across customer-months",
    histogram_note: "Each bar counts service months by availability (rounded down, as in the \
                     ledger). Dashed lines are the policy's tier bounds; bars are coloured by \
                     the tier they fall in. The bar on the left gathers every month below \
                     {floor}%.",
    histogram_aria: "Histogram of availability across {n} customer-months",
    histogram_bar_title: "{from}–{to}%: {n} month(s)",
    histogram_axis: "availability (%)",
    tier_range_top: "A ≥ {bound}%",
    tier_range_between: "{low}% ≤ A &lt; {high}%",
    tier_legend_entry: "{range} → rate {rate}",
    tiers_heading: "Payout by tier",
    tiers_note: "Service months per compensation tier, with what they earned and what is paid \
                 out, per currency.",
    tier_bar_label: "rate {rate}",
    tiers_chart_aria: "Service months per tier",
    col_tier: "Tier",
    col_availability: "Availability",
    exemptions_heading: "Exemptions by clause",
    exemptions_note: "System errors the SLA's section 5 exempts, each attributed to its \
                      smallest matching clause: {total} call(s).",
    exemptions_empty: "No exempt system errors.",
    exemptions_chart_aria: "Exempt calls per clause",
    col_clause: "Clause",
    col_clause_title: "Title",
    col_exempt_calls: "Exempt calls",
    top_heading: "Largest payouts",
    top_note: "The {n} customers with the largest payout (then compensation owed) over the \
               run's months.",
    top_empty: "No customer is owed compensation.",
    col_customer: "Customer",
    col_months_owed: "Months owed",
    claims_heading: "Claims by status",
    claims_note: "SLA 3.2: compensation is paid only on a valid ticket claim inside its window. \
                  <code>open</code> months can still be claimed until their deadline.",
    claims_chart_aria: "Service months per claim status",
    col_status: "Status",
    claim_valid: "valid",
    claim_open: "open",
    claim_pending: "pending",
    claim_forfeited: "forfeited",
    claim_not_due: "not_due",
    open_heading: "Open claims and their deadlines",
    open_empty: "No open claim.",
    col_month: "Month",
    col_opens: "Opens",
    col_deadline: "Deadline",
    col_days_left: "Days left",
    quarantine_heading: "Quarantine",
    quarantine_note: "Call rows: {read} read, {counted} counted, {quarantined} quarantined, \
                      {duplicates} duplicates, {not_counted} outside the selected service \
                      months. Every quarantined row is listed in <code>quarantine.csv</code>.",
    quarantine_empty: "Nothing was quarantined.",
    col_source: "Source",
    col_reason: "Reason",
    col_entries: "Entries",
    errors_heading: "Error rows",
    errors_note: "Service months whose billing is unusable: no fee, compensation or claim is \
                  computed for them.",
    col_why: "Why",
};

pub const ZH_CN: Strings = Strings {
    title: "SLA 赔偿台账 {first}..{last}，截至 {as_of}",
    header: "策略 {policy} · 月份 {months} · 截至 {as_of} · {program}",
    overview_heading: "概览",
    card_service_months: "服务月",
    card_provisional: "暂定（月份未结束）",
    card_below_standard: "低于服务标准",
    card_error_rows: "错误行",
    card_calls_counted: "计入的调用",
    card_quarantine_entries: "隔离条目",
    totals_heading: "各币种合计",
    totals_note: "只计有账单的 <code>ok</code> 行。赔付仅在提交了有效申请时才应支付；\
                  赔偿是可用性对应的应得金额。",
    totals_empty: "没有有账单的服务月。",
    col_currency: "币种",
    col_months: "月数",
    col_fees_paid: "实付费用",
    col_compensation: "赔偿",
    col_payout: "赔付",
    histogram_heading: "各客户月的可用性分布",
    histogram_note: "每个柱子按可用性（向下取整，与台账一致）统计服务月数。虚线是策略的档位\
                     界限；柱子按所在档位着色。最左侧的柱子汇总所有低于 {floor}% 的月份。",
    histogram_aria: "{n} 个客户月的可用性直方图",
    histogram_bar_title: "{from}–{to}%：{n} 个月",
    histogram_axis: "可用性（%）",
    tier_range_top: "A ≥ {bound}%",
    tier_range_between: "{low}% ≤ A &lt; {high}%",
    tier_legend_entry: "{range} → 赔偿比例 {rate}",
    tiers_heading: "各档位赔付",
    tiers_note: "每个赔偿档位的服务月数，以及各币种的应得赔偿和实际赔付。",
    tier_bar_label: "比例 {rate}",
    tiers_chart_aria: "各档位的服务月数",
    col_tier: "档位",
    col_availability: "可用性",
    exemptions_heading: "按条款统计的免责",
    exemptions_note: "SLA 第 5 节免责的系统错误，每个计入其匹配的最小条款：共 {total} 次调用。",
    exemptions_empty: "没有免责的系统错误。",
    exemptions_chart_aria: "各条款的免责调用数",
    col_clause: "条款",
    col_clause_title: "条款内容",
    col_exempt_calls: "免责调用",
    top_heading: "赔付最多的客户",
    top_note: "本次运行各月中赔付（其次为应得赔偿）最多的 {n} 个客户。",
    top_empty: "没有客户应得赔偿。",
    col_customer: "客户",
    col_months_owed: "应赔月数",
    claims_heading: "按状态统计的赔偿申请",
    claims_note: "SLA 3.2：只有在申请期内通过工单提交的有效申请才会赔付。\
                  <code>open</code> 的月份在截止日前仍可申请。",
    claims_chart_aria: "各申请状态的服务月数",
    col_status: "状态",
    claim_valid: "有效",
    claim_open: "可申请",
    claim_pending: "暂定",
    claim_forfeited: "已过期",
    claim_not_due: "无需赔偿",
    open_heading: "可申请的月份及截止日",
    open_empty: "没有可申请的月份。",
    col_month: "月份",
    col_opens: "开始",
    col_deadline: "截止",
    col_days_left: "剩余天数",
    quarantine_heading: "隔离",
    quarantine_note: "调用行：读取 {read}，计入 {counted}，隔离 {quarantined}，重复 \
                      {duplicates}，{not_counted} 行不在所选服务月内。每个被隔离的行都列在 \
                      <code>quarantine.csv</code> 中。",
    quarantine_empty: "没有被隔离的内容。",
    col_source: "来源",
    col_reason: "原因",
    col_entries: "条目",
    errors_heading: "错误行",
    errors_note: "账单无法使用的服务月：不计算其费用、赔偿或申请。",
    col_why: "原因",
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{name}` placeholders of a template, in order.
    fn placeholders(template: &str) -> Vec<&str> {
        template
            .split('{')
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(name, _)| name))
            .collect()
    }

    #[test]
    fn every_language_fills_the_same_placeholders_in_every_entry() {
        let en = EN.entries();
        for lang in Lang::ALL {
            let other = Strings::of(lang).entries();
            assert_eq!(other.len(), en.len());
            for ((name, english), (other_name, text)) in en.iter().zip(&other) {
                assert_eq!(name, other_name);
                assert!(!text.trim().is_empty(), "{lang} `{name}` is empty");
                let mut expected = placeholders(english);
                let mut found = placeholders(text);
                expected.sort_unstable();
                found.sort_unstable();
                assert_eq!(found, expected, "{lang} `{name}`");
            }
        }
    }

    #[test]
    fn the_chinese_table_is_chinese() {
        // An entry copied from English and left untranslated would show as English words.
        let untranslated: Vec<&str> = ZH_CN
            .entries()
            .into_iter()
            .filter(|(_, text)| !text.chars().any(|c| u32::from(c) >= 0x4e00))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(untranslated, ["tier_range_top", "tier_range_between"]);
    }

    #[test]
    fn fill_replaces_names_once_and_keeps_what_it_does_not_know() {
        assert_eq!(
            fill("{a} and {b}, {a}", &[("a", "1"), ("b", "2")]),
            "1 and 2, 1"
        );
        assert_eq!(fill("{a}", &[("a", "{b}"), ("b", "x")]), "{b}");
        assert_eq!(fill("{unknown} {", &[]), "{unknown} {");
        assert_eq!(fill("月份 {m}。", &[("m", "2026-03")]), "月份 2026-03。");
    }
}

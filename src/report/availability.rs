//! Takes the ledger's availability and the policy's tiers; gives the availability histogram (SVG).

use std::fmt::Write as _;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::strings::{fill, Strings};
use super::tiers::{tier_colour, tier_legend};
use super::Report;
use crate::ledger::{fixed, LedgerRow};
use crate::policy::Policy;

/// Bins of the availability histogram between its lower edge and 100 %.
const HISTOGRAM_BINS: u32 = 20;

/// The histogram's x range: from a little below the lowest non-zero tier bound up to 100 %.
fn histogram_floor(policy: &Policy) -> Decimal {
    let lowest = policy
        .tiers
        .iter()
        .map(|t| t.at_least_pct)
        .filter(|b| !b.is_zero())
        .min()
        .unwrap_or(Decimal::ONE_HUNDRED);
    (lowest.floor() - Decimal::from(5)).max(Decimal::ZERO)
}

/// Counts per bin: index 0 holds everything below `floor`, then `HISTOGRAM_BINS` equal bins
/// up to 100 (the last one closed at 100).
fn histogram_counts(rows: &[LedgerRow], floor: Decimal) -> Vec<usize> {
    let width = (Decimal::ONE_HUNDRED - floor) / Decimal::from(HISTOGRAM_BINS);
    let mut counts = vec![0usize; HISTOGRAM_BINS as usize + 1];
    for row in rows {
        let pct = row.availability_pct;
        let index = if pct < floor {
            0
        } else {
            let bin = ((pct - floor) / width).floor().to_u32().unwrap_or(0);
            1 + bin.min(HISTOGRAM_BINS - 1) as usize
        };
        counts[index] += 1;
    }
    counts
}

/// The availability section: how many months fall in each availability bin, the tier bounds
/// drawn over them, and the tier legend.
pub(super) fn histogram_section(page: &mut String, report: &Report) {
    let policy = &report.job.policy;
    let floor = histogram_floor(policy);
    let counts = histogram_counts(report.ledger, floor);
    let plot = Plot::new(floor, &counts);
    let Plot { svg_w, svg_h, .. } = plot;

    let words = report.words();
    writeln!(
        page,
        "<section id=\"availability\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>",
        words.histogram_heading,
        fill(words.histogram_note, &[("floor", &fixed(floor, 2))])
    )
    .ok();
    writeln!(
        page,
        "<svg id=\"availability-histogram\" xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {svg_w} {svg_h}\" width=\"{svg_w}\" height=\"{svg_h}\" role=\"img\" \
         aria-label=\"{}\">",
        fill(
            words.histogram_aria,
            &[("n", &report.ledger.len().to_string())]
        )
    )
    .ok();
    y_axis(page, &plot);
    bars(page, &plot, &counts, policy, words);
    x_axis(page, &plot, words);
    tier_bounds(page, &plot, policy);
    page.push_str("</svg>\n");
    tier_legend(page, policy, words);
    page.push_str("</section>\n");
}

/// The histogram's geometry in SVG user units, and where a percentage or a count lands on it.
#[derive(Clone, Copy)]
struct Plot {
    floor: Decimal,
    floor_f: f64,
    /// The tallest bar's count (at least 1).
    max: usize,
    svg_w: f64,
    svg_h: f64,
    left: f64,
    top: f64,
    plot_h: f64,
    /// The "below the floor" bar's width.
    under_w: f64,
    /// Where the bins start and end.
    x0: f64,
    x1: f64,
}

impl Plot {
    fn new(floor: Decimal, counts: &[usize]) -> Self {
        let max = counts.iter().copied().max().unwrap_or(0).max(1);

        // Geometry in SVG user units.
        let (svg_w, svg_h) = (760.0_f64, 296.0_f64);
        let (left, right, top, bottom) = (48.0, 16.0, 44.0, 44.0);
        let plot_h = svg_h - top - bottom;
        let under_w = 30.0; // the "below the floor" bar, set apart on the left
        let x0 = left + under_w + 26.0;
        let x1 = svg_w - right;
        let floor_f: f64 = floor.try_into().unwrap_or(0.0);
        Plot {
            floor,
            floor_f,
            max,
            svg_w,
            svg_h,
            left,
            top,
            plot_h,
            under_w,
            x0,
            x1,
        }
    }

    fn x_of(&self, pct: f64) -> f64 {
        self.x0 + (pct - self.floor_f) / (100.0 - self.floor_f) * (self.x1 - self.x0)
    }

    fn y_of(&self, n: usize) -> f64 {
        self.top + self.plot_h - n as f64 / self.max as f64 * self.plot_h
    }
}

/// Y axis with three ticks.
fn y_axis(page: &mut String, plot: &Plot) {
    let Plot { max, left, x1, .. } = *plot;
    for n in [0, max / 2, max] {
        let y = plot.y_of(n);
        writeln!(
            page,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"#e4e7eb\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{n}</text>",
            left - 6.0,
            y + 4.0
        )
        .ok();
    }
}

/// Bars: the rows below the floor on their own, then one per bin, each in its tier's colour.
fn bars(page: &mut String, plot: &Plot, counts: &[usize], policy: &Policy, words: &Strings) {
    let Plot {
        floor,
        left,
        top,
        plot_h,
        under_w,
        ..
    } = *plot;
    let width = (Decimal::ONE_HUNDRED - floor) / Decimal::from(HISTOGRAM_BINS);
    let bar = |page: &mut String, x: f64, w: f64, n: usize, from: &str, to: &str, colour: &str| {
        let y = plot.y_of(n);
        let title = fill(
            words.histogram_bar_title,
            &[("from", from), ("to", to), ("n", &n.to_string())],
        );
        writeln!(
            page,
            "<rect class=\"bar\" data-bin-from=\"{from}\" data-bin-to=\"{to}\" data-count=\"{n}\" \
             x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
             <title>{title}</title></rect>",
            top + plot_h - y
        )
        .ok();
        if n > 0 {
            writeln!(
                page,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>",
                x + w / 2.0,
                y - 4.0
            )
            .ok();
        }
    };
    let rate_below_floor = policy.tier_for(0, 1).rate;
    bar(
        page,
        left + 4.0,
        under_w - 4.0,
        counts[0],
        "0.00",
        &fixed(floor, 2),
        tier_colour(policy, rate_below_floor),
    );
    for bin in 0..HISTOGRAM_BINS {
        let from = floor + width * Decimal::from(bin);
        let to = from + width;
        let from_f: f64 = from.try_into().unwrap_or(0.0);
        let to_f: f64 = to.try_into().unwrap_or(0.0);
        let rate = policy
            .tiers
            .iter()
            .find(|t| from >= t.at_least_pct)
            .map_or(Decimal::ZERO, |t| t.rate);
        let x = plot.x_of(from_f) + 1.0;
        let w = (plot.x_of(to_f) - plot.x_of(from_f) - 2.0).max(1.0);
        bar(
            page,
            x,
            w,
            counts[bin as usize + 1],
            &fixed(from, 2),
            &fixed(to, 2),
            tier_colour(policy, rate),
        );
    }
}

/// X axis: a label at every whole percent that fits, plus the floor's own bar.
fn x_axis(page: &mut String, plot: &Plot, words: &Strings) {
    let Plot {
        floor,
        floor_f,
        left,
        top,
        plot_h,
        under_w,
        x0,
        x1,
        ..
    } = *plot;
    let base = top + plot_h;
    writeln!(
        page,
        "<line x1=\"{left}\" y1=\"{base:.1}\" x2=\"{x1}\" y2=\"{base:.1}\" stroke=\"#52606d\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">&lt;{}</text>",
        left + under_w / 2.0,
        base + 16.0,
        fixed(floor, 0)
    )
    .ok();
    let span = 100.0 - floor_f;
    let step = if span <= 12.0 {
        1.0
    } else {
        (span / 10.0).ceil()
    };
    let mut tick = floor_f;
    while tick <= 100.0 + f64::EPSILON {
        writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick:.0}</text>",
            plot.x_of(tick),
            base + 16.0
        )
        .ok();
        tick += step;
    }
    writeln!(
        page,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (x0 + x1) / 2.0,
        base + 34.0,
        words.histogram_axis
    )
    .ok();
}

/// Tier bounds: a dashed line at each bound above the floor, its percentage on top.
fn tier_bounds(page: &mut String, plot: &Plot, policy: &Policy) {
    let Plot {
        floor, top, plot_h, ..
    } = *plot;
    let base = top + plot_h;
    for (i, tier) in policy
        .tiers
        .iter()
        .filter(|t| t.at_least_pct > floor)
        .enumerate()
    {
        let bound: f64 = tier.at_least_pct.try_into().unwrap_or(0.0);
        let x = plot.x_of(bound);
        // Stagger the labels so bounds that sit close together stay readable.
        let label_y = top - 26.0 + (i % 2) as f64 * 12.0;
        writeln!(
            page,
            "<line class=\"tier-bound\" data-bound=\"{}\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" \
             y2=\"{base:.1}\" stroke=\"#102a43\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>\
             <text x=\"{:.1}\" y=\"{label_y:.1}\" text-anchor=\"end\">{}%</text>",
            fixed(tier.at_least_pct, 2),
            label_y + 4.0,
            x - 3.0,
            fixed(tier.at_least_pct, 2)
        )
        .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sla_3_1_histogram_floor_sits_below_the_lowest_tier_bound() {
        assert_eq!(histogram_floor(&Policy::ccc()), Decimal::from(90));
    }
}

//! Takes labelled counts with their colours; gives a horizontal bar chart as inline SVG.

use std::fmt::Write as _;

use super::page::escape;

/// About how wide `text` is in the charts' 11px sans-serif, in SVG units: CJK and other wide
/// characters take a full em, the rest a little over half of one.
fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| if u32::from(c) >= 0x1100 { 11.0 } else { 6.2 })
        .sum()
}

/// A horizontal bar chart: one labelled bar per item. The label column is as wide as the
/// longest label needs (a clause with its title), within bounds that leave the bars room.
pub(super) fn bar_chart(page: &mut String, id: &str, label: &str, items: &[(String, u64, &str)]) {
    let row_h = 22.0_f64;
    let (value_w, svg_w) = (60.0_f64, 760.0_f64);
    let widest = items.iter().map(|i| text_width(&i.0)).fold(0.0, f64::max);
    let label_w = (widest + 16.0).clamp(120.0, 520.0);
    let svg_h = row_h * items.len() as f64 + 8.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
    writeln!(
        page,
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {svg_w} {svg_h}\" \
         width=\"{svg_w}\" height=\"{svg_h}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    )
    .ok();
    for (i, (name, value, colour)) in items.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let w = *value as f64 / max as f64 * (svg_w - label_w - value_w);
        writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" data-label=\"{}\" data-value=\"{value}\" x=\"{label_w:.1}\" y=\"{y:.1}\" \
             width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{value}</text>",
            label_w - 8.0,
            y + 15.0,
            escape(name),
            escape(name),
            row_h - 6.0,
            label_w + w + 6.0,
            y + 15.0
        )
        .ok();
    }
    page.push_str("</svg>\n");
}

//! Charts drawn as SVG and HTML by hand: no JavaScript charting.

use burncloud_client::compact;
use dioxus::prelude::*;

/// One bar: its label (shown under it and in its tooltip) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub tooltip: String,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 170.0;
const AXIS: f64 = 28.0;
const TOP: f64 = 12.0;

/// Vertical bars with a scale on the left and every fifth label underneath.
#[component]
pub fn BarChart(bars: Vec<Bar>, label: String) -> Element {
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max).max(1.0);
    let slot = (WIDTH - AXIS) / bars.len().max(1) as f64;
    let plot = HEIGHT - 20.0 - TOP;
    rsx! {
        svg { class: "chart", view_box: "0 0 {WIDTH} {HEIGHT}", role: "img", "aria-label": "{label}",
            line { class: "axis", x1: "{AXIS}", y1: "{TOP + plot}", x2: "{WIDTH}", y2: "{TOP + plot}" }
            text { x: "0", y: "{TOP + 4.0}", {compact(max)} }
            text { x: "0", y: "{TOP + plot}", "0" }
            for (i, bar) in bars.iter().enumerate() {
                g { key: "{i}",
                    rect {
                        class: "bar",
                        x: "{AXIS + i as f64 * slot + slot * 0.15}",
                        y: "{TOP + plot - plot * bar.value / max}",
                        width: "{slot * 0.7}",
                        height: "{plot * bar.value / max}",
                        rx: "2",
                        title { "{bar.tooltip}" }
                    }
                    if i % 5 == 0 || i + 1 == bars.len() {
                        text {
                            x: "{AXIS + (i as f64 + 0.5) * slot}",
                            y: "{HEIGHT - 4.0}",
                            "text-anchor": if i + 1 == bars.len() { "end" } else { "middle" },
                            "{bar.label}"
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars for a ranking (cost by model).
#[component]
pub fn RankBars(rows: Vec<(String, f64, String)>) -> Element {
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    rsx! {
        for (name, value, shown) in rows.iter() {
            {
                let share = if max > 0.0 { value / max * 100.0 } else { 0.0 };
                rsx! {
            div { class: "hbar", key: "{name}",
                span { class: "mono", "{name}" }
                div { class: "hbar-track",
                    div { class: "hbar-fill", style: "width: {share}%" }
                }
                span { class: "num", "{shown}" }
            }
                }
            }
        }
    }
}

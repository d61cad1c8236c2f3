//! SVG charts drawn on the server: a band (min–max, or p50–p95) with a line through it, axes
//! with round ticks, threshold lines, a `<title>` per slice for hover, and gaps where there
//! was no data. Pages stay complete without JavaScript and a chart costs a few KiB.
//!
//! Why our own: plotters (last release 2024) writes one element per point with inline styles,
//! several times the bytes of this; charming needs the ECharts JavaScript in the browser.
//! What a chart needs here is small enough to own: scale, path, ticks.
//!
//! Every text placed in the SVG goes through [`esc`], so the output may be written into a page
//! unescaped (`|safe`) even when a label came from the config.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// One slice of time: the band from `lo` to `hi` and the line at `mid`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at_ms: i64,
    pub lo: f64,
    pub mid: f64,
    pub hi: f64,
}

/// One series on a chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Warning,
    Critical,
    /// A reference, not an alert threshold (load equal to the number of cores).
    Reference,
}

#[derive(Debug, Clone)]
pub struct Threshold {
    pub level: Level,
    pub value: f64,
}

/// How values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Millis,
    Plain,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Percent => format!("{} %", round_for(v)),
            Unit::Millis => format!("{} ms", round_for(v)),
            Unit::Plain => round_for(v),
        }
    }
}

fn round_for(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        return format!("{v:.0}");
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A chart to draw.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Unique on the page (ids for `aria-labelledby`).
    pub id: String,
    pub title: String,
    pub unit: Unit,
    pub since_ms: i64,
    pub until_ms: i64,
    pub lines: Vec<Line>,
    pub thresholds: Vec<Threshold>,
    /// The y axis never goes below / above these (percent: 0 and 100).
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
    /// What the band and the line stand for, for the summary ("min–max", "average").
    pub band_label: &'static str,
    pub line_label: &'static str,
}

/// The SVG and a sentence saying what it shows (for screen readers and as the caption).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub svg: String,
    pub summary: String,
}

const W: f64 = 640.0;
const H: f64 = 210.0;
/// Room for the y labels at the phone font size (18 units: "100 %" is ~50 units wide).
const LEFT: f64 = 60.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
/// Half the width of a time label ("12:00", "Nov 28") at the phone font size.
const TIME_LABEL_HALF: f64 = 28.0;
/// Room for the time labels under the plot at the phone font size.
const BOTTOM: f64 = 30.0;
/// Hover slices per chart: enough to read, few enough to keep the page small.
const HOVER_SLICES: usize = 60;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round step near `raw`: 1, 2, 2.5 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Tick step for the time axis: about five labels over `span_ms`.
fn time_step(span_ms: i64) -> i64 {
    const M: i64 = 60_000;
    const HR: i64 = 60 * M;
    const D: i64 = 24 * HR;
    let steps = [
        5 * M,
        10 * M,
        15 * M,
        30 * M,
        HR,
        2 * HR,
        3 * HR,
        6 * HR,
        12 * HR,
        D,
        2 * D,
        7 * D,
        14 * D,
        30 * D,
        61 * D,
    ];
    steps
        .into_iter()
        .find(|s| span_ms / s <= 6)
        .unwrap_or(61 * D)
}

fn time_label(at_ms: i64, step_ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_default();
    if step_ms < 86_400_000 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%b %-d").to_string()
    }
}

/// Human time for titles and summaries.
pub fn when(at_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .format("%b %-d %H:%M")
        .to_string()
}

/// Points split where the spacing is much larger than usual: no line across missing data.
fn segments(points: &[Point]) -> Vec<&[Point]> {
    if points.len() < 2 {
        return if points.is_empty() {
            Vec::new()
        } else {
            vec![points]
        };
    }
    let mut gaps: Vec<i64> = points.windows(2).map(|w| w[1].at_ms - w[0].at_ms).collect();
    gaps.sort_unstable();
    let usual = gaps[gaps.len() / 2].max(1);
    let limit = usual.saturating_mul(3);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if points[i].at_ms - points[i - 1].at_ms > limit {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out.push(&points[start..]);
    out
}

struct Scale {
    since: i64,
    until: i64,
    y0: f64,
    y1: f64,
}

impl Scale {
    fn x(&self, at_ms: i64) -> f64 {
        let span = (self.until - self.since).max(1) as f64;
        LEFT + (at_ms - self.since) as f64 / span * (W - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        let span = (self.y1 - self.y0).max(f64::EPSILON);
        let v = v.clamp(self.y0, self.y1);
        H - BOTTOM - (v - self.y0) / span * (H - TOP - BOTTOM)
    }
}

/// Height a threshold label needs at the largest size it is drawn (18 units on a phone,
/// where the chart is scaled down) plus a margin.
const LABEL_H: f64 = 20.0;

/// Where a threshold label goes: `y` is its baseline, or its top when `hanging`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LabelPos {
    y: f64,
    hanging: bool,
}

/// Places the labels of threshold lines at `lines` (their y, any order; the answer is in the
/// same order). A label sits just above its line; when that would overlap the label of the
/// line above it (warning 80 % and critical 90 % are 18 units apart on a 0–100 % chart, less
/// than a label's height at the phone font size) or leave the chart at the top, it hangs just
/// under its line instead, and is nudged further down only when that still overlaps. A label
/// is never drawn across its own line.
fn place_labels(lines: &[f64]) -> Vec<LabelPos> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|a, b| lines[*a].total_cmp(&lines[*b]));
    let mut out = vec![
        LabelPos {
            y: 0.0,
            hanging: false
        };
        lines.len()
    ];
    let mut prev_bottom = f64::NEG_INFINITY;
    for i in order {
        let y = lines[i];
        let above = y - 3.0;
        if above - LABEL_H >= prev_bottom.max(0.0) {
            out[i] = LabelPos {
                y: above,
                hanging: false,
            };
            prev_bottom = above;
        } else {
            let top = (y + 3.0).max(prev_bottom);
            out[i] = LabelPos {
                y: top,
                hanging: true,
            };
            prev_bottom = top + LABEL_H;
        }
    }
    out
}

/// Draws `chart`.
pub fn render(chart: &Chart) -> Rendered {
    let all: Vec<&Point> = chart.lines.iter().flat_map(|l| &l.points).collect();
    let data_lo = all.iter().map(|p| p.lo).fold(f64::INFINITY, f64::min);
    let data_hi = all.iter().map(|p| p.hi).fold(f64::NEG_INFINITY, f64::max);
    let has_data = !all.is_empty() && data_hi.is_finite();
    // A threshold far above the data would squash it flat: it is drawn when it is within
    // reach and named in the summary either way.
    let mut top = if has_data { data_hi } else { 1.0 };
    for t in &chart.thresholds {
        if t.value <= top * 2.0 || !has_data {
            top = top.max(t.value);
        }
    }
    let mut bottom = chart.y_min.unwrap_or(if has_data { data_lo } else { 0.0 });
    if let Some(cap) = chart.y_max {
        // A bounded scale (percent) is shown whole: 40 % should look like 40 %.
        top = cap;
    }
    if top <= bottom {
        top = bottom + 1.0;
    }
    let step = nice_step((top - bottom) / 4.0);
    bottom = (bottom / step).floor() * step;
    let mut y1 = (top / step).ceil() * step;
    if let Some(cap) = chart.y_max {
        y1 = y1.min(cap).max(bottom + step);
    }
    let s = Scale {
        since: chart.since_ms,
        until: chart.until_ms,
        y0: bottom,
        y1,
    };

    let id = esc(&chart.id);
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-s\" \
         data-chart=\"{id}\"><title id=\"{id}-t\">{}</title>",
        esc(&chart.title)
    );
    // Grid and y labels.
    svg.push_str("<g class=\"axis\">");
    let mut v = bottom;
    while v <= y1 + step / 2.0 {
        let y = s.y(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.0}\" y=\"{:.1}\" \
             text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            esc(&chart.unit.format(v).replace(" %", "%").replace(" ms", ""))
        );
        v += step;
    }
    let tstep = time_step(chart.until_ms - chart.since_ms);
    let mut t = (chart.since_ms / tstep + 1) * tstep;
    while t < chart.until_ms {
        let x = s.x(t);
        let _ = write!(
            svg,
            "<line class=\"v\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.0}\"/>",
            H - BOTTOM,
        );
        // A label centred this close to the right edge would be cut off ("12:0").
        if x + TIME_LABEL_HALF <= W {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text>",
                // Low enough that the 18-unit phone font clears the lowest y label.
                H - 4.0,
                time_label(t, tstep)
            );
        }
        t += tstep;
    }
    svg.push_str("</g>");

    // Bands first, lines over them.
    for (i, line) in chart.lines.iter().enumerate() {
        let class = i.min(3);
        for seg in segments(&line.points) {
            if seg.len() == 1 {
                let p = seg[0];
                let _ = write!(
                    svg,
                    "<circle class=\"dot l{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"/>",
                    s.x(p.at_ms),
                    s.y(p.mid)
                );
                continue;
            }
            if chart.lines.len() == 1 {
                svg.push_str("<path class=\"band\" d=\"M");
                for p in seg {
                    let _ = write!(svg, "{:.1} {:.1}L", s.x(p.at_ms), s.y(p.hi));
                }
                for p in seg.iter().rev() {
                    let _ = write!(svg, "{:.1} {:.1}L", s.x(p.at_ms), s.y(p.lo));
                }
                svg.pop();
                svg.push_str("Z\"/>");
            }
            let _ = write!(svg, "<path class=\"line l{class}\" d=\"M");
            for p in seg {
                let _ = write!(svg, "{:.1} {:.1}L", s.x(p.at_ms), s.y(p.mid));
            }
            svg.pop();
            svg.push_str("\"/>");
        }
    }

    let shown: Vec<&Threshold> = chart
        .thresholds
        .iter()
        .filter(|th| th.value >= s.y0 && th.value <= s.y1)
        .collect();
    let class_word = |level: Level| match level {
        Level::Warning => ("warn", "warning"),
        Level::Critical => ("crit", "critical"),
        Level::Reference => ("ref", "cores"),
    };
    // Every line before any label, so that no line is drawn over a label (each label has a
    // halo in the card's colour that hides what runs under it).
    let lines: Vec<f64> = shown.iter().map(|th| s.y(th.value)).collect();
    for (th, y) in shown.iter().zip(&lines) {
        let _ = write!(
            svg,
            "<g class=\"thr {}\"><line x1=\"{LEFT}\" x2=\"{:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/></g>",
            class_word(th.level).0,
            W - RIGHT,
        );
    }
    for (th, label) in shown.iter().zip(place_labels(&lines)) {
        let (class, word) = class_word(th.level);
        let _ = write!(
            svg,
            "<g class=\"thr {class}\"><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\"{}>{word} {}</text></g>",
            W - RIGHT - 2.0,
            label.y,
            if label.hanging {
                " dominant-baseline=\"hanging\""
            } else {
                ""
            },
            esc(&chart.unit.format(th.value))
        );
    }

    if chart.lines.len() > 1 {
        // A legend, since colour alone cannot say which line is which.
        let mut x = LEFT + 6.0;
        for (i, line) in chart.lines.iter().enumerate() {
            let label = esc(&line.label);
            let _ = write!(
                svg,
                "<text class=\"lg l{}\" x=\"{x:.0}\" y=\"{:.0}\">\u{25A0} {label}</text>",
                i.min(3),
                TOP + 12.0
            );
            x += 28.0 + 11.0 * line.label.chars().count() as f64;
        }
    }
    hover_slices(&mut svg, chart, &s);
    svg.push_str("</svg>");

    Rendered {
        svg,
        summary: summarize(chart),
    }
}

/// Invisible columns, each with a `<title>` that the browser shows on hover.
fn hover_slices(svg: &mut String, chart: &Chart, s: &Scale) {
    let span = (chart.until_ms - chart.since_ms).max(1);
    let width = (span / HOVER_SLICES as i64).max(1);
    let col_w = (W - LEFT - RIGHT) / HOVER_SLICES as f64;
    svg.push_str("<g class=\"hover\">");
    for i in 0..HOVER_SLICES as i64 {
        let from = chart.since_ms + i * width;
        let to = from + width;
        let mut parts = Vec::new();
        for line in &chart.lines {
            let inside: Vec<&Point> = line
                .points
                .iter()
                .filter(|p| p.at_ms >= from && p.at_ms < to)
                .collect();
            if inside.is_empty() {
                continue;
            }
            let lo = inside.iter().map(|p| p.lo).fold(f64::INFINITY, f64::min);
            let hi = inside
                .iter()
                .map(|p| p.hi)
                .fold(f64::NEG_INFINITY, f64::max);
            let mid = inside.iter().map(|p| p.mid).sum::<f64>() / inside.len() as f64;
            let name = if chart.lines.len() > 1 {
                format!("{} ", line.label)
            } else {
                String::new()
            };
            parts.push(format!(
                "{name}{} {}, {} {}–{}",
                chart.line_label,
                chart.unit.format(mid),
                chart.band_label,
                chart.unit.format(lo),
                chart.unit.format(hi)
            ));
        }
        if parts.is_empty() {
            continue;
        }
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{col_w:.1}\" height=\"{:.0}\"><title>{}: {}</title></rect>",
            s.x(from),
            H - TOP - BOTTOM,
            when(from),
            esc(&parts.join("; "))
        );
    }
    svg.push_str("</g>");
}

/// One or two sentences with what the chart shows.
pub fn summarize(chart: &Chart) -> String {
    let mut out = String::new();
    for line in &chart.lines {
        if line.points.is_empty() {
            continue;
        }
        let n = line.points.len() as f64;
        let avg = line.points.iter().map(|p| p.mid).sum::<f64>() / n;
        let (lo, hi) = line
            .points
            .iter()
            .fold((f64::INFINITY, None::<&Point>), |acc, p| {
                (
                    acc.0.min(p.lo),
                    match acc.1 {
                        Some(b) if b.hi >= p.hi => Some(b),
                        _ => Some(p),
                    },
                )
            });
        let hi = hi.expect("non-empty");
        let name = if chart.lines.len() > 1 {
            format!("{}: ", line.label)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "{name}{} {}, lowest {}, highest {} ({}). ",
            chart.line_label,
            chart.unit.format(avg),
            chart.unit.format(lo),
            chart.unit.format(hi.hi),
            when(hi.at_ms)
        );
        let gaps = segments(&line.points).len().saturating_sub(1);
        if gaps > 0 {
            let _ = write!(
                out,
                "{gaps} gap{} without data. ",
                if gaps == 1 { "" } else { "s" }
            );
        }
    }
    if out.is_empty() {
        out.push_str("No data in this range. ");
    }
    for th in &chart.thresholds {
        let word = match th.level {
            Level::Warning => "Warning",
            Level::Critical => "Critical",
            Level::Reference => "One per core",
        };
        let _ = write!(out, "{word} at {}. ", chart.unit.format(th.value));
    }
    out.trim_end().to_owned()
}

/// A small line without axes, for tables (the number beside it carries the meaning, so it is
/// hidden from screen readers). `None` is a gap.
pub fn sparkline(values: &[Option<f64>], title: &str) -> String {
    const SW: f64 = 120.0;
    const SH: f64 = 24.0;
    /// More points than this in 120 px is noise, not a trend.
    const MAX: usize = 48;
    let binned: Vec<Option<f64>>;
    let values = if values.len() > MAX {
        let per = values.len().div_ceil(MAX);
        binned = values
            .chunks(per)
            .map(|c| {
                let v: Vec<f64> = c.iter().flatten().copied().collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            })
            .collect();
        &binned[..]
    } else {
        values
    };
    let hi = values
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let lo = values
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let mut svg = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {SW} {SH}\" aria-hidden=\"true\"><title>{}</title>",
        esc(title)
    );
    if hi.is_finite() && values.len() > 1 {
        let span = (hi - lo).max(f64::EPSILON);
        let step = SW / (values.len() - 1) as f64;
        let mut open = false;
        svg.push_str("<path d=\"");
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let y = if hi > lo {
                        SH - 2.0 - (v - lo) / span * (SH - 4.0)
                    } else {
                        SH / 2.0
                    };
                    let _ = write!(
                        svg,
                        "{}{:.1} {y:.1}",
                        if open { "L" } else { "M" },
                        i as f64 * step
                    );
                    open = true;
                }
                None => open = false,
            }
        }
        svg.push_str("\"/>");
    }
    svg.push_str("</svg>");
    svg
}

/// Counts as small bars (restarts per hour): a count is not a trend line. `None`: no data.
pub fn spark_bars(values: &[Option<f64>], title: &str) -> String {
    const SW: f64 = 120.0;
    const SH: f64 = 24.0;
    let hi = values.iter().flatten().copied().fold(0.0, f64::max);
    let step = SW / values.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"spark bars-s\" viewBox=\"0 0 {SW} {SH}\" aria-hidden=\"true\"><title>{}</title>",
        esc(title)
    );
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v else { continue };
        // Zero is a hairline, so "no restarts" differs from "no data".
        let h = if hi > 0.0 {
            (v / hi * (SH - 2.0)).max(1.0)
        } else {
            1.0
        };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>",
            i as f64 * step,
            SH - h,
            (step - 1.0).max(1.0)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One day of an uptime bar.
#[derive(Debug, Clone, PartialEq)]
pub struct DayBar {
    pub day_ms: i64,
    pub total: i64,
    pub failures: i64,
}

impl DayBar {
    pub fn uptime_pct(&self) -> Option<f64> {
        (self.total > 0).then(|| 100.0 * (self.total - self.failures) as f64 / self.total as f64)
    }
}

/// Daily uptime as a row of bars; each bar names its day and figure on hover, and the
/// summary counts the days that were not fully up.
pub fn uptime_bars(days: &[DayBar], label: &str) -> Rendered {
    const BW: f64 = 6.0;
    const GAP: f64 = 2.0;
    let w = days.len() as f64 * (BW + GAP);
    let mut svg = format!(
        "<svg class=\"bars\" viewBox=\"0 0 {w} 28\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"{}\">",
        esc(label)
    );
    let mut bad_days = 0;
    let mut no_data = 0;
    for (i, d) in days.iter().enumerate() {
        let (class, text) = match d.uptime_pct() {
            None => {
                no_data += 1;
                ("none", "no data".to_owned())
            }
            Some(p) => {
                if p < 100.0 {
                    bad_days += 1;
                }
                let class = if p >= 99.9 {
                    "up"
                } else if p >= 99.0 {
                    "warn"
                } else {
                    "down"
                };
                (
                    class,
                    format!("{p:.2} % up ({} of {} failed)", d.failures, d.total),
                )
            }
        };
        let day = DateTime::<Utc>::from_timestamp_millis(d.day_ms)
            .unwrap_or_default()
            .format("%Y-%m-%d");
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{:.0}\" y=\"0\" width=\"{BW}\" height=\"28\"><title>{day}: {text}</title></rect>",
            i as f64 * (BW + GAP)
        );
    }
    svg.push_str("</svg>");
    let with_data = days.len() - no_data;
    let summary = if with_data == 0 {
        "No data in these days.".to_owned()
    } else if bad_days == 0 {
        format!("Up all of the {with_data} days with data.")
    } else {
        format!("{bad_days} of the {with_data} days with data had failures.")
    };
    Rendered { svg, summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(at_ms: i64, v: f64) -> Point {
        Point {
            at_ms,
            lo: v - 1.0,
            mid: v,
            hi: v + 1.0,
        }
    }

    fn chart(points: Vec<Point>) -> Chart {
        Chart {
            id: "c".into(),
            title: "Memory <used>".into(),
            unit: Unit::Percent,
            since_ms: 0,
            until_ms: 3_600_000,
            lines: vec![Line {
                label: "memory".into(),
                points,
            }],
            thresholds: vec![Threshold {
                level: Level::Warning,
                value: 90.0,
            }],
            y_min: Some(0.0),
            y_max: Some(100.0),
            band_label: "min–max",
            line_label: "average",
        }
    }

    #[test]
    fn a_gap_in_the_data_splits_the_line() {
        let mut pts: Vec<Point> = (0..10).map(|i| p(i * 60_000, 40.0)).collect();
        pts.extend((30..40).map(|i| p(i * 60_000, 50.0)));
        let r = render(&chart(pts));
        assert_eq!(r.svg.matches("class=\"line l0\"").count(), 2, "{}", r.svg);
        assert!(r.summary.contains("1 gap without data"), "{}", r.summary);
    }

    #[test]
    fn titles_are_escaped_and_thresholds_drawn() {
        let r = render(&chart(vec![p(0, 10.0), p(60_000, 20.0)]));
        assert!(r.svg.contains("Memory &lt;used&gt;"));
        assert!(!r.svg.contains("<used>"));
        assert!(r.svg.contains("warning 90 %"), "{}", r.svg);
        assert!(r.summary.contains("Warning at"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(23.0), 25.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(170.0), 200.0);
        assert_eq!(time_step(86_400_000), 6 * 3_600_000);
        assert_eq!(time_step(3_600_000), 10 * 60_000);
    }

    #[test]
    fn close_threshold_labels_are_nudged_apart() {
        let above = |y: f64| LabelPos {
            y: y - 3.0,
            hanging: false,
        };
        let under = |y: f64| LabelPos {
            y: y + 3.0,
            hanging: true,
        };
        // Far apart: each just above its line.
        assert_eq!(place_labels(&[150.0, 60.0]), [above(150.0), above(60.0)]);
        // Warning 80 % and critical 90 % on a 0–100 % chart (lines 17.6 apart): critical above
        // its line, warning under its own, so the two boxes do not overlap.
        let y = place_labels(&[45.2, 27.6]);
        assert_eq!(y, [under(45.2), above(27.6)]);
        assert!(y[0].y >= y[1].y, "{y:?}");
        // A line at the top has its label under it rather than cut off.
        assert_eq!(place_labels(&[12.0]), [under(12.0)]);
        // Three lines within a few units (load thresholds and the per-core line): the third
        // label is pushed below the second one's box.
        let y = place_labels(&[100.0, 96.0, 98.0]);
        assert_eq!(y[1], above(96.0));
        assert_eq!(y[2], under(98.0));
        assert_eq!(
            y[0],
            LabelPos {
                y: 98.0 + 3.0 + LABEL_H,
                hanging: true
            }
        );
        // Through `render`: warning 80 % hangs under its line, critical 90 % sits above its.
        let mut c = chart(vec![p(0, 10.0), p(60_000, 20.0)]);
        c.thresholds = vec![
            Threshold {
                level: Level::Warning,
                value: 80.0,
            },
            Threshold {
                level: Level::Critical,
                value: 90.0,
            },
        ];
        let svg = render(&c).svg;
        let label = |word: &str| -> &str {
            let at = svg.find(&format!(">{word} ")).expect(word);
            &svg[svg[..at].rfind("<text").expect("text")..at]
        };
        assert!(
            label("warning").contains("dominant-baseline=\"hanging\""),
            "{svg}"
        );
        assert!(!label("critical").contains("hanging"), "{svg}");
    }

    #[test]
    fn a_time_label_at_the_right_edge_is_left_out_not_cut() {
        // 24 h ending 12:09 UTC: the 12:00 tick is 4 units from the right edge.
        let day = 86_400_000;
        let until = 20_000 * day + 12 * 3_600_000 + 9 * 60_000;
        let mut c = chart(vec![p(until - 60_000, 10.0)]);
        (c.since_ms, c.until_ms) = (until - day, until);
        let svg = render(&c).svg;
        assert!(svg.contains(">18:00<"), "{svg}");
        assert!(!svg.contains(">12:00<"), "{svg}");
    }

    #[test]
    fn empty_chart_says_so() {
        let r = render(&chart(Vec::new()));
        assert!(r.summary.starts_with("No data in this range."));
    }
}

//! The SVG report (`--svg FILE`): what a run draws.
//!
//! [`write_svg`] draws a [`Plot`] with plotters' SVG backend. No font
//! files are needed: the SVG backend writes text as `<text>` elements and
//! leaves rendering to the viewer, and plotters' built-in "naive" font
//! support (used when neither the `ttf` nor the `ab_glyph` feature is on)
//! only estimates text sizes for layout.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One second of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondRow {
    /// Seconds since the run's start.
    pub t: u64,
    /// Packets scheduled in that second and sent.
    pub sent: u64,
    /// Of those, received.
    pub received: u64,
    /// Of those, lost.
    pub lost: u64,
    /// Latency of the arrivals in that second, from the scheduled time, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Highest, µs.
    pub max_us: u64,
}

/// One trial of a `--find-max` search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampPoint {
    /// Calls offered.
    pub calls: u64,
    /// Loss, percent of sent.
    pub loss_pct: f64,
    /// p99 latency from the scheduled time, µs.
    pub p99_us: u64,
    /// Relay CPU, percent of one core (None when not measured).
    pub relay_cpu_pct: Option<f64>,
    /// Whether the trial met every bound.
    pub pass: bool,
}

/// Everything one SVG draws.
#[derive(Debug, Clone, Copy)]
pub struct Plot<'a> {
    /// Title (relay, calls, rate, date).
    pub title: &'a str,
    /// Latency percentile spectrum: (percentile, e.g. 99.9, latency µs),
    /// percentiles ascending.
    pub spectrum: &'a [(f64, u64)],
    /// Per-second figures.
    pub seconds: &'a [SecondRow],
    /// `--find-max` trials in the order run (empty otherwise).
    pub ramp: &'a [RampPoint],
}

/// Width of the SVG, px.
const WIDTH: u32 = 1200;
/// Height of the band at the top holding the title, px.
const TITLE_H: u32 = 50;
/// Height of the spectrum panel, px.
const SPECTRUM_H: u32 = 420;
/// Height of the per-second packets panel, px.
const PACKETS_H: u32 = 320;
/// Height of every other panel, px.
const SMALL_H: u32 = 260;
/// Lines with at most this many points also get a marker at each point.
const MARK_MAX: usize = 120;
/// Upper bound of the nines scale: for p < 100, 1 - p/100 is at least about
/// 1e-16 in f64, so x = -log10(1 - p/100) stays below 17.
const NINES_MAX: f64 = 17.0;

/// Panel titles (also what the tests look for).
const T_SPECTRUM: &str = "Latency percentile spectrum";
const T_PACKETS: &str = "Per second: packets";
const T_P99: &str = "p99 latency per second";
const T_RAMP_LOSS: &str = "find-max ramp: loss %";
const T_RAMP_P99: &str = "find-max ramp: p99 latency";
const T_RAMP_CPU: &str = "find-max ramp: relay CPU %";

/// Draws `plot` as an SVG file at `path`.
///
/// The SVG is 1200 px wide, with the title on top and panels stacked
/// below it:
///
/// 1. "Latency percentile spectrum": latency (µs) against percentile on a
///    "nines" scale (x = -log10(1 - p/100), labelled 0, 90, 99, 99.9, …);
///    points with p >= 100 (or NaN) are skipped. The latency axis is
///    logarithmic when the largest latency is more than 100 times the
///    smallest positive one (zeros then sit on the bottom edge).
/// 2. "Per second: packets": sent, received and lost per second.
/// 3. "p99 latency per second" (µs, logarithmic by the same rule).
/// 4. Only when `plot.ramp` is non-empty, "find-max ramp" panels against
///    calls offered: loss %, p99 latency (µs), and relay CPU % when any
///    trial measured it. Passing trials are filled green circles, failing
///    ones hollow red circles; the line joins the trials in order of calls.
///
/// Text (title, panel titles, axis labels, legends) is written as SVG
/// `<text>` elements in the generic `sans-serif` family, so no font files
/// are needed to write it; the viewer picks the font.
///
/// Any input is accepted: empty panels show "no data", non-finite values
/// are left out, and degenerate ranges are widened. Errors from drawing or
/// writing the file come back as `Err` with a description; as a last line
/// of defence a panic inside plotters is caught and reported as `Err` too.
pub fn write_svg(path: &Path, plot: &Plot<'_>) -> Result<(), String> {
    let svg = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render(plot)))
        .map_err(|_| "drawing the SVG report: plotters panicked".to_string())??;
    std::fs::write(path, svg).map_err(|e| format!("writing SVG report {}: {e}", path.display()))
}

/// Draws `plot` into an SVG document held in a string.
fn render(plot: &Plot<'_>) -> Result<String, String> {
    let panels = panels(plot);
    let height = TITLE_H + panels.iter().map(|p| p.height).sum::<u32>();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| format!("drawing SVG background: {e}"))?;
        let (title_area, mut rest) = root.split_vertically(TITLE_H);
        let title_style = ("sans-serif", 26)
            .into_font()
            .style(FontStyle::Bold)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        title_area
            .draw_text(
                &clean_text(plot.title),
                &title_style,
                ((WIDTH / 2) as i32, (TITLE_H / 2) as i32),
            )
            .map_err(|e| format!("drawing SVG title: {e}"))?;
        for panel in &panels {
            let (area, below) = rest.split_vertically(panel.height);
            draw_panel(&area, panel)
                .map_err(|e| format!("drawing panel {:?}: {e}", panel.title))?;
            rest = below;
        }
        root.present().map_err(|e| format!("finishing SVG: {e}"))?;
    }
    Ok(buf)
}

/// One chart axis: range in plot units, tick marks and how to label them.
struct Axis {
    /// Lower end, plot units.
    lo: f64,
    /// Upper end, plot units.
    hi: f64,
    /// Labelled ticks (and bold grid lines), plot units.
    ticks: Vec<f64>,
    /// Light grid lines, plot units.
    light: Vec<f64>,
    /// Whether plot units are log10 of data units.
    log: bool,
    /// Labels a tick.
    label: fn(f64) -> String,
    /// Axis description.
    desc: &'static str,
}

impl Axis {
    /// A linear axis over `lo..hi` (widened when degenerate).
    fn linear(lo: f64, hi: f64, desc: &'static str) -> Self {
        let (lo, hi) = widen(lo, hi);
        let mut ticks = nice_ticks(lo, hi);
        // Counts (seconds, calls, packets) get no fractional ticks.
        if INTEGER_AXES.contains(&desc) && ticks.iter().filter(|t| t.fract() == 0.0).count() >= 2 {
            ticks.retain(|t| t.fract() == 0.0);
        }
        Axis {
            lo,
            hi,
            ticks,
            light: Vec::new(),
            log: false,
            label: fmt_num,
            desc,
        }
    }

    /// A value axis from 0 up to a little above the largest of `values`;
    /// logarithmic when `allow_log` and the largest value is more than 100
    /// times the smallest positive one.
    fn values(
        values: impl Iterator<Item = f64> + Clone,
        allow_log: bool,
        desc: &'static str,
    ) -> Self {
        let finite = values.filter(|v| v.is_finite());
        let max = finite.clone().fold(f64::NEG_INFINITY, f64::max);
        let min_pos = finite.filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
        if allow_log && min_pos.is_finite() && max / min_pos > 100.0 {
            let lo = min_pos.log10().floor();
            let mut hi = max.log10().ceil();
            if hi <= lo {
                hi = lo + 1.0;
            }
            if lo.is_finite() && hi.is_finite() && hi - lo <= 400.0 {
                let (lo_k, hi_k) = (lo as i32, hi as i32);
                // At most about ten labelled decades; minor lines (2..9 ×)
                // only when every decade is labelled.
                let step = ((hi_k - lo_k + 9) / 10).max(1);
                let ticks = (lo_k..=hi_k)
                    .step_by(step as usize)
                    .map(f64::from)
                    .collect();
                let light = if step == 1 {
                    (lo_k..hi_k)
                        .flat_map(|k| (2..10).map(move |m| f64::from(k) + f64::from(m).log10()))
                        .collect()
                } else {
                    (lo_k..=hi_k).map(f64::from).collect()
                };
                return Axis {
                    lo,
                    hi,
                    ticks,
                    light,
                    log: true,
                    label: |v| fmt_num(10f64.powf(v)),
                    desc,
                };
            }
        }
        let hi = if max.is_finite() && max > 0.0 {
            max * 1.08
        } else {
            1.0
        };
        Axis::linear(0.0, hi, desc)
    }

    /// Data value to plot units, clamped into the axis; None when not finite.
    fn to_plot(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        let v = if self.log {
            if v > 0.0 { v.log10() } else { self.lo }
        } else {
            v
        };
        Some(v.clamp(self.lo, self.hi))
    }

    /// The plotters coordinate for this axis.
    fn coord(&self) -> TickCoord {
        TickCoord {
            inner: (self.lo..self.hi).into(),
            ticks: self.ticks.clone(),
            light: self.light.clone(),
            label: self.label,
        }
    }
}

/// A linear f64 plotters coordinate with our own ticks and tick labels.
struct TickCoord {
    /// Does the mapping.
    inner: RangedCoordf64,
    /// Labelled ticks and bold grid lines.
    ticks: Vec<f64>,
    /// Light grid lines.
    light: Vec<f64>,
    /// Labels a tick.
    label: fn(f64) -> String,
}

impl Ranged for TickCoord {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for TickCoord {
    fn format(value: &f64) -> String {
        fmt_num(*value)
    }

    fn format_ext(&self, value: &f64) -> String {
        (self.label)(*value)
    }
}

/// One line (with optional pass/fail markers) in a panel.
struct Series {
    /// Legend label (empty: no legend entry).
    name: &'static str,
    /// Colour of the line.
    color: RGBColor,
    /// Points in data units, in drawing order.
    pts: Vec<(f64, f64)>,
    /// Per point, whether the trial passed; draws pass/fail markers.
    pass: Option<Vec<bool>>,
}

/// One chart panel.
struct Panel {
    /// Caption.
    title: &'static str,
    /// Height, px.
    height: u32,
    /// X axis (plot units = data units).
    x: Axis,
    /// Y axis.
    y: Axis,
    /// What to draw.
    series: Vec<Series>,
}

/// Axes (by description) whose values are whole numbers.
const INTEGER_AXES: [&str; 3] = ["second", "calls offered", "packets"];

/// Colour of sent packets and of most lines.
const BLUE_: RGBColor = RGBColor(31, 119, 180);
/// Colour of received packets.
const GREEN_: RGBColor = RGBColor(44, 160, 44);
/// Colour of losses and failing trials.
const RED_: RGBColor = RGBColor(214, 39, 40);
/// Colour of latency lines.
const PURPLE_: RGBColor = RGBColor(148, 103, 189);
/// Colour of CPU lines.
const ORANGE_: RGBColor = RGBColor(255, 127, 14);

/// The panels that `plot` draws, top to bottom.
fn panels(plot: &Plot<'_>) -> Vec<Panel> {
    let mut out = Vec::new();

    // 1. Spectrum.
    let spectrum: Vec<(f64, f64)> = plot
        .spectrum
        .iter()
        .filter(|(p, _)| p.is_finite() && *p < 100.0)
        .map(|&(p, us)| ((-(1.0 - p.max(0.0) / 100.0).log10()).max(0.0), us as f64))
        .filter(|(x, _)| x.is_finite())
        .collect();
    let x_max = spectrum.iter().map(|p| p.0).fold(0.0, f64::max);
    let nines = x_max.ceil().clamp(5.0, NINES_MAX);
    out.push(Panel {
        title: T_SPECTRUM,
        height: SPECTRUM_H,
        x: Axis {
            lo: 0.0,
            hi: nines,
            // At most about eight labelled nines; the rest as light lines.
            ticks: (0..=nines as u32)
                .step_by((nines as usize).div_ceil(8))
                .map(f64::from)
                .collect(),
            light: (0..=nines as u32).map(f64::from).collect(),
            log: false,
            label: nines_label,
            desc: "percentile",
        },
        y: Axis::values(spectrum.iter().map(|p| p.1), true, "latency (µs)"),
        series: vec![Series {
            name: "",
            color: PURPLE_,
            pts: spectrum,
            pass: None,
        }],
    });

    // 2. Packets per second.
    let secs = plot.seconds;
    let (t_lo, t_hi) = min_max(secs.iter().map(|r| r.t as f64));
    let counts = secs
        .iter()
        .flat_map(|r| [r.sent, r.received, r.lost])
        .map(|v| v as f64);
    let line = |name, color, f: fn(&SecondRow) -> u64| Series {
        name,
        color,
        pts: secs.iter().map(|r| (r.t as f64, f(r) as f64)).collect(),
        pass: None,
    };
    out.push(Panel {
        title: T_PACKETS,
        height: PACKETS_H,
        x: Axis::linear(t_lo, t_hi, "second"),
        y: Axis::values(counts, false, "packets"),
        series: vec![
            line("sent", BLUE_, |r| r.sent),
            line("received", GREEN_, |r| r.received),
            line("lost", RED_, |r| r.lost),
        ],
    });

    // 3. p99 per second.
    out.push(Panel {
        title: T_P99,
        height: SMALL_H,
        x: Axis::linear(t_lo, t_hi, "second"),
        y: Axis::values(
            secs.iter().map(|r| r.p99_us as f64),
            true,
            "p99 latency (µs)",
        ),
        series: vec![line("", PURPLE_, |r| r.p99_us)],
    });

    // 4. Ramp.
    if !plot.ramp.is_empty() {
        let mut ramp = plot.ramp.to_vec();
        ramp.sort_by_key(|r| r.calls);
        let (c_lo, c_hi) = min_max(ramp.iter().map(|r| r.calls as f64));
        let (c_lo, c_hi) = widen(c_lo, c_hi);
        let pad = (c_hi - c_lo) * 0.03;
        let x = || Axis::linear(c_lo - pad, c_hi + pad, "calls offered");
        let ramp_series = |name, color, f: &dyn Fn(&RampPoint) -> Option<f64>| {
            let kept: Vec<_> = ramp.iter().filter_map(|r| Some((r, f(r)?))).collect();
            Series {
                name,
                color,
                pts: kept.iter().map(|(r, v)| (r.calls as f64, *v)).collect(),
                pass: Some(kept.iter().map(|(r, _)| r.pass).collect()),
            }
        };
        let loss = ramp_series("loss %", BLUE_, &|r| Some(r.loss_pct));
        out.push(Panel {
            title: T_RAMP_LOSS,
            height: SMALL_H,
            x: x(),
            y: Axis::values(loss.pts.iter().map(|p| p.1), false, "loss (%)"),
            series: vec![loss],
        });
        let p99 = ramp_series("p99", PURPLE_, &|r| Some(r.p99_us as f64));
        out.push(Panel {
            title: T_RAMP_P99,
            height: SMALL_H,
            x: x(),
            y: Axis::values(p99.pts.iter().map(|p| p.1), true, "p99 latency (µs)"),
            series: vec![p99],
        });
        if ramp.iter().any(|r| r.relay_cpu_pct.is_some()) {
            let cpu = ramp_series("relay CPU %", ORANGE_, &|r| r.relay_cpu_pct);
            out.push(Panel {
                title: T_RAMP_CPU,
                height: SMALL_H,
                x: x(),
                y: Axis::values(
                    cpu.pts.iter().map(|p| p.1),
                    false,
                    "relay CPU (% of a core)",
                ),
                series: vec![cpu],
            });
        }
    }
    out
}

/// Draws one panel on `area`.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 20))
        .margin(10)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(panel.x.coord(), panel.y.coord())?;
    chart
        .configure_mesh()
        .x_desc(panel.x.desc)
        .y_desc(panel.y.desc)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.15))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;

    let mut any_point = false;
    let mut legend = false;
    for s in &panel.series {
        let pts: Vec<(f64, f64)> = s
            .pts
            .iter()
            .filter_map(|&(x, y)| Some((panel.x.to_plot(x)?, panel.y.to_plot(y)?)))
            .collect();
        // Pass/fail flags follow the points they belong to (dropped together).
        let flags: Option<Vec<bool>> = s.pass.as_ref().map(|flags| {
            s.pts
                .iter()
                .zip(flags)
                .filter(|((x, y), _)| x.is_finite() && y.is_finite())
                .map(|(_, f)| *f)
                .collect()
        });
        any_point |= !pts.is_empty();
        let color = s.color;
        // Sent is drawn wider, so that received on top of it leaves it visible.
        let width = if s.name == "sent" { 5 } else { 2 };
        let anno = chart.draw_series(LineSeries::new(
            pts.iter().copied(),
            color.stroke_width(width),
        ))?;
        if !s.name.is_empty() && !pts.is_empty() {
            legend = true;
            anno.label(s.name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
        }
        match flags {
            Some(flags) => {
                let marks = |want: bool| {
                    pts.iter()
                        .zip(&flags)
                        .filter(move |(_, f)| **f == want)
                        .map(|(p, _)| *p)
                };
                let pass_style = GREEN_.filled();
                let fail_style = RED_.stroke_width(2);
                if marks(true).next().is_some() {
                    legend = true;
                    chart
                        .draw_series(marks(true).map(|p| Circle::new(p, 5, pass_style)))?
                        .label("pass")
                        .legend(move |p| Circle::new(p, 5, pass_style));
                }
                if marks(false).next().is_some() {
                    legend = true;
                    chart
                        .draw_series(marks(false).map(|p| Circle::new(p, 5, fail_style)))?
                        .label("fail")
                        .legend(move |p| Circle::new(p, 5, fail_style));
                }
            }
            None if pts.len() <= MARK_MAX => {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled())))?;
            }
            None => {}
        }
    }

    if !any_point {
        let style = ("sans-serif", 18)
            .into_font()
            .color(&BLACK.mix(0.5))
            .pos(Pos::new(HPos::Center, VPos::Center));
        let mid = (
            (panel.x.lo + panel.x.hi) / 2.0,
            (panel.y.lo + panel.y.hi) / 2.0,
        );
        chart.draw_series(std::iter::once(Text::new("no data", mid, style)))?;
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    Ok(())
}

/// Label of tick `x` on the nines scale: 0, 90, 99, 99.9, 99.99, …
fn nines_label(x: f64) -> String {
    let k = x.round();
    if (x - k).abs() > 1e-9 || k < 0.0 {
        return format!("{:.4}", 100.0 * (1.0 - 10f64.powf(-x)));
    }
    match k as u32 {
        0 => "0".to_string(),
        1 => "90".to_string(),
        n => format!("99.{}", "9".repeat(n as usize - 2))
            .trim_end_matches('.')
            .to_string(),
    }
}

/// Smallest and largest finite value, (0, 0) when there are none.
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo <= hi { (lo, hi) } else { (0.0, 0.0) }
}

/// `lo..hi` made finite, ordered and wide enough to draw: an empty or
/// too-narrow range grows around its middle (not below 0 when `lo >= 0`).
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let scale = lo.abs().max(hi.abs());
    if hi - lo > scale * 1e-9 && hi - lo > 1e-12 {
        return (lo, hi);
    }
    let pad = (scale * 0.05).max(1.0);
    let new_lo = if lo >= 0.0 && lo - pad < 0.0 {
        0.0
    } else {
        lo - pad
    };
    (new_lo, hi + pad)
}

/// About eight round (1, 2 or 5 × 10^k) tick positions within `lo..=hi`.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 8.0;
    if !(raw.is_finite() && raw > 0.0) {
        return vec![lo, hi];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let (first, last) = ((lo / step).ceil(), (hi / step).floor());
    if !(first.is_finite() && last.is_finite() && last >= first && last - first <= 100.0) {
        return vec![lo, hi];
    }
    (0..=(last - first) as u32)
        .map(|i| (first + f64::from(i)) * step)
        .collect()
}

/// A short label for a tick value: plain up to 99999, then k, M, G, …, Y,
/// then scientific.
fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let a = v.abs();
    if a < 1e5 {
        let s = trim(format!("{v:.3}"));
        return if s == "-0" { "0".to_string() } else { s };
    }
    if a >= 1e27 {
        return format!("{v:.1e}");
    }
    let mut scaled = a;
    let mut unit = 0;
    const UNITS: [&str; 9] = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];
    while scaled >= 1000.0 && unit < UNITS.len() - 1 {
        scaled /= 1000.0;
        unit += 1;
    }
    let sign = if v < 0.0 { "-" } else { "" };
    format!("{sign}{}{}", trim(format!("{scaled:.2}")), UNITS[unit])
}

/// `s` without characters that XML 1.0 does not allow in text.
fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::events::Event;
    use std::path::PathBuf;

    /// A fresh directory for this test's files.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plot-svg-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `plot`, checks the file is a well-formed SVG and returns
    /// its text content (the `<text>` elements, joined by newlines).
    fn write_and_check(name: &str, plot: &Plot<'_>) -> String {
        let path = temp_dir(name).join("report.svg");
        write_svg(&path, plot).unwrap();
        assert!(path.exists());
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.starts_with("<svg"),
            "{name}: starts {:?}",
            &svg[..svg.len().min(40)]
        );
        let mut reader = Reader::from_str(&svg);
        let (mut texts, mut cur, mut depth, mut roots) =
            (Vec::new(), String::new(), 0usize, 0usize);
        loop {
            let event = reader.read_event();
            if matches!(
                event,
                Ok(Event::Start(_) | Event::End(_) | Event::Empty(_) | Event::Eof)
            ) {
                if !cur.trim().is_empty() {
                    texts.push(cur.trim().to_string());
                }
                cur.clear();
            }
            match event {
                Ok(Event::Eof) => break,
                Ok(Event::Start(_)) => {
                    roots += usize::from(depth == 0);
                    depth += 1;
                }
                Ok(Event::End(_)) => depth -= 1,
                Ok(Event::Empty(_)) => roots += usize::from(depth == 0),
                Ok(Event::Text(t)) => cur.push_str(&t.into_inner()),
                Ok(Event::GeneralRef(r)) => cur.push_str(match &*r.into_inner() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("{name}: unknown entity {other}"),
                }),
                Ok(_) => {}
                Err(e) => panic!(
                    "{name}: not well-formed at {}: {e}",
                    reader.buffer_position()
                ),
            }
        }
        assert_eq!((depth, roots), (0, 1), "{name}: one closed root element");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        texts.join("\n")
    }

    /// The titles of the panels drawn for every plot.
    const ALWAYS: [&str; 3] = [T_SPECTRUM, T_PACKETS, T_P99];
    /// The titles of the ramp panels.
    const RAMP: [&str; 3] = [T_RAMP_LOSS, T_RAMP_P99, T_RAMP_CPU];

    fn spectrum() -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        let mut p = 50.0;
        while p <= 99.999 + 1e-9 {
            out.push((p, (200.0 + 30.0 / (100.0 - p)) as u64));
            p = 100.0 - (100.0 - p) * 0.8;
        }
        out.push((99.999, 40_000));
        out
    }

    fn seconds(n: u64) -> Vec<SecondRow> {
        (0..n)
            .map(|t| SecondRow {
                t,
                sent: 50_000,
                received: 50_000 - t % 7 * 3,
                lost: t % 7 * 3,
                p50_us: 180 + t,
                p99_us: 900 + 40 * (t % 5),
                max_us: 5_000 + t * 100,
            })
            .collect()
    }

    #[test]
    fn realistic_run() {
        let (spectrum, seconds) = (spectrum(), seconds(30));
        let plot = Plot {
            title: "relay 10.0.0.1:5000, 1000 calls, 50 pps, 2024-05-01",
            spectrum: &spectrum,
            seconds: &seconds,
            ramp: &[],
        };
        let text = write_and_check("realistic", &plot);
        for t in ALWAYS.iter().chain([&plot.title]) {
            assert!(text.contains(t), "missing {t:?} in {text}");
        }
        for t in RAMP {
            assert!(!text.contains(t), "unexpected {t:?}");
        }
        for label in [
            "90",
            "99.9",
            "99.999",
            "latency (µs)",
            "packets",
            "second",
            "sent",
            "lost",
        ] {
            assert!(text.lines().any(|l| l == label), "missing label {label:?}");
        }
    }

    #[test]
    fn with_ramp() {
        let (spectrum, seconds) = (spectrum(), seconds(30));
        let ramp: Vec<RampPoint> = [1000, 2000, 4000, 8000, 6000, 7000, 6500, 6750]
            .into_iter()
            .map(|calls| RampPoint {
                calls,
                loss_pct: if calls > 6600 {
                    (calls - 6600) as f64 / 100.0
                } else {
                    0.0
                },
                p99_us: 500 + calls / 2,
                relay_cpu_pct: Some(calls as f64 / 70.0),
                pass: calls <= 6600,
            })
            .collect();
        let plot = Plot {
            title: "find-max",
            spectrum: &spectrum,
            seconds: &seconds,
            ramp: &ramp,
        };
        let text = write_and_check("ramp", &plot);
        for t in ALWAYS.iter().chain(&RAMP) {
            assert!(text.contains(t), "missing {t:?}");
        }
        for label in ["pass", "fail", "calls offered"] {
            assert!(text.lines().any(|l| l == label), "missing label {label:?}");
        }

        // Without CPU figures there is no CPU panel.
        let no_cpu: Vec<_> = ramp
            .iter()
            .map(|r| RampPoint {
                relay_cpu_pct: None,
                ..*r
            })
            .collect();
        let text = write_and_check(
            "ramp-no-cpu",
            &Plot {
                ramp: &no_cpu,
                ..plot
            },
        );
        assert!(text.contains(T_RAMP_LOSS) && !text.contains(T_RAMP_CPU));
    }

    #[test]
    fn degenerate_inputs() {
        let empty = Plot {
            title: "",
            spectrum: &[],
            seconds: &[],
            ramp: &[],
        };
        let text = write_and_check("empty", &empty);
        for t in ALWAYS {
            assert!(text.contains(t), "missing {t:?}");
        }
        assert!(text.contains("no data"));

        let row = |v: u64| SecondRow {
            t: v,
            sent: v,
            received: v,
            lost: v,
            p50_us: v,
            p99_us: v,
            max_us: v,
        };
        let trial = |v: u64, loss: f64, cpu: Option<f64>, pass| RampPoint {
            calls: v,
            loss_pct: loss,
            p99_us: v,
            relay_cpu_pct: cpu,
            pass,
        };

        // One point each.
        let one = Plot {
            title: "one point",
            spectrum: &[(99.0, 1234)],
            seconds: &[row(7)],
            ramp: &[trial(100, 0.5, Some(12.0), true)],
        };
        let text = write_and_check("one", &one);
        for t in ALWAYS.iter().chain(&RAMP) {
            assert!(text.contains(t), "missing {t:?}");
        }

        // All zeros.
        let zeros = Plot {
            title: "zeros",
            spectrum: &[(0.0, 0), (50.0, 0), (99.0, 0)],
            seconds: &[row(0), row(0)],
            ramp: &[trial(0, 0.0, Some(0.0), false), trial(0, 0.0, None, true)],
        };
        let text = write_and_check("zeros", &zeros);
        assert!(text.contains(T_RAMP_CPU));

        // NaN and infinite loss, NaN CPU, odd percentiles, huge values,
        // and a title that needs escaping.
        let big = u64::MAX;
        let odd = Plot {
            title: "a < b & c > \"d\" 'e'\u{1}\ttab",
            spectrum: &[
                (f64::NAN, 5),
                (-5.0, 1),
                (0.0, 0),
                (99.99999999999999, big),
                (100.0, 7),
                (f64::INFINITY, 8),
            ],
            seconds: &[row(0), row(big), row(big - 1)],
            ramp: &[
                trial(1, f64::NAN, Some(f64::NAN), false),
                trial(big, f64::INFINITY, Some(1e300), false),
                trial(5, -3.0, Some(-1.0), true),
            ],
        };
        let text = write_and_check("odd", &odd);
        assert!(text.contains("a < b & c > \"d\" 'e'\u{FFFD} tab"), "{text}");

        // Only NaN losses: the loss panel is empty but drawn.
        let nan = Plot {
            title: "nan",
            spectrum: &[(100.0, 1)],
            seconds: &[],
            ramp: &[
                trial(10, f64::NAN, None, false),
                trial(20, f64::NAN, None, true),
            ],
        };
        let text = write_and_check("nan", &nan);
        assert!(text.contains(T_RAMP_LOSS) && !text.contains(T_RAMP_CPU));
    }

    #[test]
    fn log_axis_only_for_wide_ranges() {
        let narrow = Axis::values([10.0, 900.0].into_iter(), true, "");
        assert!(!narrow.log);
        let wide = Axis::values([0.0, 10.0, 1001.0].into_iter(), true, "");
        assert!(wide.log);
        assert_eq!((wide.lo, wide.hi), (1.0, 4.0));
        assert_eq!(wide.to_plot(0.0), Some(1.0));
        assert!(!Axis::values([1.0, 1e6].into_iter(), false, "").log);
    }

    #[test]
    fn helpers() {
        let labels: Vec<_> = (0..=5).map(|k| nines_label(f64::from(k))).collect();
        assert_eq!(labels, ["0", "90", "99", "99.9", "99.99", "99.999"]);
        assert_eq!(widen(3.0, 3.0), (2.0, 4.0));
        assert_eq!(widen(0.0, 0.0), (0.0, 1.0));
        assert_eq!(widen(f64::NAN, 1.0), (0.0, 1.0));
        assert_eq!(nice_ticks(0.0, 1.0).len(), 6);
        assert_eq!(fmt_num(0.30000000000000004), "0.3");
        assert_eq!(fmt_num(1500.0), "1500");
        assert_eq!(fmt_num(2.5e6), "2.5M");
        assert_eq!(fmt_num(u64::MAX as f64), "18.45E");
        assert_eq!(fmt_num(-1e300), "-1.0e300");
    }

    #[test]
    fn io_error_is_reported() {
        let path = temp_dir("io").join("no-such-dir").join("x.svg");
        let plot = Plot {
            title: "t",
            spectrum: &[],
            seconds: &[],
            ramp: &[],
        };
        let err = write_svg(&path, &plot).unwrap_err();
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
        assert!(err.contains("writing SVG report"), "{err}");
    }
}

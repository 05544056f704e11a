//! `loadgen compare`: mediarelay and rtpengine side by side on loopback,
//! with the same port range, thread count and load, alternating (the order
//! rotates every round), each relay freshly started for every round; the
//! table shows the median of the rounds and the ratio mediarelay /
//! rtpengine.
//!
//! Each round also runs the same load with no relay at all (each call's
//! two sockets streaming straight to each other): what the machine spends
//! on the load itself. A relay's CPU over that baseline, all threads
//! counted, is its whole cost wherever the kernel charged it, including
//! work done in the generator's threads (on loopback a sender delivers its
//! packets, so a kernel fast path runs in the generator's context).

use std::path::PathBuf;

use crate::figures::Figures;
use crate::relay::{self, Options, Target};
use crate::setup::{self, SetupOptions};

/// How to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Load and relay settings (`calls`, `duration`, thread count...).
    pub relay: Options,
    /// Set-up run settings.
    pub setup: SetupOptions,
    /// Rounds (medians are taken over them).
    pub rounds: usize,
    /// Run the `--find-max` search too, up to this many calls.
    pub find_max: Option<u32>,
    /// Search precision, calls.
    pub precision: u32,
    /// The rtpengine binary.
    pub rtpengine: PathBuf,
    /// Run the no-relay baseline every round.
    pub baseline: bool,
}

/// The generator's local port range for a comparison: apart from the
/// relays' `relay` range (the two would otherwise take each other's ports),
/// with room for `calls` calls (two sockets per call on even ports: four
/// ports a call). The relay command's default (10000-29999) where it is
/// apart, else the ports just above the relays' range, else just below.
pub fn generator_ports(relay: (u16, u16), calls: u32) -> Result<(u16, u16), String> {
    let need = calls.max(1).saturating_mul(4).saturating_add(64);
    let apart = |r: (u32, u32)| r.1 < u32::from(relay.0) || r.0 > u32::from(relay.1);
    let default = (10_000u32, 29_999u32);
    let above = (
        u32::from(relay.1) + 1,
        (u32::from(relay.1) + need).min(65_535),
    );
    let below = (
        u32::from(relay.0).saturating_sub(need).max(1_024),
        u32::from(relay.0).saturating_sub(1),
    );
    [default, above, below]
        .into_iter()
        .find(|&r| r.0 <= r.1 && r.1 - r.0 + 1 >= need && apart(r))
        .map(|r| (r.0 as u16, r.1 as u16))
        .ok_or_else(|| {
            format!(
                "no room for the generator's {need} local ports apart from --relay-ports {}-{}: give --local-ports",
                relay.0, relay.1
            )
        })
}

/// One relay's figures in one round.
#[derive(Debug, Clone, Default)]
struct Round {
    values: Vec<(&'static str, Option<f64>)>,
    /// What made runs of this round fail their checks, for the notes.
    notes: Vec<String>,
}

impl Round {
    /// The figure `key` of this round, if measured.
    fn get(&self, key: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| *v)
    }
}

/// The figures compared, in table order: (key, label, lower is better).
const ROWS: &[(&str, &str, bool)] = &[
    ("cpu_ns_per_pkt", "relay CPU per relayed packet, ns", true),
    ("cpu_pct", "relay CPU, % of one core", true),
    (
        "system_ns_per_pkt",
        "all threads' CPU per relayed packet, ns",
        true,
    ),
    (
        "system_less_gen_ns_per_pkt",
        "all threads' CPU but the generator's, per relayed packet, ns",
        true,
    ),
    (
        "added_ns_per_pkt",
        "all threads' CPU over the no-relay baseline, per relayed packet, ns",
        true,
    ),
    ("latency_p50_us", "added latency p50, us", true),
    ("latency_p99_us", "added latency p99, us", true),
    ("latency_p999_us", "added latency p99.9, us", true),
    ("loss_pct", "loss, %", true),
    (
        "fast_path_pct",
        "relayed packets the kernel fast path forwarded (whole run), %",
        false,
    ),
    (
        "valid_runs",
        "fixed-load runs with a valid generator",
        false,
    ),
    ("ndr_calls", "max calls with zero loss (NDR)", false),
    ("pdr_calls", "max calls within --max-loss (PDR)", false),
    (
        "ndr_pps_per_core",
        "max lossless relayed pps per relay thread",
        false,
    ),
    ("setups_per_s", "call set-ups per second", false),
    ("offer_p50_us", "offer latency p50, us", true),
    ("offer_p99_us", "offer latency p99, us", true),
    (
        "first_packet_p50_us",
        "offer to first relayed packet p50, us",
        true,
    ),
    (
        "setup_cpu_us",
        "relay CPU per call set-up and teardown, us",
        true,
    ),
];

fn measure(o: &CompareOptions, target: &mut Target) -> Result<Round, String> {
    let mut r = Round::default();
    let t = relay::trial(&o.relay, target, o.relay.calls)?;
    let l = t.latency.from_sent();
    r.values.push(("cpu_ns_per_pkt", t.relay_ns_per_pkt()));
    r.values.push(("fast_path_pct", t.fast_path_share_pct()));
    r.values.push(("cpu_pct", t.relay_cpu_pct()));
    r.values.push(("system_ns_per_pkt", t.system_ns_per_pkt()));
    r.values.push((
        "system_less_gen_ns_per_pkt",
        t.system_less_generator_ns_per_pkt(),
    ));
    r.values.push(("latency_p50_us", Some(l.p50 as f64)));
    r.values.push(("latency_p99_us", Some(l.p99 as f64)));
    r.values.push(("latency_p999_us", Some(l.p999 as f64)));
    r.values.push(("loss_pct", Some(t.totals.loss_pct())));
    r.values.push((
        "valid_runs",
        Some(if matches!(t.validity, crate::audit::Validity::Valid) {
            1.0
        } else {
            0.0
        }),
    ));
    let fails = t.failures(&o.relay);
    if !fails.is_empty() {
        let note = format!("{}: fixed load: {}", target.name, fails.join("; "));
        eprintln!("  {note}");
        r.notes.push(note);
    }
    if let Some(max) = o.find_max {
        let s = relay::find_max(&o.relay, target, 1, max, o.precision, |_, _| {})?;
        r.values.push(("ndr_calls", s.ndr_calls.map(f64::from)));
        r.values.push(("pdr_calls", s.pdr_calls.map(f64::from)));
        // Each call relays `pps` packets each way.
        let threads = o.relay.embedded.threads.unwrap_or(1).max(1) as f64;
        r.values.push((
            "ndr_pps_per_core",
            s.ndr_calls
                .map(|c| f64::from(c) * 2.0 * f64::from(o.relay.pps) / threads),
        ));
        if s.pdr_calls == Some(max) {
            r.notes.push(format!(
                "{}: the search passed at its ceiling ({max} calls, --max-calls): the relay carries at least that",
                target.name
            ));
        }
        // What stopped the search: the smallest failing trial's reasons.
        if let Some((t, f)) = s
            .trials
            .iter()
            .filter(|(_, f)| !f.is_empty())
            .min_by_key(|(t, _)| t.calls)
        {
            r.notes.push(format!(
                "{}: search stopped by {} calls: {}",
                target.name,
                t.calls,
                f.join("; ")
            ));
        }
    }
    let s = setup::run(&o.setup, target)?;
    r.values.push(("setups_per_s", Some(s.setups_per_s())));
    r.values
        .push(("offer_p50_us", Some(s.offer.value_at_quantile(0.5) as f64)));
    r.values
        .push(("offer_p99_us", Some(s.offer.value_at_quantile(0.99) as f64)));
    r.values.push(("setup_cpu_us", s.relay_cpu_us_per_call()));
    if o.setup.first_packet {
        r.values.push((
            "first_packet_p50_us",
            Some(s.first_packet.value_at_quantile(0.5) as f64),
        ));
    }
    Ok(r)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The comparison's outcome: a printable table and the figures.
#[derive(Debug)]
pub struct Comparison {
    /// A Markdown table: figure, mediarelay, rtpengine, ratio.
    pub table: String,
    /// `compare.mediarelay.<key>`, `compare.rtpengine.<key>`,
    /// `compare.ratio.<key>` (medians).
    pub figures: Figures,
}

/// Runs the comparison.
pub fn run(o: &CompareOptions) -> Result<Comparison, String> {
    let mut ours: Vec<Round> = Vec::new();
    let mut theirs: Vec<Round> = Vec::new();
    // The no-relay run's all-threads CPU per packet, per round.
    let mut base: Vec<Option<f64>> = Vec::new();
    let mut base_notes: Vec<String> = Vec::new();
    let mut names = (String::new(), String::new());
    let turns = if o.baseline { 3 } else { 2 };
    for round in 0..o.rounds.max(1) {
        let mut base_here = None;
        for k in 0..turns {
            // Rotated each round (each run in each position over `turns`
            // rounds), and in reverse order in the next `turns` rounds (each
            // run after each other one).
            let k = if (round / turns) % 2 == 1 {
                turns - 1 - k
            } else {
                k
            };
            let turn = (round + k) % turns;
            if turn == 2 {
                eprintln!("round {}: no relay (baseline)", round + 1);
                let mut target = Target::direct();
                let t = relay::trial(&o.relay, &mut target, o.relay.calls)?;
                let fails = t.failures(&o.relay);
                if !fails.is_empty() {
                    let note = format!("no-relay baseline: {}", fails.join("; "));
                    eprintln!("  {note}");
                    base_notes.push(note);
                }
                base_here = t.system_ns_per_pkt();
                continue;
            }
            let rtpengine_turn = turn == 1;
            let mut target = if rtpengine_turn {
                Target::rtpengine(&o.rtpengine, &o.relay)?
            } else {
                Target::open(&Options {
                    ng: None,
                    direct: false,
                    ..o.relay.clone()
                })?
            };
            eprintln!("round {}: {}", round + 1, target.name);
            let r = measure(o, &mut target)?;
            if rtpengine_turn {
                names.1 = target.name.clone();
                theirs.push(r);
            } else {
                names.0 = target.name.clone();
                ours.push(r);
            }
        }
        base.push(base_here);
    }
    // Each relay's CPU over the baseline of its own round.
    for rounds in [&mut ours, &mut theirs] {
        for (r, b) in rounds.iter_mut().zip(&base) {
            let sys = r.get("system_ns_per_pkt");
            let added = sys.zip(*b).map(|(s, b)| s - b);
            r.values.push(("added_ns_per_pkt", added));
            if added.is_some_and(|a| a < 0.0) {
                r.notes.push(format!(
                    "a relay's CPU over the no-relay baseline came out negative ({:.0} ns per packet): at this load the difference is within the runs' noise",
                    added.unwrap_or_default()
                ));
            }
        }
    }
    let med =
        |rounds: &[Round], key: &str| median(rounds.iter().filter_map(|r| r.get(key)).collect());
    let mut figures = Figures::quiet();
    figures.put("compare.mediarelay.name", names.0.as_str());
    figures.put("compare.rtpengine.name", names.1.as_str());
    figures.put("compare.rounds", o.rounds as u64);
    let base_median = median(base.iter().flatten().copied().collect());
    figures.put("compare.baseline.system_ns_per_pkt", base_median);
    figures.put("compare.calls", o.relay.calls);
    figures.put("compare.pps", o.relay.pps);
    figures.put(
        "compare.relay_threads",
        o.relay.embedded.threads.map(|t| t as u64),
    );
    figures.put("compare.duration_s", o.relay.duration.as_secs_f64());
    figures.put("compare.warmup_s", o.relay.warmup.as_secs_f64());
    let e = &o.relay.embedded;
    figures.put(
        "compare.relay_ports",
        format!("{}-{}", e.port_min, e.port_max),
    );
    figures.put(
        "compare.local_ports",
        format!("{}-{}", o.relay.local_ports.0, o.relay.local_ports.1),
    );
    // The embedded mediarelay's settings as given (null: its defaults).
    figures.put(
        "compare.mediarelay.batch_wait_us",
        e.batch_wait_us.map(u64::from),
    );
    figures.put("compare.mediarelay.fast_path", e.fast_path.clone());
    let warmup = if o.relay.warmup.is_zero() {
        String::new()
    } else {
        format!(" (CPU after {} s)", o.relay.warmup.as_secs_f64())
    };
    let mut table = format!(
        "| {} calls, {} pps each way, {} s{warmup}, relay threads {}; medians of {} | {} | {} | ratio |\n|---|---:|---:|---:|\n",
        o.relay.calls,
        o.relay.pps,
        o.relay.duration.as_secs_f64(),
        o.relay
            .embedded
            .threads
            .map_or("default".to_string(), |t| t.to_string()),
        o.rounds,
        names.0,
        names.1
    );
    let sum =
        |rounds: &[Round], key: &str| Some(rounds.iter().filter_map(|r| r.get(key)).sum::<f64>());
    for (key, label, _) in ROWS {
        // A count over the rounds, not a median.
        let (a, b) = if *key == "valid_runs" {
            (sum(&ours, key), sum(&theirs, key))
        } else {
            (med(&ours, key), med(&theirs, key))
        };
        if a.is_none() && b.is_none() {
            continue;
        }
        // No ratio of counts, nor of a difference that came out negative.
        let ratio = match (a, b) {
            _ if *key == "valid_runs" => None,
            (Some(a), Some(b)) if b > 0.0 && a >= 0.0 => Some(a / b),
            _ => None,
        };
        figures.put(&format!("compare.mediarelay.{key}"), a);
        figures.put(&format!("compare.rtpengine.{key}"), b);
        figures.put(
            &format!("compare.ratio.{key}"),
            ratio.map(|r| (r * 1000.0).round() / 1000.0),
        );
        let show = |v: Option<f64>| match v {
            Some(v) if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
            Some(v) if v.abs() >= 1.0 => format!("{v:.1}"),
            Some(v) => format!("{v:.3}"),
            None => "-".into(),
        };
        table.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            show(a),
            show(b),
            ratio.map_or("-".into(), |r| format!("{r:.2}"))
        ));
    }
    if let Some(b) = base_median {
        table.push_str(&format!(
            "\nNo-relay baseline (the same load streamed straight between each call's sockets), all threads' CPU per packet, median: {b:.0} ns\n"
        ));
        // The differences behind the medians, round by round.
        let rounds_of = |rounds: &[Round]| -> Vec<f64> {
            rounds
                .iter()
                .filter_map(|r| r.get("added_ns_per_pkt"))
                .collect()
        };
        let show = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (a, b) = (rounds_of(&ours), rounds_of(&theirs));
        table.push_str(&format!(
            "Over the baseline, ns per relayed packet, round by round: {} {}; {} {}\n",
            names.0,
            show(&a),
            names.1,
            show(&b)
        ));
        figures.put(
            "compare.mediarelay.added_ns_per_pkt_rounds",
            serde_json::Value::from(a),
        );
        figures.put(
            "compare.rtpengine.added_ns_per_pkt_rounds",
            serde_json::Value::from(b),
        );
    }
    let notes: Vec<String> = ours
        .iter()
        .chain(&theirs)
        .flat_map(|r| r.notes.iter().cloned())
        .chain(base_notes)
        .collect();
    if !notes.is_empty() {
        table.push_str("\nNotes (runs that failed a check, searches that hit their ceiling):\n");
        for n in &notes {
            table.push_str(&format!("- {n}\n"));
        }
    }
    figures.put(
        "compare.notes",
        serde_json::Value::Array(notes.into_iter().map(serde_json::Value::String).collect()),
    );
    Ok(Comparison { table, figures })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_ports_keep_apart_from_the_relays() {
        // The relay's default range: the generator's default is apart.
        assert_eq!(
            generator_ports((30_000, 44_999), 2_000),
            Ok((10_000, 29_999))
        );
        // Overlapping the default: just above the relays' range.
        assert_eq!(
            generator_ports((10_000, 31_999), 2_400),
            Ok((32_000, 41_663))
        );
        // No room above: just below.
        assert_eq!(
            generator_ports((20_000, 65_000), 1_000),
            Ok((15_936, 19_999))
        );
        // No room anywhere.
        assert!(generator_ports((1_024, 65_535), 100).is_err());
    }
}

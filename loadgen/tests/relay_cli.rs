//! `loadgen relay`, `loadgen relay --find-max` and `loadgen setup` end to
//! end through the built binary and its embedded relay (a child process of
//! the binary) on loopback: exit status, the report files and the fixed
//! JSON names other tools read. Each test has its own port ranges (relay
//! 30000-33999, generator 20000-23999), so they may run in parallel. The
//! tests run the debug build beside each other on a small machine, so the
//! generator's send-lag bound is widened here (CI runs the release build
//! at the default bound).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("loadgen-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen")
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn figure<'a>(report: &'a Value, path: &str) -> &'a Value {
    let v = path.split('.').fold(report, |v, seg| &v[seg]);
    assert!(
        v != &Value::Null || path.ends_with("sessions_after"),
        "no figure {path}"
    );
    v
}

fn count(report: &Value, path: &str) -> u64 {
    figure(report, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a count: {}", figure(report, path)))
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn relay_run_accounts_for_every_packet_and_leaves_no_call() {
    let dir = TempDir::new("relay");
    let prefix = dir.0.join("run");
    let prefix_s = prefix.to_str().expect("utf-8 path");
    let out = loadgen(&[
        "relay",
        "--calls",
        "20",
        "--duration",
        "2",
        "--quiet",
        "--relay-ports",
        "30000-30999",
        "--local-ports",
        "20000-20999",
        "--report",
        prefix_s,
        "--max-send-lag-us",
        "20000",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("result: pass"), "{stdout}");
    let r = read_json(&prefix.with_extension("json"));
    assert_eq!(r["schema"], "loadgen/1");
    // 20 calls x 2 directions x 50 pps x 2 s, every one relayed.
    assert_eq!(count(&r, "relay.sent"), 4000);
    assert_eq!(count(&r, "relay.received"), 4000);
    for zero in [
        "relay.lost",
        "relay.duplicates",
        "relay.reordered",
        "relay.misdelivered",
        "relay.leftover_calls",
        "relay.setup_failures",
    ] {
        assert_eq!(count(&r, zero), 0, "{zero}");
    }
    assert_eq!(figure(&r, "relay.loss_pct").as_f64(), Some(0.0));
    assert_eq!(figure(&r, "relay.sessions_after").as_i64(), Some(0));
    for p in ["p50", "p90", "p99", "p999", "p9999", "max"] {
        let v = count(&r, &format!("relay.latency_us.{p}"));
        assert!(v >= 1, "latency {p} {v}");
    }
    assert!(count(&r, "relay.latency_us.p50") <= count(&r, "relay.latency_us.max"));
    for p in ["p50", "p99", "max"] {
        assert!(figure(&r, &format!("relay.jitter_ms.{p}")).is_f64());
    }
    let mos_min = figure(&r, "relay.mos.min").as_f64().expect("mos");
    assert!(
        (4.0..=4.5).contains(&mos_min),
        "MOS estimate {mos_min} for a clean path"
    );
    assert!(figure(&r, "relay.mos.p50").as_f64().expect("mos") >= mos_min);
    // The embedded relay's pid is known: its CPU per packet is measured.
    assert!(
        figure(&r, "relay.relay_cpu_ns_per_pkt")
            .as_f64()
            .expect("cpu")
            > 0.0
    );
    assert_eq!(figure(&r, "generator.valid"), &Value::Bool(true));
    // The embedded relay's kernel fast path is reported, whether it took
    // any stream or not (its 3 s learning window is longer than this run).
    assert!(count(&r, "relay.fast_path.streams_at_end") <= 40);
    assert!(count(&r, "relay.fast_path.packets") <= 4000);
    assert!(r["environment"]["cores"].as_u64().expect("cores") >= 1);
    // One JSON line per second, adding up to what was sent.
    let jsonl = std::fs::read_to_string(prefix.with_extension("jsonl")).expect("jsonl");
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!((2..=4).contains(&lines.len()), "{} lines", lines.len());
    let sent: u64 = lines
        .iter()
        .map(|l| l["sent"].as_u64().expect("sent"))
        .sum();
    assert_eq!(sent, 4000);
    for p in ["p50", "p90", "p99", "p999", "p9999", "max"] {
        assert!(lines[0]["latency_us"][p].is_u64(), "per-second {p}");
    }
    let svg = std::fs::read_to_string(prefix.with_extension("svg")).expect("svg");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains("Latency percentile spectrum"));
}

#[test]
fn find_max_reports_the_highest_passing_load() {
    let dir = TempDir::new("findmax");
    let json = dir.0.join("fm");
    let out = loadgen(&[
        "relay",
        "--find-max",
        "--min-calls",
        "5",
        "--max-calls",
        "30",
        "--precision",
        "10",
        "--duration",
        "1",
        "--quiet",
        "--relay-ports",
        "31000-31999",
        "--local-ports",
        "21000-21999",
        "--report",
        json.to_str().expect("utf-8"),
        "--max-send-lag-us",
        "20000",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let r = read_json(&json.with_extension("json"));
    // 30 calls is far below what loopback carries: the first trial passes
    // and ends the search.
    assert_eq!(count(&r, "relay.find_max.pdr_calls"), 30, "{}", show(&out));
    assert_eq!(count(&r, "relay.find_max.ndr_calls"), 30);
    assert_eq!(count(&r, "relay.find_max.pdr_pps"), 3000);
    let trials = figure(&r, "relay.find_max.trials")
        .as_array()
        .expect("trials");
    assert_eq!(trials.len(), 1);
    assert_eq!(trials[0]["pass"], Value::Bool(true));
    let svg = std::fs::read_to_string(json.with_extension("svg")).expect("svg");
    assert!(svg.contains("find-max ramp"));
}

#[test]
fn setup_measures_every_command_and_leaves_no_call() {
    let dir = TempDir::new("setup");
    let json = dir.0.join("setup.json");
    let out = loadgen(&[
        "setup",
        "--calls",
        "200",
        "--concurrency",
        "2",
        "--relay-ports",
        "32000-32999",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let r = read_json(&json);
    assert_eq!(count(&r, "setup.completed"), 200);
    assert_eq!(count(&r, "setup.failed"), 0);
    assert_eq!(count(&r, "setup.leftover_calls"), 0);
    for cmd in ["offer", "answer", "delete", "first_packet"] {
        assert!(count(&r, &format!("setup.{cmd}_us.p50")) >= 1, "{cmd}");
    }
    assert!(figure(&r, "setup.setups_per_s").as_f64().expect("rate") > 0.0);
}

#[test]
fn an_unreachable_relay_is_a_clear_error() {
    // Nothing listens on the discard port of loopback.
    let out = loadgen(&[
        "relay",
        "--ng",
        "127.0.0.1:9",
        "--calls",
        "1",
        "--duration",
        "1",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    let out = loadgen(&[
        "relay",
        "--size",
        "20",
        "--calls",
        "1",
        "--relay-ports",
        "33000-33999",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("packet size"));
    // Command lines that cannot mean a run: exit 2 before anything starts.
    for args in [
        &["relay", "--calls", "0"][..],
        &[
            "relay",
            "--find-max",
            "--min-calls",
            "50",
            "--max-calls",
            "10",
        ],
        &["relay", "--max-loss", "200"],
        &["setup", "--calls", "0"],
    ] {
        let out = loadgen(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
    }
    // A pid that is not there is named, not silently reported as no CPU.
    let out = loadgen(&["relay", "--relay-pid", "4000000", "--calls", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--relay-pid 4000000"));
}

#[test]
fn the_embedded_relays_fast_path_share_is_reported() {
    let dir = TempDir::new("fast-path");
    let json = dir.0.join("fast-path.json");
    let out = loadgen(&[
        "relay",
        "--calls",
        "10",
        "--duration",
        "4",
        "--quiet",
        "--no-report",
        "--relay-fast-path",
        "ebpf",
        "--relay-ports",
        "35000-35999",
        "--local-ports",
        "24000-24999",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--max-send-lag-us",
        "20000",
    ]);
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("embedded relay") {
        // The relay refused to start without its fast path (no BPF
        // privileges or no BPF object here).
        assert!(
            std::env::var_os("MEDIARELAY_REQUIRE_FAST_PATH").is_none(),
            "the fast path is required here: {}",
            show(&out)
        );
        eprintln!(
            "no kernel fast path here: the test is skipped ({})",
            show(&out)
        );
        return;
    }
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("forwarded in the kernel"), "{stdout}");
    let r = read_json(&json);
    assert_eq!(count(&r, "relay.received"), 4000);
    // After each stream's 3 s learning window the kernel forwards its RTP:
    // both directions of every call, and some of the packets.
    assert_eq!(count(&r, "relay.fast_path.streams_at_end"), 20);
    let packets = count(&r, "relay.fast_path.packets");
    assert!(
        (1..5000).contains(&packets),
        "{packets} packets in the kernel"
    );
    let share = figure(&r, "relay.fast_path.share_pct")
        .as_f64()
        .expect("share");
    assert!((share - packets as f64 / 40.0).abs() < 1e-6, "{share}");
}

#[test]
fn direct_runs_the_load_without_a_relay() {
    let dir = TempDir::new("direct");
    let json = dir.0.join("direct.json");
    let out = loadgen(&[
        "relay",
        "--direct",
        "--calls",
        "10",
        "--duration",
        "1",
        "--quiet",
        "--no-report",
        "--local-ports",
        "23000-23999",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--max-send-lag-us",
        "20000",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("through no relay (direct)"), "{stdout}");
    assert!(!stdout.contains("NG "), "no NG in a direct run: {stdout}");
    let r = read_json(&json);
    // 10 calls x 2 directions x 50 pps x 1 s, each straight to the other
    // socket of its call.
    assert_eq!(count(&r, "relay.sent"), 1000);
    assert_eq!(count(&r, "relay.received"), 1000);
    assert_eq!(count(&r, "relay.misdelivered"), 0);
    // No relay process: no relay CPU, no fast path; the machine's CPU is
    // measured.
    assert!(
        r["relay"]["relay_cpu_ns_per_pkt"].is_null(),
        "{}",
        r["relay"]
    );
    assert!(
        r["relay"]["fast_path"]["packets"].is_null(),
        "{}",
        r["relay"]
    );
    assert!(
        figure(&r, "relay.system_cpu_ns_per_pkt")
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );
    // --direct takes no relay.
    let out = loadgen(&["relay", "--direct", "--ng", "127.0.0.1:2223"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

//! `loadgen compare` end to end against Sipwise rtpengine: both relays
//! started by the binary, a fixed-load run, a `--find-max` search and a
//! set-up run against each, the no-relay baseline, the table with both
//! columns and the JSON medians. Needs `rtpengine` on PATH (Debian: `rtpengine-daemon`); where
//! it is missing the test says so and passes, unless
//! `LOADGEN_REQUIRE_RTPENGINE=1` (CI installs it and sets that).

use std::process::Command;

use serde_json::Value;

#[test]
fn compare_runs_both_relays_end_to_end() {
    let found = Command::new("rtpengine").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("LOADGEN_REQUIRE_RTPENGINE").as_deref() != Ok("1"),
            "rtpengine is not on PATH but LOADGEN_REQUIRE_RTPENGINE=1"
        );
        eprintln!("rtpengine not on PATH: compare not run (apt-get install rtpengine-daemon)");
        return;
    }
    let json = std::env::temp_dir().join(format!("loadgen-compare-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "compare",
            "--rounds",
            "1",
            "--calls",
            "20",
            "--duration",
            "1",
            "--max-calls",
            "40",
            // A trial the generator could not keep up with (a noisy,
            // shared machine) fails; the search then goes on down to a
            // load it can keep (10 calls), so a result is found.
            "--precision",
            "10",
            "--setup-calls",
            "50",
            "--relay-ports",
            "34000-34999",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&json).expect("compare JSON");
    let _ = std::fs::remove_file(&json);
    let r: Value = serde_json::from_str(&text).expect("valid JSON");
    let c = &r["compare"];
    assert!(
        c["rtpengine"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("rtpengine")),
        "{c}"
    );
    for relay in ["mediarelay", "rtpengine"] {
        // Every call relayed: no loss, set-ups measured, CPU measured.
        assert_eq!(c[relay]["loss_pct"].as_f64(), Some(0.0), "{relay}: {c}");
        assert!(
            c[relay]["setups_per_s"].as_f64().is_some_and(|v| v > 0.0),
            "{relay}"
        );
        assert!(
            c[relay]["cpu_ns_per_pkt"].as_f64().is_some_and(|v| v > 0.0),
            "{relay}"
        );
        assert!(
            c[relay]["pdr_calls"].as_f64().is_some(),
            "{relay}: search ran"
        );
    }
    assert!(c["ratio"]["cpu_ns_per_pkt"].as_f64().is_some());
    // The no-relay baseline ran, and each relay's CPU over it is given.
    assert!(
        c["baseline"]["system_ns_per_pkt"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{c}"
    );
    for relay in ["mediarelay", "rtpengine"] {
        assert!(
            c[relay]["added_ns_per_pkt"].as_f64().is_some(),
            "{relay}: {c}"
        );
    }
    // The embedded mediarelay's kernel fast path share is measured (0
    // where the host gives it none); rtpengine has none.
    assert!(c["mediarelay"]["fast_path_pct"].is_f64(), "{c}");
    assert!(c["rtpengine"]["fast_path_pct"].is_null(), "{c}");
    // The run's settings are in the report.
    assert_eq!(c["duration_s"].as_f64(), Some(1.0), "{c}");
    assert_eq!(c["warmup_s"].as_f64(), Some(0.0), "{c}");
    assert_eq!(c["relay_ports"], "34000-34999");
    assert_eq!(c["local_ports"], "10000-29999");
    assert!(c["mediarelay"]["batch_wait_us"].is_null(), "{c}");
    assert!(c["mediarelay"]["fast_path"].is_null(), "{c}");
    assert!(stdout.contains("No-relay baseline"), "{stdout}");
    let header = stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("mediarelay") && header.contains("rtpengine"),
        "{stdout}"
    );
}

#[test]
fn compare_refuses_generator_ports_inside_the_relays_range() {
    // Checked before anything starts, rtpengine installed or not.
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "compare",
            "--relay-ports",
            "10000-31999",
            "--local-ports",
            "20000-25000",
        ])
        .output()
        .expect("loadgen runs");
    // A bad command line: status 2.
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--local-ports 20000-25000 overlaps --relay-ports 10000-31999"),
        "{err}"
    );
}

//! `loadgen stress --quick --json FILE` end to end: the built binary runs
//! the five sub-tests on loopback (ports 35000-40000, the range of the
//! `stress_test` example, whose test runs in another test binary) and its
//! JSON report holds the figures the self-checks stand on.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// A report file of this test's own, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn figure<'a>(report: &'a Value, path: &str) -> &'a Value {
    let v = path.split('.').fold(report, |v, seg| &v[seg]);
    assert!(!v.is_null(), "no figure {path} in the report");
    v
}

fn count(report: &Value, path: &str) -> u64 {
    figure(report, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a count"))
}

#[test]
fn stress_quick_writes_a_passing_report() {
    let file =
        TempFile(std::env::temp_dir().join(format!("loadgen-stress-{}.json", std::process::id())));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["stress", "--quick", "--json"])
        .arg(&file.0)
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen stress --quick failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let text = std::fs::read_to_string(&file.0).expect("read the JSON report");
    let r: Value = serde_json::from_str(&text).expect("parse the JSON report");

    assert_eq!(r["schema"], "loadgen/1");
    let env = &r["environment"];
    assert!(env["cores"].as_u64().is_some_and(|n| n >= 1), "{env}");
    assert_eq!(env["loadgen_version"], env!("CARGO_PKG_VERSION"));

    assert_eq!(figure(&r, "stress.success_rate").as_f64(), Some(100.0));
    assert_eq!(count(&r, "stress.massive.success"), 20);
    assert!(figure(&r, "stress.massive.calls_per_s").as_f64().unwrap() > 0.0);
    assert!(figure(&r, "stress.churn.ops_per_s").as_f64().unwrap() > 0.0);
    assert_eq!(figure(&r, "stress.leaks.fds").as_i64(), Some(0));
    assert_eq!(figure(&r, "stress.leaks.threads").as_i64(), Some(0));

    let sent = count(&r, "stress.dtmf_storm.sent");
    assert!(sent > 0);
    assert_eq!(count(&r, "stress.dtmf_storm.received"), sent);
    for sub in ["mixed", "long_call"] {
        let sent = count(&r, &format!("stress.{sub}.audio_sent"));
        assert!(sent > 0, "{sub}: no audio sent");
        assert_eq!(
            count(&r, &format!("stress.{sub}.audio_received")),
            sent,
            "{sub}"
        );
    }
    assert!(figure(&r, "stress.mixed.loss_pct").is_number());
    assert!(figure(&r, "stress.long_call.jitter_ms").is_number());
    // Present; `null` only when no MOS estimate was made yet.
    assert!(r["stress"]["long_call"].get("mos_min").is_some());
    assert_eq!(r["stress"]["result"], "ok");
}

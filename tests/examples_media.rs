//! The media builder examples, run in quick mode as their users would run
//! them (`cargo run --example NAME -- --quick`), and their `## key=value`
//! figures checked. Runs are serialised: the examples pace real audio and
//! would disturb each other's timing on a small machine.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs example `name` with `--quick`; asserts it exits 0 and reports
/// `## result=ok`, and returns its figures.
fn run_example(name: &str) -> HashMap<String, String> {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--", "--quick"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} exited with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let figures: HashMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    // Every example ends with `## result=ok` when its self-checks pass.
    assert_eq!(
        figures.get("result").map(String::as_str),
        Some("ok"),
        "{name}: no `## result=ok`\n--- stdout\n{stdout}"
    );
    figures
}

fn text<'a>(f: &'a HashMap<String, String>, key: &str) -> &'a str {
    f.get(key)
        .unwrap_or_else(|| panic!("figure {key} missing: {f:?}"))
}

fn number(f: &HashMap<String, String>, key: &str) -> f64 {
    let v = text(f, key);
    v.parse()
        .unwrap_or_else(|_| panic!("figure {key}={v} is not a number"))
}

#[test]
fn conference_call_everyone_hears_everyone_else() {
    let f = run_example("conference_call");
    assert_eq!(text(&f, "mesh_connections"), "6");
    assert_eq!(text(&f, "mesh_each_received_from_all"), "true");
    assert_eq!(text(&f, "mesh_dtmf_received"), "12");
    assert_eq!(text(&f, "conf_each_hears_others"), "true");
    assert_eq!(text(&f, "conf_hears_self"), "false");
    assert_eq!(text(&f, "eve_heard"), "true");
    assert_eq!(text(&f, "diana_gone"), "true");
    for name in ["alice", "bob", "charlie", "diana", "eve"] {
        assert!(
            number(&f, &format!("conf_frames_in_{name}")) > 0.0,
            "{name}"
        );
    }
}

#[test]
fn advanced_features_work_for_real() {
    let f = run_example("advanced_features");
    assert_eq!(text(&f, "directions_ok"), "true");
    // On hold only the holder's audio gets through; inactive stops both.
    assert_eq!(number(&f, "dir_sendonly_a_rx"), 0.0);
    assert!(number(&f, "dir_sendonly_b_rx") > 0.0);
    assert_eq!(number(&f, "dir_inactive_a_rx"), 0.0);
    assert_eq!(number(&f, "dir_inactive_b_rx"), 0.0);
    assert_eq!(text(&f, "reconnected"), "true");
    assert_eq!(text(&f, "reconnect_attempts"), "3");
    assert_eq!(text(&f, "negotiated_codec"), "PCMA");
    assert_eq!(text(&f, "incompatible_rejected"), "true");
    assert_eq!(text(&f, "custom_attributes_roundtrip"), "true");
    let loss = number(&f, "rx_loss_percent");
    assert!((1.0..=12.0).contains(&loss), "loss {loss}%");
    number(&f, "rtt_ms");
    number(&f, "mos");
}

#[test]
fn integration_measures_what_crossed_the_sockets() {
    let f = run_example("integration");
    let tone = number(&f, "recorded_tone_hz");
    assert!((tone - 440.0).abs() <= 4.4, "recorded tone {tone} Hz");
    assert!(number(&f, "bridge_frames") > 0.0);
    assert!(number(&f, "bridge_dtmf") > 0.0);
    assert!(number(&f, "prometheus_lines") > 0.0);
    let sent: Vec<f64> = text(&f, "prometheus_audio_packets_sent")
        .split(',')
        .map(|v| v.parse().expect("a number"))
        .collect();
    assert!(
        !sent.is_empty() && sent.iter().all(|&v| v > 0.0),
        "{sent:?}"
    );
    assert!(number(&f, "pcap_packets") > 0.0);
}

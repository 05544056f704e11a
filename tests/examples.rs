//! The media builder examples, run the way a reader runs them (`cargo run
//! --example NAME -- --quick`), with the figures they print as
//! `## key=value` lines checked, `## result=ok` among them. The other
//! examples (conference_call, advanced_features, integration) are checked
//! the same way in tests/examples_media.rs.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;

/// The examples use fixed port ranges, some shared: one runs at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs example `name` in quick mode; asserts it succeeded and reported
/// `## result=ok`, and returns its figures.
fn run_example(name: &str) -> HashMap<String, String> {
    let _one_at_a_time = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--", "--quick"])
        .output()
        .expect("cargo starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} exited with {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: HashMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        figures.get("result").map(String::as_str),
        Some("ok"),
        "{name}: {stdout}"
    );
    figures
}

fn text<'a>(f: &'a HashMap<String, String>, key: &str) -> &'a str {
    f.get(key).unwrap_or_else(|| panic!("figure {key} missing"))
}

fn int(f: &HashMap<String, String>, key: &str) -> i64 {
    text(f, key)
        .parse()
        .unwrap_or_else(|e| panic!("figure {key}: {e}"))
}

#[test]
fn basic_call() {
    let f = run_example("basic_call");
    assert_eq!(text(&f, "callee_digits"), "1,2,3,4,5,6");
    assert_eq!(text(&f, "caller_digits"), "#");
    for (tx, rx) in [("caller", "callee"), ("callee", "caller")] {
        let sent = int(&f, &format!("{tx}_audio_sent"));
        assert!(sent > 0, "{tx} sent no audio");
        assert_eq!(sent, int(&f, &format!("{rx}_audio_received")), "{tx}->{rx}");
        let bytes = int(&f, &format!("{tx}_bytes_sent"));
        assert!(bytes > 0, "{tx} sent no bytes");
        assert_eq!(
            bytes,
            int(&f, &format!("{rx}_bytes_received")),
            "{tx}->{rx}"
        );
    }
    assert_eq!(text(&f, "negotiated_codec"), "PCMU");
    assert_eq!(text(&f, "answer_direction"), "sendrecv");
    assert_eq!(text(&f, "callee_heard_hz"), "440");
    assert_eq!(text(&f, "caller_heard_hz"), "660");
}

#[test]
fn port_management() {
    let f = run_example("port_management");
    assert_eq!(text(&f, "seq_ports"), "40000,40002,40004,40006,40008");
    assert_eq!(text(&f, "reused_immediately"), "false");
    assert!(matches!(text(&f, "exhausted_error"), "Limit" | "NoPorts"));
    assert_eq!(text(&f, "no_ports_error"), "NoPorts");
    assert_eq!(int(&f, "recovered"), 3);
    assert_eq!(int(&f, "random_distinct"), 10);
    assert!(int(&f, "idle_closed") >= 1);
    assert_eq!(text(&f, "active_survived"), "true");
    assert_eq!(text(&f, "sizing_invalid_error"), "RangeTooSmall");
}

#[test]
fn stress_test() {
    let f = run_example("stress_test");
    assert_eq!(text(&f, "stress.success_rate"), "100.0");
    let attempted = int(&f, "stress.massive.attempted");
    assert_eq!(attempted, 20);
    assert_eq!(int(&f, "stress.massive.success"), attempted);
    let dtmf = int(&f, "stress.total.dtmf_sent");
    assert!(dtmf > 0);
    assert_eq!(int(&f, "stress.total.dtmf_received"), dtmf);
    let audio = int(&f, "stress.total.audio_sent");
    assert!(audio > 0);
    assert_eq!(int(&f, "stress.total.audio_received"), audio);
    // The queue's peak counts every push, the workers' returned calls
    // included: what is left in it at the end never exceeds it.
    assert!(int(&f, "stress.mixed.queue_peak") >= int(&f, "stress.mixed.queue_left"));
    assert_eq!(int(&f, "stress.leaks.fds"), 0);
    assert_eq!(int(&f, "stress.leaks.threads"), 0);
}

//! rtpengine's recorded replies (`tests/data/ng`, groups `ping` and
//! `errors`) against the daemon's: `tests/ng_reference/record.py` replays
//! rtpengine's requests to the mediarelay binary and
//! `tests/ng_reference/compare.py` compares the reply shapes (keys and value
//! types, recursively). Strict bencode (the default) answers the two
//! malformed datagrams rtpengine reads anyway with an error, and only those;
//! `--ng-lenient-bencode` reads them as rtpengine does, and every reply has
//! rtpengine's shape.

#![cfg(feature = "daemon")]

mod common;

use std::process::Command;

const DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Replays the recorded requests to a daemon started with `args`; the
/// comparison's summary line and the names of the replies that differ.
fn compare(args: &[&str], out: &str) -> (String, Vec<String>) {
    let (_daemon, client) = common::start(args);
    let _ = std::fs::remove_dir_all(out);
    let rec = Command::new("python3")
        .arg(format!("{DIR}/tests/ng_reference/record.py"))
        .args(["--ng", &client.ng.to_string(), "--out", out])
        .args(["--only", "ping", "errors"])
        .output()
        .expect("python3 record.py");
    assert!(
        rec.status.success(),
        "record.py: {}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let cmp = Command::new("python3")
        .arg(format!("{DIR}/tests/ng_reference/compare.py"))
        .arg(format!("{DIR}/tests/data/ng"))
        .arg(out)
        .output()
        .expect("python3 compare.py");
    assert!(cmp.status.success(), "compare.py failed");
    let text = String::from_utf8_lossy(&cmp.stdout).into_owned();
    println!("{text}");
    let summary = text
        .lines()
        .find(|l| l.contains(" compared, "))
        .expect("summary line")
        .to_string();
    let differ = text
        .lines()
        .filter_map(|l| l.strip_prefix("DIFF "))
        .map(str::to_string)
        .collect();
    (summary, differ)
}

#[test]
fn strict_bencode_differs_only_on_malformed_bencode() {
    let out = std::env::temp_dir().join("mediarelay-ng-shapes-strict");
    let (summary, differ) = compare(&[], out.to_str().unwrap());
    assert_eq!(summary, "38 compared, 36 same shape, 2 differ");
    assert_eq!(
        differ,
        [
            "errors 19-truncated-bencode-dict-unterminated.rep.json",
            "errors 22-trailing-garbage.rep.json"
        ]
    );
}

#[test]
fn lenient_bencode_has_every_reply_shape_of_rtpengine() {
    let out = std::env::temp_dir().join("mediarelay-ng-shapes-lenient");
    let (summary, differ) = compare(&["--ng-lenient-bencode"], out.to_str().unwrap());
    assert_eq!(differ, Vec::<String>::new());
    assert_eq!(summary, "38 compared, 38 same shape, 0 differ");
}

//! End to end: `mediarelay ctl` (the binary) against a running daemon:
//! ping, list sessions / numsessions / totals, terminate one call and all,
//! loglevel show/set/refuse, no daemon listening, bad usage.
#![cfg(feature = "daemon")]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};

use common::{audio_sdp, free_udp_port, start};

/// Runs `mediarelay ctl --ng NG ARGS...`.
fn ctl(ng: SocketAddr, args: &[&str]) -> Output {
    Command::new(common::bin())
        .arg("ctl")
        .arg("--ng")
        .arg(ng.to_string())
        .args(args)
        .output()
        .expect("run mediarelay ctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The run succeeded; its stdout.
fn ok(o: Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn ctl_drives_a_running_daemon() {
    let (_daemon, mut c) = start(&[
        "--delete-delay",
        "0",
        "--num-threads",
        "1",
        "--port-min",
        "44100",
        "--port-max",
        "44199",
    ]);
    let ng = c.ng;
    for call in ["ctl-call-1", "ctl-call-2"] {
        c.offer(call, &audio_sdp("A", 5000), &[]).expect("offer");
        c.answer(call, &audio_sdp("B", 5002), &[]).expect("answer");
    }

    assert_eq!(ok(ctl(ng, &["ping"])), "pong\n");

    let sessions = ok(ctl(ng, &["list", "sessions"]));
    let mut ids: Vec<&str> = sessions
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["ctl-call-1", "ctl-call-2"], "{sessions}");
    for line in sessions.lines() {
        assert!(line.contains("| tags: tagA, tagB |"), "{line}");
        assert!(line.contains("| created: 1"), "{line}");
    }
    let one = ok(ctl(ng, &["list", "sessions", "ctl-call-2"]));
    assert!(one.starts_with("ctl-call-2 | "), "{one}");

    let num = ok(ctl(ng, &["list", "numsessions"]));
    assert!(num.contains("Current sessions own: 2\n"), "{num}");
    assert!(num.contains("Current sessions foreign: 0\n"), "{num}");
    assert!(num.contains("Current sessions total: 2\n"), "{num}");

    let totals = ok(ctl(ng, &["list", "totals"]));
    assert!(totals.contains("Uptime of mediarelay"), "{totals}");
    let managed = totals
        .lines()
        .find(|l| l.contains("Total managed sessions"))
        .unwrap_or_else(|| panic!("{totals}"));
    // As in rtpengine, "managed" counts calls that have ended: none yet.
    assert!(managed.ends_with(":0"), "{managed}");
    assert!(totals.contains("Total offer commands"), "{totals}");

    // One call; with --delete-delay 0 it is gone from `list` at once.
    assert_eq!(
        ok(ctl(ng, &["terminate", "ctl-call-1"])),
        "terminated ctl-call-1\n"
    );
    assert_eq!(c.list(), ["ctl-call-2"]);
    // An unknown call-id is the daemon's error.
    let o = ctl(ng, &["terminate", "ctl-call-1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Call-ID not found"), "{}", stderr(&o));

    c.offer("ctl-call-3", &audio_sdp("A", 5004), &[])
        .expect("offer");
    assert_eq!(
        ok(ctl(ng, &["terminate", "all"])),
        "terminated 2 session(s)\n"
    );
    assert!(c.list().is_empty());
    assert_eq!(ok(ctl(ng, &["list", "sessions"])), "");
    assert!(ok(ctl(ng, &["list", "numsessions"])).contains("Current sessions total: 0\n"));
    let totals = ok(ctl(ng, &["list", "totals"]));
    assert!(
        totals
            .lines()
            .any(|l| l.contains("Total managed sessions") && l.ends_with(":3")),
        "three calls ended: {totals}"
    );

    // Log level: set, show, refuse.
    assert_eq!(ok(ctl(ng, &["loglevel", "debug"])), "debug\n");
    assert_eq!(ok(ctl(ng, &["loglevel"])), "debug\n");
    assert_eq!(ok(ctl(ng, &["loglevel", "7"])), "debug\n");
    assert_eq!(ok(ctl(ng, &["loglevel", "warn"])), "warn\n");
    let o = ctl(ng, &["loglevel", "loud"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.contains(&ng.to_string()), "{err}");
    assert!(err.contains("\"loud\" is not one of error, warn"), "{err}");

    // Draining at run time: maxsessions 0 refuses new calls, -1 lifts it.
    assert_eq!(ok(ctl(ng, &["maxsessions"])), "-1\n");
    assert_eq!(ok(ctl(ng, &["maxsessions", "0"])), "0\n");
    let refused = c.offer("ctl-drain", &audio_sdp("A", 5006), &[]);
    assert_eq!(refused, Err("Parallel session limit reached".to_string()));
    assert_eq!(ok(ctl(ng, &["maxsessions", "-1"])), "-1\n");
    c.offer("ctl-drain", &audio_sdp("A", 5006), &[])
        .expect("offer after the limit is lifted");
    assert_eq!(
        ok(ctl(ng, &["loglevel"])),
        "warn\n",
        "unchanged by the refusal"
    );
    // The daemon's NG commands still work after `log level`.
    assert_eq!(ok(ctl(ng, &["ping"])), "pong\n");
}

#[test]
fn ctl_without_a_daemon_exits_1_naming_the_address() {
    let ng: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let o = Command::new(common::bin())
        .args(["ctl", "--timeout", "0.5", "--ng"])
        .arg(ng.to_string())
        .arg("ping")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.contains("no answer from"), "{err}");
    assert!(err.contains(&ng.to_string()), "{err}");
}

#[test]
fn ctl_bad_usage_exits_2() {
    let ng: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for args in [
        &["frobnicate"][..],
        &["list"],
        &["list", "everything"],
        &["terminate"],
        &["ping", "extra"],
        &[],
    ] {
        let o = ctl(ng, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(!stderr(&o).is_empty(), "{args:?}");
    }
    let o = Command::new(common::bin())
        .args(["ctl", "--ng", "not-an-address", "ping"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not-an-address"), "{}", stderr(&o));
    let o = Command::new(common::bin())
        .args(["ctl", "--config", "/nonexistent/mediarelay.toml", "ping"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));

    // Help goes to stdout with 0; the daemon's --help still works and
    // points at ctl.
    let o = Command::new(common::bin())
        .args(["ctl", "--help"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("loglevel"));
    let o = Command::new(common::bin()).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    assert!(help.contains("--listen-ng"), "{help}");
    assert!(help.contains("mediarelay ctl"), "{help}");
}

#[test]
fn ctl_reads_the_ng_address_from_the_daemon_config() {
    let (_daemon, c) = start(&["--port-min", "44200", "--port-max", "44299"]);
    let dir = std::env::temp_dir().join(format!("mediarelay-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mediarelay.toml");
    // A bare port means all addresses to the daemon; ctl reaches it on loopback.
    std::fs::write(&file, format!("listen-ng = \"{}\"\n", c.ng.port())).unwrap();
    let o = Command::new(common::bin())
        .args(["ctl", "--config"])
        .arg(&file)
        .arg("ping")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(ok(o), "pong\n");
}

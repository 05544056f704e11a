//! The `mediarelay` binary from the outside: `--help`, configuration errors
//! (one stderr line naming the key, exit code 2), a start that stays up,
//! logs its capacity, and stops cleanly on SIGTERM, and a start from an
//! rtpengine.conf (`tests/data/rtpengine.conf`).
#![cfg(feature = "daemon")]
// One `libc::kill` call below sends SIGTERM to the child.
#![allow(unsafe_code)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_mediarelay");

/// Hang guard only (not a timing assertion): the daemon starts and stops in
/// well under a second; a loaded CI box gets plenty of slack.
const DEADLINE: Duration = Duration::from_secs(60);

const FLAGS: &[&str] = &[
    "--interface",
    "--listen-ng",
    "--listen-http",
    "--port-min",
    "--port-max",
    "--num-threads",
    "--timeout",
    "--silent-timeout",
    "--final-timeout",
    "--delete-delay",
    "--offer-timeout",
    "--batch-wait-us",
    "--source-hold",
    "--log-level",
    "--foreground",
    "--pidfile",
    "--io-backend",
    "--config",
    "--config-file",
    "--config-section",
    "--table",
    "--tos",
    "--max-sessions",
    "--log-stderr",
    "--log-facility",
];

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mediarelay")
}

/// The run failed with exit code 2 and exactly one stderr line naming `key`.
fn assert_config_error(out: &Output, key: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].contains(key), "{:?} does not name {key}", lines[0]);
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    stderr
}

fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory; `pid` is
    // our own child, which has not been waited for, so it is not reused.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("mediarelay did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn help_lists_every_flag() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in FLAGS {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    assert!(help.contains("[default: 60]"), "{help}");
}

#[test]
fn inverted_port_range_is_one_line_exit_2() {
    let out = run(&[
        "--interface",
        "127.0.0.1",
        "--port-min",
        "40000",
        "--port-max",
        "30000",
    ]);
    let line = assert_config_error(&out, "port-min");
    assert!(line.contains("port-max"), "{line}");
}

#[test]
fn bad_interface_and_bad_flag_value_are_one_line_exit_2() {
    assert_config_error(&run(&["--interface", "x.y"]), "interface");
    assert_config_error(&run(&[]), "interface");
    assert_config_error(
        &run(&["--interface", "127.0.0.1", "--listen-ng", "nowhere"]),
        "listen-ng",
    );
    assert_config_error(
        &run(&["--interface", "127.0.0.1", "--port-min", "many"]),
        "--port-min",
    );
    assert_config_error(&run(&["--no-such-flag"]), "--no-such-flag");
}

/// Configurations that would start but never relay a call are refused.
#[test]
fn unusable_setups_are_refused() {
    // No NG socket: nothing could ever create a call.
    assert_config_error(&run(&["--interface", "127.0.0.1"]), "listen-ng");
    // One port pair: a call needs two.
    let line = assert_config_error(
        &run(&[
            "--interface",
            "127.0.0.1",
            "--listen-ng",
            "127.0.0.1:0",
            "--port-min",
            "31000",
            "--port-max",
            "31001",
        ]),
        "port-min",
    );
    assert!(line.contains("a call needs 2"), "{line}");
    assert_config_error(
        &run(&[
            "--interface",
            "127.0.0.1",
            "--listen-ng",
            "127.0.0.1:0",
            "--source-hold",
            "soon",
        ]),
        "source-hold",
    );
    // An interface address this host does not have (TEST-NET-1).
    let out = run(&[
        "--interface",
        "192.0.2.1",
        "--listen-ng",
        "127.0.0.1:0",
        "--port-min",
        "41100",
        "--port-max",
        "41199",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("192.0.2.1 cannot be bound on this host"),
        "{stderr}"
    );
    assert!(!stderr.contains("mediarelay ready"), "{stderr}");
    // An open-file limit too low for one call's four sockets.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 36 && exec {BIN} --interface 127.0.0.1 --listen-ng 127.0.0.1:0 \
             --num-threads 1 --port-min 41200 --port-max 41299"
        ))
        .stdin(Stdio::null())
        .output()
        .expect("run mediarelay under sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no call can be relayed"), "{stderr}");
    assert!(stderr.contains("capacity: 0 concurrent calls"), "{stderr}");
    assert!(!stderr.contains("mediarelay ready"), "{stderr}");
}

#[test]
fn bad_toml_file_is_one_line_exit_2() {
    let dir = TempDir::new("daemon-cli-toml");
    let syntax = dir.0.join("syntax.toml");
    std::fs::write(
        &syntax,
        "interface = \"127.0.0.1\"\nport-min = 30000 40000\n",
    )
    .unwrap();
    assert_config_error(&run(&["--config", syntax.to_str().unwrap()]), "port-min");

    let unknown = dir.0.join("unknown.toml");
    std::fs::write(&unknown, "interface = \"127.0.0.1\"\nfoo = 1\n").unwrap();
    let line = assert_config_error(
        &run(&["--config-file", unknown.to_str().unwrap()]),
        "\"foo\"",
    );
    assert!(line.contains("unknown key"), "{line}");

    let typed = dir.0.join("typed.toml");
    std::fs::write(&typed, "interface = \"127.0.0.1\"\ntimeout = \"soon\"\n").unwrap();
    assert_config_error(&run(&["--config", typed.to_str().unwrap()]), "timeout");

    let missing = dir.0.join("missing.toml");
    assert_config_error(&run(&["--config", missing.to_str().unwrap()]), "config");
}

#[test]
fn starts_logs_capacity_and_stops_on_sigterm() {
    let dir = TempDir::new("daemon-cli-run");
    let pidfile = dir.0.join("mediarelay.pid");
    let mut child = Command::new(BIN)
        .args([
            "--foreground",
            "--port-min",
            "41000",
            "--port-max",
            "41099",
            "--listen-ng",
            "127.0.0.1:0",
            "--interface",
            "127.0.0.1",
            "--num-threads",
            "1",
            "--pidfile",
        ])
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mediarelay");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut log = Vec::new();
    let end = Instant::now() + DEADLINE;
    while !log.iter().any(|l: &String| l.contains("mediarelay ready")) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("mediarelay never became ready; log:\n{}", log.join("\n"));
            }
        }
    }
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "exited early"
    );
    let capacity = log
        .iter()
        .find(|l| l.contains("capacity:"))
        .unwrap_or_else(|| panic!("no capacity line; log:\n{}", log.join("\n")));
    // 41000..=41099: 50 pairs, 2 per call.
    assert!(capacity.contains("port range: 25 calls"), "{capacity}");
    assert!(capacity.contains("bound by"), "{capacity}");
    let pid = std::fs::read_to_string(&pidfile).expect("pidfile written");
    assert_eq!(pid.trim(), child.id().to_string());

    sigterm(&child);
    let status = wait_with_deadline(&mut child);
    reader.join().expect("reader thread");
    log.extend(rx.try_iter());
    assert_eq!(status.code(), Some(0), "log:\n{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("mediarelay stopped")),
        "log:\n{}",
        log.join("\n")
    );
    assert!(!pidfile.exists(), "pidfile left behind");
}

/// An existing rtpengine.conf (ini) as `--config-file`: the daemon starts
/// on it, answers NG ping on its `listen-ng`, and names the keys it does
/// not implement in one warning.
#[test]
fn starts_from_an_rtpengine_conf_and_names_ignored_keys() {
    let dir = TempDir::new("daemon-cli-ini");
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/rtpengine.conf"
    ))
    .expect("tests/data/rtpengine.conf");
    let ng_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let conf = dir.0.join("rtpengine.conf");
    let text = sample.replace(
        "listen-ng = 127.0.0.1:2223",
        &format!("listen-ng = 127.0.0.1:{ng_port}"),
    );
    assert_ne!(text, sample, "the sample's listen-ng line moved");
    std::fs::write(&conf, text).unwrap();

    let wrong = run(&[
        "--config-file",
        conf.to_str().unwrap(),
        "--config-section",
        "rtpengine-production",
    ]);
    assert_config_error(&wrong, "config-section");

    let mut child = Command::new(BIN)
        .arg("--config-file")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mediarelay");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let end = Instant::now() + DEADLINE;
    while !log.iter().any(|l: &String| l.contains("mediarelay ready")) {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("mediarelay never became ready; log:\n{}", log.join("\n"));
            }
        }
    }
    let ng = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ng.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    ng.send_to(b"c1 d7:command4:pinge", ("127.0.0.1", ng_port))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = ng.recv(&mut buf).expect("NG pong");
    assert_eq!(&buf[..n], b"c1 d6:result4:ponge");

    let all = log.join("\n");
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("ignored keys not implemented by mediarelay"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{all}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[0]
            .ends_with("rtpengine.conf: ignored keys not implemented by mediarelay: recording-dir, recording-method"),
        "{}",
        warnings[0]
    );
    assert!(all.contains("table 0 ignored"), "{all}");
    assert!(
        all.contains("ports=50000-50099"),
        "port range from the file:\n{all}"
    );

    sigterm(&child);
    let status = wait_with_deadline(&mut child);
    reader.join().expect("reader thread");
    assert_eq!(status.code(), Some(0), "log:\n{all}");
}

//! `tuning/install.sh` into a staging directory (`DESTDIR`): the files land
//! where the systemd unit expects them, the unit's ExecStart flags and the
//! installed config file are accepted by the daemon, a second run keeps an
//! edited config, and `systemd-analyze verify` accepts the installed unit
//! (skipped when `systemd-analyze` is absent, unless
//! `MEDIARELAY_REQUIRE_SYSTEMD_ANALYZE` is set).
#![cfg(feature = "daemon")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;

use clap::Parser;
use mediarelay::config::{Cli, Config};

const BIN: &str = env!("CARGO_BIN_EXE_mediarelay");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs install.sh with `DESTDIR=dest` and the test's binary; the other
/// make variables are cleared so the defaults are tested.
fn install(dest: &Path) -> Output {
    let out = Command::new("sh")
        .arg(Path::new(REPO).join("tuning/install.sh"))
        .env("DESTDIR", dest)
        .env("BIN", BIN)
        .env_remove("PREFIX")
        .env_remove("BINDIR")
        .env_remove("DOCDIR")
        .env_remove("SYSCONFDIR")
        .env_remove("UNITDIR")
        .env_remove("FORCE")
        .stdin(Stdio::null())
        .output()
        .expect("run sh tuning/install.sh");
    assert!(
        out.status.success(),
        "install.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `dest` + an absolute path.
fn staged(dest: &Path, abs: &str) -> PathBuf {
    dest.join(abs.trim_start_matches('/'))
}

/// The value of `Key=` in a unit, with `\` continuations joined.
fn unit_value(unit: &str, key: &str) -> String {
    let joined = unit.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"));
    line[key.len() + 1..].to_string()
}

#[test]
fn install_sh_stages_files_where_the_unit_expects_them() {
    let dest = TempDir::new("install-stage");
    let d = dest.0.as_path();
    install(d);

    let unit_path = staged(d, "/etc/systemd/system/mediarelay.service");
    let unit = std::fs::read_to_string(&unit_path).expect("unit installed");
    let exec = unit_value(&unit, "ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/mediarelay", "default PREFIX");
    let bin = staged(d, argv[0]);
    assert_eq!(
        std::fs::read(&bin).expect("binary where ExecStart points"),
        std::fs::read(BIN).unwrap()
    );
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("mediarelay "));

    let config_at = argv
        .iter()
        .position(|a| *a == "--config")
        .map(|i| argv[i + 1])
        .expect("ExecStart passes --config");
    let config = staged(d, config_at);
    assert_eq!(
        std::fs::read_to_string(&config).expect("config where --config points"),
        std::fs::read_to_string(Path::new(REPO).join("tuning/mediarelay.toml")).unwrap()
    );
    let doc = unit_value(&unit, "Documentation");
    let doc = doc.strip_prefix("file:").expect("file: documentation");
    assert!(staged(d, doc).is_file(), "{doc} not installed");
    assert!(staged(d, "/etc/sysctl.d/99-mediarelay.conf").is_file());

    // The daemon accepts ExecStart's flags with the installed config file.
    let mut args: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    let i = args.iter().position(|a| a == "--config").unwrap();
    args[i + 1] = config.to_str().unwrap().to_string();
    let cli = Cli::try_parse_from(&args).expect("ExecStart flags parse");
    let c = Config::load(&cli).expect("ExecStart flags + installed config load");
    c.check_runnable().expect("runnable");
    // And so does the installed binary: past validation (not exit code 2),
    // it stops only at the example address this host does not have.
    let mut child = Command::new(&bin)
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "config refused: {stderr}");

    // Idempotent: a second run keeps an edited config and still succeeds.
    let edited = "# edited by the operator\ninterface = \"127.0.0.1\"\n";
    std::fs::write(&config, edited).unwrap();
    let again = install(d);
    assert!(String::from_utf8_lossy(&again.stdout).contains("kept"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), unit);
}

#[test]
fn installed_unit_passes_systemd_analyze_verify() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("MEDIARELAY_REQUIRE_SYSTEMD_ANALYZE").is_none(),
            "systemd-analyze not found but MEDIARELAY_REQUIRE_SYSTEMD_ANALYZE is set \
             (apt-get install systemd)"
        );
        eprintln!("SKIPPED: systemd-analyze not found (apt-get install systemd to run this check)");
        return;
    }
    let dest = TempDir::new("install-verify");
    let d = dest.0.as_path();
    install(d);
    let unit = std::fs::read_to_string(staged(d, "/etc/systemd/system/mediarelay.service"))
        .expect("unit installed");
    // verify checks that ExecStart's binary exists: point it at the staged
    // copy (the rest of the unit is checked as installed).
    let exec = unit_value(&unit, "ExecStart");
    let bin = exec.split_whitespace().next().unwrap();
    let staged_bin = staged(d, bin);
    assert!(staged_bin.is_file());
    let check_dir = d.join("verify");
    std::fs::create_dir_all(&check_dir).unwrap();
    let check = check_dir.join("mediarelay.service");
    std::fs::write(
        &check,
        unit.replace(
            &format!("ExecStart={bin} "),
            &format!("ExecStart={} ", staged_bin.display()),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&check)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    // Unknown keys and bad values are only warnings: none may concern the unit.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("mediarelay.service"))
        .collect();
    assert!(about_unit.is_empty(), "systemd-analyze verify: {stderr}");
}

//! The monitoring that ships in tuning/ matches what the daemon exports:
//! every `mediarelay_*` metric the Grafana dashboard
//! (`tuning/grafana/mediarelay-dashboard.json`) and the Prometheus alerting
//! rules (`tuning/prometheus/mediarelay-alerts.yml`) use is in a real
//! daemon's `/metrics` once it has handled a call over NG; the dashboard
//! is valid JSON whose panels each have a query, and every alert has the
//! fields Alertmanager routing and the README rely on. (`promtool check
//! rules` and `promtool test rules` check the rules' PromQL and behaviour.)
#![cfg(feature = "daemon")]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};

use common::{audio_sdp, free_udp_port, start};
use mediarelay::ng::{OwnedValue, json};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tuning/grafana/mediarelay-dashboard.json"
);
const ALERTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tuning/prometheus/mediarelay-alerts.yml"
);

/// Histogram sample suffixes, mapped to their family.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

#[test]
fn dashboard_and_alerts_use_only_exported_metrics() {
    let dashboard_text = std::fs::read_to_string(DASHBOARD).expect("dashboard file");
    let dashboard = json::decode(dashboard_text.as_bytes()).expect("dashboard is valid JSON");
    let exprs = check_dashboard(&dashboard);
    let alerts_text = std::fs::read_to_string(ALERTS).expect("alert rules file");
    check_alert_rules(&alerts_text);

    // Every metric named in a panel query or in the rules file.
    let mut used = BTreeSet::new();
    for e in &exprs {
        used.extend(metric_names(e));
    }
    let from_dashboard = used.len();
    used.extend(metric_names(&alerts_text));
    assert!(from_dashboard >= 15, "dashboard uses {used:?}");
    for must in [
        "mediarelay_calls",
        "mediarelay_rx_packets_total",
        "mediarelay_tx_packets_total",
        "mediarelay_dropped_packets_total",
        "mediarelay_port_pairs",
        "mediarelay_port_pairs_capacity",
        "mediarelay_ng_commands_total",
        "mediarelay_ng_command_duration_seconds_bucket",
        "mediarelay_shard_rx_packets_total",
        "mediarelay_cpu_seconds_total",
        "mediarelay_loop_turns_total",
        "mediarelay_shard_calls",
        "mediarelay_shard_streams",
    ] {
        assert!(used.contains(must), "{must} is not used; used: {used:?}");
    }

    // A daemon that has handled a call.
    let (_daemon, mut c) = start(&[
        "--num-threads",
        "2",
        "--port-min",
        "44000",
        "--port-max",
        "44099",
    ]);
    let (pa, pb) = (free_udp_port(), free_udp_port());
    c.offer("mon-1", &audio_sdp("A", pa), &[])
        .expect("offer answered with SDP");
    c.answer("mon-1", &audio_sdp("B", pb), &[])
        .expect("answer answered with SDP");
    let body = scrape(c.http);

    let mut missing = Vec::new();
    for name in &used {
        let family = histogram_family(name, &body).unwrap_or(name);
        if !exported(family, &body) || !has_sample(name, &body) {
            missing.push(name.as_str());
        }
    }
    assert!(
        missing.is_empty(),
        "used by tuning/ but not exported: {missing:?}\n{body}"
    );

    // The NG latency histogram saw the commands: one observation per
    // executed command (the start-up pings, offer, answer), none missing.
    let sum_of = |prefix: &str| -> u64 {
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let value = |series: &str| -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{body}"))
            .parse()
            .unwrap()
    };
    assert!(
        body.contains("# TYPE mediarelay_ng_command_duration_seconds histogram\n"),
        "{body}"
    );
    assert_eq!(
        value("mediarelay_ng_command_duration_seconds_count{command=\"offer\"}"),
        1
    );
    assert_eq!(
        value("mediarelay_ng_command_duration_seconds_bucket{command=\"answer\",le=\"+Inf\"}"),
        1
    );
    let timed = sum_of("mediarelay_ng_command_duration_seconds_count{");
    assert!(timed >= 3, "{body}");
    assert_eq!(timed, sum_of("mediarelay_ng_commands_total{"), "{body}");
    assert_eq!(c.delete("mon-1"), "ok");
}

/// The panels' queries; asserts the dashboard's shape on the way.
fn check_dashboard(d: &OwnedValue) -> Vec<String> {
    assert!(
        d.get("schemaVersion")
            .and_then(OwnedValue::as_int)
            .is_some_and(|v| v >= 36),
        "Grafana 10 schema"
    );
    assert!(d.get("title").and_then(OwnedValue::as_str).is_some());
    // The data source is chosen by a variable (works for UI import and
    // provisioning alike).
    let vars = d
        .get("templating")
        .and_then(|t| t.get("list"))
        .and_then(OwnedValue::as_list)
        .expect("templating.list");
    assert!(vars.iter().any(|v| {
        v.get("type").and_then(OwnedValue::as_str) == Some("datasource")
            && v.get("name").and_then(OwnedValue::as_str) == Some("datasource")
    }));
    let panels = d
        .get("panels")
        .and_then(OwnedValue::as_list)
        .expect("panels");
    assert!(panels.len() >= 8);
    let mut exprs = Vec::new();
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p
            .get("title")
            .and_then(OwnedValue::as_str)
            .expect("panel title");
        let id = p.get("id").and_then(OwnedValue::as_int).expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        assert!(p.get("gridPos").is_some(), "{title}: no gridPos");
        let ds = p
            .get("datasource")
            .and_then(|d| d.get("uid"))
            .and_then(OwnedValue::as_str);
        assert_eq!(ds, Some("${datasource}"), "{title}: data source");
        let targets = p
            .get("targets")
            .and_then(OwnedValue::as_list)
            .unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            let expr = t
                .get("expr")
                .and_then(OwnedValue::as_str)
                .unwrap_or_else(|| panic!("{title}: target without expr"));
            assert!(!expr.trim().is_empty(), "{title}: empty expr");
            exprs.push(expr.to_string());
        }
    }
    for want in [
        "Live calls",
        "Relayed packets/s",
        "Drops by reason",
        "Port pool",
        "NG commands/s",
        "NG errors",
        "NG command latency",
        "Per-shard packets/s",
        "Shard CPU",
        "Event-loop turns/s",
    ] {
        assert!(
            panels
                .iter()
                .any(|p| p.get("title").and_then(OwnedValue::as_str) == Some(want)),
            "no panel {want:?}"
        );
    }
    exprs
}

/// The rules file: groups of rules, each alert with `expr`, `for`,
/// `labels.severity` and `annotations.summary`/`description` (a line
/// scan of the block YAML the file is written in; promtool checks the
/// rest).
fn check_alert_rules(text: &str) {
    assert!(text.lines().any(|l| l == "groups:"), "no groups:");
    let mut alerts: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_labels_or_annotations = "";
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(name) = trimmed.strip_prefix("- alert: ") {
            alerts.push((name.trim().to_string(), Vec::new()));
            in_labels_or_annotations = "";
            continue;
        }
        let Some((_, keys)) = alerts.last_mut() else {
            continue;
        };
        // Keys of the rule (8 spaces) and of its labels/annotations (10).
        let key = trimmed.split(':').next().unwrap_or_default();
        if indent == 8 {
            in_labels_or_annotations = match key {
                "labels" => "labels",
                "annotations" => "annotations",
                _ => "",
            };
            keys.push(key.to_string());
        } else if indent == 10 && !in_labels_or_annotations.is_empty() {
            keys.push(format!("{in_labels_or_annotations}.{key}"));
        }
    }
    let names: Vec<&str> = alerts.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "MediarelayDown",
        "MediarelayPortPoolNearlyExhausted",
        "MediarelayHighDropRate",
        "MediarelayNgErrors",
        "MediarelayShardStalled",
    ] {
        assert!(names.contains(&want), "no alert {want}: {names:?}");
    }
    for (name, keys) in &alerts {
        for want in [
            "expr",
            "for",
            "labels.severity",
            "annotations.summary",
            "annotations.description",
        ] {
            assert!(
                keys.iter().any(|k| k == want),
                "{name}: no {want} ({keys:?})"
            );
        }
    }
    assert!(text.contains("up{job=\"mediarelay\"} == 0"));
}

/// `mediarelay_*` metric names in `text` (PromQL or prose).
fn metric_names(text: &str) -> BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mediarelay_") {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let end = tail.find(|c: char| !ident(c)).unwrap_or(tail.len());
        if !before.is_some_and(ident) {
            out.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// The histogram family a `_bucket`/`_sum`/`_count` name belongs to.
fn histogram_family<'a>(name: &'a str, body: &str) -> Option<&'a str> {
    HISTOGRAM_SUFFIXES.iter().find_map(|s| {
        let base = name.strip_suffix(s)?;
        body.contains(&format!("# TYPE {base} histogram\n"))
            .then_some(base)
    })
}

/// The family has `# HELP` and `# TYPE` lines.
fn exported(family: &str, body: &str) -> bool {
    body.lines().any(|l| {
        l.strip_prefix("# TYPE ")
            .and_then(|r| r.strip_prefix(family))
            .is_some_and(|r| r.starts_with(' '))
    }) && body.lines().any(|l| {
        l.strip_prefix("# HELP ")
            .and_then(|r| r.strip_prefix(family))
            .is_some_and(|r| r.starts_with(' '))
    })
}

/// A sample line of exactly `name`.
fn has_sample(name: &str, body: &str) -> bool {
    body.lines().filter(|l| !l.starts_with('#')).any(|l| {
        l.strip_prefix(name)
            .is_some_and(|r| r.starts_with(['{', ' ']))
    })
}

fn scrape(http: std::net::SocketAddr) -> String {
    let mut tcp = std::net::TcpStream::connect(http).expect("connect /metrics");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    tcp.read_to_string(&mut r).unwrap();
    let (head, body) = r.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body.to_string()
}

#[test]
fn metric_name_scan() {
    let names = metric_names(
        "sum by (x) (rate(mediarelay_a_total{s=\"1\"}[5m])) / mediarelay_b:c \
         xmediarelay_no mediarelay-dashboard.json (mediarelay_d_bucket)",
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "mediarelay_a_total",
            "mediarelay_b:c",
            "mediarelay_d_bucket"
        ]
    );
    let body = "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 0\n";
    assert_eq!(
        histogram_family("h_seconds_bucket", body),
        Some("h_seconds")
    );
    assert_eq!(histogram_family("g_count", body), None);
    assert!(exported("h_seconds", body));
    assert!(!exported("h_second", body));
    assert!(has_sample("h_seconds_bucket", body));
    assert!(!has_sample("h_seconds", body));
}

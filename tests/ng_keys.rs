//! The README's table of rtpengine NG keys and flags is what the daemon
//! does: every row with an example is sent in an offer to the mediarelay
//! binary, and the reply must match the row: `honoured` (ok, and no
//! `warning`), `honoured with a warning` (ok, the warning says how it
//! differs from rtpengine), `ignored with a warning` (ok, with `warning`) or `refused
//! with an error` (`result: error`, and no call left behind).

#![cfg(feature = "daemon")]

mod common;

use mediarelay::ng::OwnedValue;
use mediarelay::ng::json;

/// The rows between the README's `ng-keys` markers: (item, status,
/// example JSON).
fn rows() -> Vec<(String, String, Option<String>)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- ng-keys:begin -->")
        .expect("ng-keys:begin marker");
    let end = readme
        .find("<!-- ng-keys:end -->")
        .expect("ng-keys:end marker");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| NG key"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let item = cells[0].trim_start_matches("| ").to_string();
            let status = cells[1].to_string();
            let example = cells[2].trim().trim_matches('`');
            let example = (!example.is_empty()).then(|| example.to_string());
            (item, status, example)
        })
        .collect()
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 5000 RTP/AVP 0 8\r\n";

#[test]
fn readme_table_of_ng_keys_and_flags_holds() {
    let rows = rows();
    assert!(rows.len() > 60, "{} rows", rows.len());
    let (_daemon, mut c) = common::start(&["--port-min", "47200", "--port-max", "47599"]);
    let mut checked = 0;
    for (i, (item, status, example)) in rows.iter().enumerate() {
        let Some(example) = example else { continue };
        let extra = json::decode(example.as_bytes())
            .unwrap_or_else(|e| panic!("{item}: example {example} is not a JSON object: {e}"));
        let call = format!("keys-{i}");
        let mut msg = vec![
            ("command".to_string(), OwnedValue::text("offer")),
            ("call-id".to_string(), OwnedValue::text(&call)),
            ("from-tag".to_string(), OwnedValue::text("tagA")),
            ("sdp".to_string(), OwnedValue::text(SDP)),
        ];
        if let OwnedValue::Dict(entries) = extra {
            for (k, v) in entries {
                msg.push((String::from_utf8_lossy(&k).into_owned(), v));
            }
        }
        let pairs: Vec<(&str, OwnedValue)> =
            msg.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let r = c.cmd(&pairs);
        let result = r.get("result").and_then(OwnedValue::as_str).unwrap_or("");
        let warning = r.get("warning").and_then(OwnedValue::as_str);
        if status.starts_with("honoured with a") {
            // Done as asked; the warning says how it differs from rtpengine.
            assert_eq!(result, "ok", "{item}: {r:?}");
            assert!(warning.is_some(), "{item} is not said in a warning: {r:?}");
        } else if status.starts_with("honoured") {
            assert_eq!(result, "ok", "{item}: {r:?}");
            assert!(warning.is_none(), "{item} is honoured but warned: {r:?}");
        } else if status.starts_with("ignored") {
            assert_eq!(result, "ok", "{item}: {r:?}");
            assert!(
                warning.is_some(),
                "{item} is ignored without a warning: {r:?}"
            );
        } else if status.starts_with("refused") {
            assert_eq!(result, "error", "{item} was not refused: {r:?}");
            assert!(
                !c.list().contains(&call),
                "{item}: a refused offer left a call behind"
            );
        } else {
            panic!("{item}: unknown status {status:?}");
        }
        checked += 1;
        c.delete(&call);
    }
    assert!(checked > 60, "{checked} rows checked");
}

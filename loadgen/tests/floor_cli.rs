//! `loadgen floor` end to end: every backend this host has, each batch
//! size, every datagram received, the figures in the JSON report, the best
//! run no costlier than any other.

use std::process::Command;

use serde_json::Value;

#[test]
fn floor_measures_every_backend_and_batch() {
    let json = std::env::temp_dir().join(format!("loadgen-floor-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["floor", "--datagrams", "20000", "--batch", "1,32", "--json"])
        .arg(&json)
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("floor: "), "{stdout}");
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(j["schema"], "loadgen/1");
    let floor = &j["floor"];
    assert_eq!(floor["datagrams"], 20000);
    assert_eq!(floor["size"], 172);
    let best = floor["best"]["cpu_ns_per_pkt"].as_f64().unwrap();
    assert!(best > 0.0, "{floor}");
    let mut runs = 0;
    // epoll is always there; io_uring where the host allows it.
    for backend in ["uring", "epoll"] {
        let Some(b) = floor.get(backend) else {
            assert_ne!(backend, "epoll", "{floor}");
            continue;
        };
        for batch in ["batch_1", "batch_32"] {
            let r = &b[batch];
            assert_eq!(
                (r["sent"].as_u64(), r["received"].as_u64()),
                (Some(20000), Some(20000)),
                "{backend} {batch}: {r}"
            );
            let cpu = r["cpu_ns_per_pkt"].as_f64().unwrap();
            assert!(
                cpu >= best,
                "{backend} {batch}: {cpu} below the best {best}"
            );
            assert!(r["received_per_s"].as_f64().unwrap() > 0.0);
            assert!(r["syscalls_per_pkt"].as_f64().unwrap() > 0.0);
            runs += 1;
        }
        // Full batches take fewer system calls per datagram than single
        // datagrams.
        assert!(
            b["batch_32"]["syscalls_per_pkt"].as_f64() < b["batch_1"]["syscalls_per_pkt"].as_f64(),
            "{backend}: {b}"
        );
    }
    assert!(runs >= 2);
}

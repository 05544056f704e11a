//! `loadgen setup`: call set-up and teardown over NG (offer, answer,
//! delete) at a target rate or flat out, with a latency histogram per
//! command and of offer-to-first-relayed-packet (the time from sending the
//! offer until a packet leg A sends to the relay arrives at leg B).
//!
//! Workers (`--concurrency`) each own an NG client socket and a pair of
//! media sockets; call `k` is due at `start + k / rate` (open loop: a
//! worker that is late starts the next call at once, and the lag is
//! reported). Afterwards the relay must list none of the calls.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::figures::Figures;
use crate::latency::{MAX_LATENCY_US, Percentiles};
use crate::ng::NgClient;
use crate::relay::Target;

/// How to run.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Calls to set up and tear down.
    pub calls: u64,
    /// Calls per second; 0: flat out.
    pub rate: f64,
    /// Workers.
    pub concurrency: usize,
    /// Measure offer-to-first-relayed-packet (one RTP packet per call).
    pub first_packet: bool,
    /// Address the media sockets bind.
    pub local_ip: std::net::IpAddr,
}

/// What a run measured.
#[derive(Debug)]
pub struct SetupReport {
    /// Calls completed (offer, answer and delete all answered).
    pub completed: u64,
    /// Calls with a failed command or no relayed packet.
    pub failed: u64,
    /// The first failure.
    pub first_failure: Option<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// `offer` latency, µs.
    pub offer: Histogram<u64>,
    /// `answer`.
    pub answer: Histogram<u64>,
    /// `delete`.
    pub delete: Histogram<u64>,
    /// Offer sent to first relayed packet received, µs.
    pub first_packet: Histogram<u64>,
    /// How late calls started against their schedule, µs.
    pub start_lag: Histogram<u64>,
    /// Our calls the relay still lists afterwards.
    pub leftover_calls: usize,
    /// The relay's own session count afterwards, if reported.
    pub sessions_after: Option<i64>,
    /// The relay's CPU time over the run (with its pid).
    pub relay_cpu: Option<Duration>,
}

impl SetupReport {
    /// Completed calls per second.
    pub fn setups_per_s(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The run's own checks: no failures, no leftovers.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.failed > 0 {
            f.push(format!(
                "{} calls failed ({})",
                self.failed,
                self.first_failure.as_deref().unwrap_or("?")
            ));
        }
        if self.leftover_calls > 0 {
            f.push(format!(
                "the relay still lists {} of our calls after delete",
                self.leftover_calls
            ));
        }
        f
    }

    /// The relay's CPU per completed call (set-up, first packet,
    /// teardown), µs.
    pub fn relay_cpu_us_per_call(&self) -> Option<f64> {
        let cpu = self.relay_cpu?;
        (self.completed > 0).then(|| cpu.as_secs_f64() * 1e6 / self.completed as f64)
    }

    /// Every figure under `setup.`.
    pub fn put_figures(&self, f: &mut Figures, o: &SetupOptions) {
        f.put("setup.calls", o.calls);
        f.put("setup.completed", self.completed);
        f.put("setup.failed", self.failed);
        f.real("setup.rate_target", o.rate, 3);
        f.put("setup.concurrency", o.concurrency as u64);
        f.real("setup.setups_per_s", self.setups_per_s(), 1);
        f.real("setup.elapsed_s", self.elapsed.as_secs_f64(), 3);
        for (name, h) in [
            ("offer", &self.offer),
            ("answer", &self.answer),
            ("delete", &self.delete),
            ("first_packet", &self.first_packet),
            ("start_lag", &self.start_lag),
        ] {
            let p = Percentiles::of(h);
            let base = format!("setup.{name}_us");
            f.put(&format!("{base}.p50"), p.p50);
            f.put(&format!("{base}.p90"), p.p90);
            f.put(&format!("{base}.p99"), p.p99);
            f.put(&format!("{base}.p999"), p.p999);
            f.put(&format!("{base}.max"), p.max);
        }
        f.put(
            "setup.relay_cpu_us_per_call",
            self.relay_cpu_us_per_call()
                .map(|v| (v * 10.0).round() / 10.0),
        );
        f.put("setup.leftover_calls", self.leftover_calls as u64);
        f.put("setup.sessions_after", self.sessions_after);
    }
}

fn us_since(t: Instant) -> u64 {
    t.elapsed().as_micros().clamp(1, u128::from(MAX_LATENCY_US)) as u64
}

struct Worker {
    ng: NgClient,
    a: UdpSocket,
    b: UdpSocket,
    offer: Histogram<u64>,
    answer: Histogram<u64>,
    delete: Histogram<u64>,
    first_packet: Histogram<u64>,
    start_lag: Histogram<u64>,
    completed: u64,
    failed: u64,
    first_failure: Option<String>,
}

impl Worker {
    fn call(&mut self, run: &str, k: u64, first_packet: bool) -> Result<(), String> {
        let cid = format!("{run}-{k}");
        let (ft, tt) = (format!("sa{k}"), format!("sb{k}"));
        let a_addr = self.a.local_addr().map_err(|e| e.to_string())?;
        let b_addr = self.b.local_addr().map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        self.ng
            .offer_answer("offer", &cid, &ft, None, a_addr)
            .map_err(|e| e.to_string())?;
        let _ = self.offer.record(us_since(t0));
        let t1 = Instant::now();
        let answered = self.ng.offer_answer("answer", &cid, &ft, Some(&tt), b_addr);
        let _ = self.answer.record(us_since(t1));
        let result = match answered {
            Ok(to_a) if first_packet => self.first_packet(to_a, t0, k),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        let t2 = Instant::now();
        let deleted = self.ng.delete(&cid, &ft).map_err(|e| e.to_string());
        let _ = self.delete.record(us_since(t2));
        result.and(deleted)
    }

    /// A sends one RTP packet to the relay; B must receive it.
    fn first_packet(
        &mut self,
        to_a: SocketAddr,
        offer_sent: Instant,
        k: u64,
    ) -> Result<(), String> {
        // The call number in the payload: a late copy of an earlier call's
        // packet on these reused sockets is not taken for this one's.
        let mut pkt = [0u8; 172];
        pkt[0] = 0x80;
        pkt[8..12].copy_from_slice(b"LGst");
        pkt[12..20].copy_from_slice(&k.to_be_bytes());
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut buf = [0u8; 2048];
        // Resent every 20 ms (a packet time) until it arrives.
        loop {
            self.a.send_to(&pkt, to_a).map_err(|e| e.to_string())?;
            let wait_until = (Instant::now() + Duration::from_millis(20)).min(deadline);
            loop {
                let left = wait_until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = self.b.set_read_timeout(Some(left));
                match self.b.recv_from(&mut buf) {
                    Ok((n, _)) if n == pkt.len() && buf[8..20] == pkt[8..20] => {
                        let _ = self.first_packet.record(us_since(offer_sent));
                        return Ok(());
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            if Instant::now() >= deadline {
                return Err("no relayed packet within 1 s of the answer".into());
            }
        }
    }
}

/// Runs `o.calls` set-ups and teardowns against `target`.
pub fn run(o: &SetupOptions, target: &Target) -> Result<SetupReport, String> {
    let run = format!(
        "lgs{:x}",
        crate::clock::now_ns() ^ (u64::from(std::process::id()) << 32)
    );
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let cpu0 = target.pid.and_then(crate::cpu::process_cpu);
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..o.concurrency.max(1) {
        let bind = |ip| UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(|e| e.to_string());
        let mut worker = Worker {
            ng: NgClient::new(target.ng).map_err(|e| e.to_string())?,
            a: bind(o.local_ip)?,
            b: bind(o.local_ip)?,
            offer: crate::latency::new_histogram(),
            answer: crate::latency::new_histogram(),
            delete: crate::latency::new_histogram(),
            first_packet: crate::latency::new_histogram(),
            start_lag: crate::latency::new_histogram(),
            completed: 0,
            failed: 0,
            first_failure: None,
        };
        let (next, results, run) = (Arc::clone(&next), Arc::clone(&results), run.clone());
        let o = o.clone();
        let h = std::thread::Builder::new()
            .name(format!("lg-setup-{w}"))
            .spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= o.calls {
                        break;
                    }
                    if o.rate > 0.0 {
                        let due = start + Duration::from_secs_f64(k as f64 / o.rate);
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        } else {
                            let _ = worker.start_lag.record(
                                (now - due).as_micros().clamp(1, u128::from(MAX_LATENCY_US)) as u64,
                            );
                        }
                    }
                    match worker.call(&run, k, o.first_packet) {
                        Ok(()) => worker.completed += 1,
                        Err(e) => {
                            worker.failed += 1;
                            worker.first_failure.get_or_insert(e);
                        }
                    }
                }
                if let Ok(mut r) = results.lock() {
                    r.push(worker);
                }
            })
            .map_err(|e| format!("setup worker: {e}"))?;
        handles.push(h);
    }
    for h in handles {
        h.join()
            .map_err(|_| "a setup worker panicked".to_string())?;
    }
    let elapsed = start.elapsed();
    let relay_cpu = match (cpu0, target.pid.and_then(crate::cpu::process_cpu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let workers = std::mem::take(&mut *results.lock().map_err(|_| "results lock".to_string())?);
    let mut rep = SetupReport {
        completed: 0,
        failed: 0,
        first_failure: None,
        elapsed,
        offer: crate::latency::new_histogram(),
        answer: crate::latency::new_histogram(),
        delete: crate::latency::new_histogram(),
        first_packet: crate::latency::new_histogram(),
        start_lag: crate::latency::new_histogram(),
        leftover_calls: 0,
        sessions_after: None,
        relay_cpu,
    };
    for w in workers {
        rep.completed += w.completed;
        rep.failed += w.failed;
        if rep.first_failure.is_none() {
            rep.first_failure = w.first_failure;
        }
        let _ = rep.offer.add(&w.offer);
        let _ = rep.answer.add(&w.answer);
        let _ = rep.delete.add(&w.delete);
        let _ = rep.first_packet.add(&w.first_packet);
        let _ = rep.start_lag.add(&w.start_lag);
    }
    let mut ng = NgClient::new(target.ng).map_err(|e| e.to_string())?;
    rep.leftover_calls = ng
        .list(100_000)
        .map_err(|e| format!("NG list after the run: {e}"))?
        .iter()
        .filter(|c| c.starts_with(&run))
        .count();
    rep.sessions_after = ng
        .current_sessions()
        .map_err(|e| format!("NG statistics after the run: {e}"))?;
    Ok(rep)
}

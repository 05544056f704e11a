//! `loadgen stress`: the media builder under load, in five sub-tests on
//! one manager, over real UDP sockets on loopback:
//!
//! 1. massive connections: many calls set up at once, held, released;
//! 2. DTMF storm: pairs exchanging random keys as fast as the callers ask;
//! 3. rapid churn: builders created, offered and released in a loop;
//! 4. parallel mixed load: creating, audio, DTMF and deleting workers
//!    sharing a bounded queue of calls;
//! 5. a long-running call with audio and DTMF, its quality measured.
//!
//! Parameters follow the seed library's `stress_test` example by default
//! (about 50 s); `--quick` scales them down to a few seconds and
//! `--scale F` multiplies every count and duration. Every figure is
//! measured from packets that crossed the sockets, over real elapsed time,
//! and each is defined where it is printed; figures are printed as
//! `## stress.<subtest>.<figure>=value` lines and kept for the JSON report.
//! The run fails its self-checks when a connection fails, anything sent
//! was not received, or a descriptor or thread outlives the manager.
//!
//! The logic is the one of the `stress_test` example of the mediarelay
//! crate, which keeps its own copy.

pub mod call;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::figures::Figures;
use call::{BoxError, Call, EventPump, Rng, Tally, lock, next_frame, open_fds, threads};
use mediarelay::audio::Tone;
use mediarelay::builder::{BuilderManager, ManagerConfig, ManagerStatistics, PortStrategy};

/// The twelve keys of a phone pad.
const KEYS: [char; 12] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'];
/// Samples in a 20 ms frame at 8 kHz.
const FRAME: usize = 160;
const PTIME: Duration = Duration::from_millis(20);
/// How long settling may take before a sub-test reports what it has.
const SETTLE: Duration = Duration::from_secs(15);

/// Durations and counts of one run.
struct Plan {
    connections: usize,
    hold: Duration,
    storm_pairs: usize,
    storm: Duration,
    churn: Duration,
    churn_progress: Duration,
    mixed: Duration,
    long: Duration,
    long_progress: Duration,
}

impl Plan {
    /// The example's parameters (`quick`: its quick mode), every count and
    /// duration multiplied by `scale`.
    fn new(quick: bool, scale: f64) -> Plan {
        let base = Plan::base(quick);
        let n = |v: usize| ((v as f64 * scale).round() as usize).max(1);
        let d = |v: Duration| v.mul_f64(scale);
        Plan {
            connections: n(base.connections),
            hold: d(base.hold),
            storm_pairs: n(base.storm_pairs),
            storm: d(base.storm),
            churn: d(base.churn),
            churn_progress: d(base.churn_progress),
            mixed: d(base.mixed),
            long: d(base.long),
            long_progress: d(base.long_progress),
        }
    }

    fn base(quick: bool) -> Plan {
        if quick {
            Plan {
                connections: 20,
                hold: Duration::from_secs(1),
                storm_pairs: 10,
                storm: Duration::from_secs(1),
                churn: Duration::from_secs(1),
                churn_progress: Duration::from_millis(250),
                mixed: Duration::from_secs(2),
                long: Duration::from_secs(2),
                long_progress: Duration::from_millis(500),
            }
        } else {
            Plan {
                connections: 100,
                hold: Duration::from_secs(5),
                storm_pairs: 10,
                storm: Duration::from_secs(3),
                churn: Duration::from_secs(5),
                churn_progress: Duration::from_secs(1),
                mixed: Duration::from_secs(10),
                long: Duration::from_secs(15),
                long_progress: Duration::from_secs(3),
            }
        }
    }
}

/// What one sub-test measured.
#[derive(Debug, Default, Clone)]
struct Row {
    name: &'static str,
    elapsed: Duration,
    conns_ok: u64,
    conns_failed: u64,
    audio_sent: u64,
    audio_received: u64,
    /// Keys the media took (accepted by `send_dtmf`, not refused
    /// later).
    dtmf_sent: u64,
    /// Keys `send_dtmf` accepted that the session refused afterwards.
    dtmf_refused: u64,
    dtmf_received: u64,
    lost: i64,
    expected: u64,
    jitter: Duration,
}

impl Row {
    fn loss_pct(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost.max(0) as f64 * 100.0 / self.expected as f64
        }
    }
}

/// A call whose events the pump counts, with the keys each side's
/// `send_dtmf` accepted (some of which the session may refuse later: see
/// [`Tally::dtmf_refused`]).
struct Tracked {
    call: Call,
    ta: Arc<Tally>,
    tb: Arc<Tally>,
    dtmf_ab: AtomicU64,
    dtmf_ba: AtomicU64,
}

/// Counters of both sides of a call at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    a_audio_sent: u64,
    b_audio_received: u64,
    b_audio_sent: u64,
    a_audio_received: u64,
    a_dtmf_packets_sent: u64,
    b_dtmf_packets_received: u64,
    b_dtmf_packets_sent: u64,
    a_dtmf_packets_received: u64,
    events_ab: u64,
    events_ba: u64,
    refused_a: u64,
    refused_b: u64,
}

impl Tracked {
    fn new(call: Call, pump: &EventPump) -> Tracked {
        Tracked {
            ta: pump.watch(&call.sa),
            tb: pump.watch(&call.sb),
            call,
            dtmf_ab: AtomicU64::new(0),
            dtmf_ba: AtomicU64::new(0),
        }
    }

    fn snapshot(&self) -> Snapshot {
        let (a, b) = (self.call.sa.statistics(), self.call.sb.statistics());
        Snapshot {
            a_audio_sent: a.audio_packets_sent,
            b_audio_received: b.packets_received - b.dtmf_packets_received,
            b_audio_sent: b.audio_packets_sent,
            a_audio_received: a.packets_received - a.dtmf_packets_received,
            a_dtmf_packets_sent: a.dtmf_packets_sent,
            b_dtmf_packets_received: b.dtmf_packets_received,
            b_dtmf_packets_sent: b.dtmf_packets_sent,
            a_dtmf_packets_received: a.dtmf_packets_received,
            events_ab: self.tb.dtmf(),
            events_ba: self.ta.dtmf(),
            refused_a: self.ta.refused(),
            refused_b: self.tb.refused(),
        }
    }

    /// Everything sent has been received, and every key the media
    /// took has ended at the far end.
    fn balanced(&self, s: &Snapshot) -> bool {
        s.a_audio_sent == s.b_audio_received
            && s.b_audio_sent == s.a_audio_received
            && s.a_dtmf_packets_sent == s.b_dtmf_packets_received
            && s.b_dtmf_packets_sent == s.a_dtmf_packets_received
            && s.events_ab + s.refused_a == self.dtmf_ab.load(Ordering::SeqCst)
            && s.events_ba + s.refused_b == self.dtmf_ba.load(Ordering::SeqCst)
    }

    /// Adds this call's figures to `row`.
    fn account(&self, row: &mut Row) {
        for (s, accepted, tally) in [
            (&self.call.sa, &self.dtmf_ab, &self.ta),
            (&self.call.sb, &self.dtmf_ba, &self.tb),
        ] {
            let st = s.statistics();
            row.audio_sent += st.audio_packets_sent;
            row.audio_received += st.packets_received - st.dtmf_packets_received;
            row.lost += st.lost;
            row.expected += st.expected;
            row.jitter = row.jitter.max(st.jitter);
            let refused = tally.refused();
            row.dtmf_refused += refused;
            row.dtmf_sent += accepted.load(Ordering::SeqCst).saturating_sub(refused);
        }
        row.dtmf_received += self.ta.dtmf() + self.tb.dtmf();
    }

    fn release(&self, mgr: &BuilderManager, pump: &EventPump) {
        pump.forget(&self.ta);
        pump.forget(&self.tb);
        self.call.release(mgr);
    }
}

/// Waits until every call is balanced and unchanged over two looks 30 ms
/// apart (the last frame of a ring leaves within one ptime), or `limit`
/// passes. Returns whether they settled, and how long it took.
fn settle(calls: &[&Tracked], limit: Duration) -> (bool, Duration) {
    let t0 = Instant::now();
    let mut prev: Option<Vec<Snapshot>> = None;
    loop {
        let now: Vec<Snapshot> = calls.iter().map(|c| c.snapshot()).collect();
        let balanced = calls.iter().zip(&now).all(|(c, s)| c.balanced(s));
        if balanced && prev.as_ref() == Some(&now) {
            return (true, t0.elapsed());
        }
        if t0.elapsed() > limit {
            return (false, t0.elapsed());
        }
        prev = Some(now);
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// What `loadgen stress` asks for.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The example's quick mode: the same steps, smaller counts, shorter
    /// durations.
    pub quick: bool,
    /// Multiplies every count and duration of the plan.
    pub scale: f64,
}

/// What a run measured, and the self-checks it failed (none: it passed).
pub struct Outcome {
    /// Every figure, under `stress.`.
    pub figures: Figures,
    /// The self-check failures, one line each.
    pub failures: Vec<String>,
}

/// Runs the five sub-tests and the final report.
pub fn run(opts: Options) -> Result<Outcome, BoxError> {
    let quick = opts.quick;
    let mut figs = Figures::default();
    let fds_before = open_fds();
    let threads_before = threads();
    let plan = Plan::new(quick, opts.scale);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Media builder stress test ({} mode, scale {}), {cpus} CPUs",
        if quick { "quick" } else { "full" },
        opts.scale
    );
    // The example's 500, raised with the scale so that sub-test 1 fits.
    let max_builders = (500.0 * opts.scale.max(1.0)).round() as usize;
    let config = ManagerConfig {
        local_ip: "127.0.0.1".parse()?,
        min_port: 35000,
        max_port: 40000,
        max_concurrent_builders: max_builders,
        port_strategy: PortStrategy::Random,
        session_timeout: Some(Duration::from_secs(30)),
        cleanup_interval: Duration::from_secs(5),
        jitter_buffer: false,
        ..ManagerConfig::default()
    };
    let mgr = Arc::new(BuilderManager::new(config)?);
    println!(
        "Manager: 127.0.0.1, ports 35000-40000 = {} RTP/RTCP pairs (the seed counted 2501 \
         even ports, the last without its RTCP port), at most {max_builders} builders, random \
         allocation, idle timeout 30 s checked every 5 s, a released pair quarantined for 5 s (the \
         default release delay), no jitter buffer",
        mgr.statistics().ports_total
    );
    let pump = EventPump::start()?;
    // API latencies count from here (an earlier run in this process
    // recorded its own).
    let _ = call::take_api_times();
    let t0 = Instant::now();
    let mut rows = Vec::new();
    rows.push(massive(&mgr, &plan, &mut figs)?);
    rows.push(storm(&mgr, &pump, &plan, &mut figs)?);
    let churn = churn(&mgr, &plan, cpus, &mut figs)?;
    rows.push(mixed(&mgr, &pump, &plan, &mut figs)?);
    rows.push(long(&mgr, &pump, &plan, &mut figs)?);
    let elapsed = t0.elapsed();
    let m = mgr.statistics();
    pump.stop();
    mgr.shutdown();
    drop(mgr);
    let fds_after = open_fds();
    let threads_after = threads();
    let failures = report(
        &mut figs,
        &rows,
        &churn,
        elapsed,
        &m,
        (fds_before, fds_after),
        (threads_before, threads_after),
    );
    Ok(Outcome {
        figures: figs,
        failures,
    })
}

/// Sub-test 1: `connections` calls, each set up on its own thread, the
/// threads launched in a loop with a 10 ms pause after every tenth.
fn massive(mgr: &Arc<BuilderManager>, plan: &Plan, figs: &mut Figures) -> Result<Row, BoxError> {
    let n = plan.connections;
    println!();
    println!(
        "1. Massive connections: {n} calls ({} builders), one thread each, 10 ms pause after \
         every tenth launch; held {:.1} s, then released",
        2 * n,
        plan.hold.as_secs_f64()
    );
    let created_before = mgr.statistics().total_builders_created;
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for i in 0..n {
        let mgr = mgr.clone();
        handles.push(std::thread::spawn(move || {
            Call::connect(&mgr, &format!("massive-a-{i}"), &format!("massive-b-{i}"))
                .map_err(|e| e.to_string())
        }));
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut calls = Vec::new();
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(c)) => calls.push(c),
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a connection thread panicked".to_owned()),
        }
    }
    let elapsed = t0.elapsed();
    let s = mgr.statistics();
    let running = calls
        .iter()
        .filter(|c| c.sa.is_running() && c.sb.is_running())
        .count();
    println!(
        "   {} of {n} calls up in {} ms ({:.0} calls/s, launch to last set-up); {} builders \
         created; {} pairs in use; {running} calls with media running both ways; {} threads \
         in the process (the connection threads have ended: main, the event pump and the \
         manager's own)",
        calls.len(),
        elapsed.as_millis(),
        calls.len() as f64 / elapsed.as_secs_f64(),
        s.total_builders_created - created_before,
        s.ports_in_use,
        threads()
    );
    for e in errors.iter().take(5) {
        println!("   failed: {e}");
    }
    std::thread::sleep(plan.hold);
    let t_release = Instant::now();
    for c in &calls {
        c.release(mgr);
    }
    println!(
        "   held {:.1} s; released in {} ms; {} builders left",
        plan.hold.as_secs_f64(),
        t_release.elapsed().as_millis(),
        mgr.statistics().active_builders
    );
    let whole = t0.elapsed();
    figs.put("stress.massive.success", calls.len());
    figs.put("stress.massive.attempted", n);
    figs.put("stress.massive.elapsed_ms", elapsed.as_millis() as u64);
    figs.real(
        "stress.massive.calls_per_s",
        calls.len() as f64 / elapsed.as_secs_f64(),
        1,
    );
    Ok(Row {
        name: "massive",
        elapsed: whole,
        conns_ok: calls.len() as u64,
        conns_failed: errors.len() as u64,
        ..Row::default()
    })
}

/// Sub-test 2: `storm_pairs` calls, two sender threads per call (one per
/// direction), each sending a random key of 50 ms and pausing 50-100 ms.
fn storm(
    mgr: &Arc<BuilderManager>,
    pump: &EventPump,
    plan: &Plan,
    figs: &mut Figures,
) -> Result<Row, BoxError> {
    let n = plan.storm_pairs;
    println!();
    println!(
        "2. DTMF storm: {n} calls, 2 sender threads each ({} in all), for {:.0} s: a random \
         key of the 12 for 50 ms, then a pause of 50 + 0..50 ms",
        2 * n,
        plan.storm.as_secs_f64()
    );
    let mut row = Row {
        name: "dtmf storm",
        ..Row::default()
    };
    let mut calls = Vec::new();
    for i in 0..n {
        match Call::connect(mgr, &format!("dtmf-a-{i}"), &format!("dtmf-b-{i}")) {
            Ok(c) => calls.push(Arc::new(Tracked::new(c, pump))),
            Err(e) => {
                println!("   dtmf-{i} failed: {e}");
                row.conns_failed += 1;
            }
        }
    }
    row.conns_ok = calls.len() as u64;
    let refused = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let end = t0 + plan.storm;
    let mut senders = Vec::new();
    for (i, t) in calls.iter().enumerate() {
        for forward in [true, false] {
            let (t, refused) = (t.clone(), refused.clone());
            senders.push(std::thread::spawn(move || {
                let mut rng = Rng::new(i as u64 * 2 + u64::from(forward));
                let (session, count) = if forward {
                    (&t.call.sa, &t.dtmf_ab)
                } else {
                    (&t.call.sb, &t.dtmf_ba)
                };
                let mut keys = Vec::new();
                while Instant::now() < end {
                    let key = KEYS[rng.below(12) as usize];
                    match call::timed("send_dtmf", || {
                        session.send_dtmf(key, Duration::from_millis(50))
                    }) {
                        Ok(()) => {
                            count.fetch_add(1, Ordering::SeqCst);
                            keys.push(key);
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50 + rng.below(50)));
                }
                keys
            }));
        }
    }
    let mut sent_keys = Vec::new();
    for s in senders {
        sent_keys.push(s.join().map_err(|_| "a DTMF sender panicked")?);
    }
    let window = t0.elapsed();
    let accepted: u64 = sent_keys.iter().map(|k| k.len() as u64).sum();
    let by_window: u64 = calls.iter().map(|t| t.ta.dtmf() + t.tb.dtmf()).sum();
    let refs: Vec<&Tracked> = calls.iter().map(|t| t.as_ref()).collect();
    let (settled, drain) = settle(&refs, SETTLE);
    let elapsed = t0.elapsed();
    for t in &calls {
        t.account(&mut row);
    }
    row.elapsed = elapsed;
    // Per direction: the keys received are the keys sent, in order, less
    // those the session refused (a refusal drops the key asked for then).
    let mut in_order = true;
    for (i, t) in calls.iter().enumerate() {
        for (dir, got, sent) in [
            ("a->b", t.tb.keys(), &sent_keys[2 * i]),
            ("b->a", t.ta.keys(), &sent_keys[2 * i + 1]),
        ] {
            if !is_subsequence(&got, sent) {
                in_order = false;
                println!(
                    "   dtmf-{i} {dir}: sent [{}], received [{}]",
                    sent.iter().collect::<String>(),
                    got.iter().collect::<String>()
                );
            }
        }
    }
    let directions = (2 * calls.len()).max(1) as f64;
    println!(
        "   send_dtmf calls: {} ({:.0}/s over the {:.1} s window, from its start to the last \
         sender's return); refused at once: {}; accepted: {accepted}, of which the media \
         refused {} later (a session queues at most 16 keys; the refusal comes back as an \
         event); keys taken: {}",
        accepted + refused.load(Ordering::SeqCst),
        (accepted + refused.load(Ordering::SeqCst)) as f64 / window.as_secs_f64(),
        window.as_secs_f64(),
        refused.load(Ordering::SeqCst),
        row.dtmf_refused,
        row.dtmf_sent
    );
    println!(
        "   keys received (reported ended at the far end): {by_window} by the end of the \
         window, {} once the queues had drained, {} ms later{}",
        row.dtmf_received,
        drain.as_millis(),
        if settled { "" } else { " (gave up waiting)" }
    );
    println!(
        "   on the wire a direction carried {:.1} keys/s over the {:.1} s from the window's \
         start until the queues had drained, {:.0} ms a key (a key of 50 ms, its end packets, the gap \
         before the next), slower than the callers asked: keys queue",
        row.dtmf_received as f64 / directions / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 * directions / row.dtmf_received.max(1) as f64
    );
    println!(
        "   keys received in the order sent (refused ones left out), every direction: \
         {in_order}; telephone-event packets lost: {}",
        row.lost
    );
    for t in &calls {
        t.release(mgr, pump);
    }
    figs.put(
        "stress.dtmf_storm.send_calls",
        accepted + refused.load(Ordering::SeqCst),
    );
    figs.put(
        "stress.dtmf_storm.refused",
        row.dtmf_refused + refused.load(Ordering::SeqCst),
    );
    figs.put("stress.dtmf_storm.sent", row.dtmf_sent);
    figs.put("stress.dtmf_storm.received", row.dtmf_received);
    figs.put("stress.dtmf_storm.in_order", in_order);
    figs.put("stress.dtmf_storm.drain_ms", drain.as_millis() as u64);
    Ok(row)
}

/// Whether `sub` is `full` with some items left out, order kept.
fn is_subsequence(sub: &[char], full: &[char]) -> bool {
    let mut rest = full.iter();
    sub.iter().all(|c| rest.any(|f| f == c))
}

/// What the churn measured (no calls: builders offer and are released).
struct Churn {
    elapsed: Duration,
    created: u64,
    released: u64,
    failed: u64,
    cut_short: u64,
}

/// Sub-test 3: one worker per CPU creates a builder, offers, pauses
/// 0..10 ms and releases it, for `churn`.
fn churn(
    mgr: &Arc<BuilderManager>,
    plan: &Plan,
    workers: usize,
    figs: &mut Figures,
) -> Result<Churn, BoxError> {
    println!();
    println!(
        "3. Rapid churn: {workers} workers (one per CPU) create a builder, offer, pause 0..10 \
         ms, release, for {:.0} s",
        plan.churn.as_secs_f64()
    );
    let created = Arc::new(AtomicU64::new(0));
    let released = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cut_before = mgr.statistics().quarantine_cut_short;
    let t0 = Instant::now();
    let end = t0 + plan.churn;
    let mut handles = Vec::new();
    for w in 0..workers {
        let (mgr, created, released, failed) = (
            mgr.clone(),
            created.clone(),
            released.clone(),
            failed.clone(),
        );
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(1000 + w as u64);
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let id = format!("churn-{w}-{n}");
                let b = match mgr.create_builder(&id) {
                    Ok(b) => b,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        continue;
                    }
                };
                created.fetch_add(1, Ordering::Relaxed);
                if b.create_offer().is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(rng.below(10)));
                if mgr.release_builder(&id) {
                    released.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    while Instant::now() < end {
        std::thread::sleep(
            plan.churn_progress
                .min(end.saturating_duration_since(Instant::now())),
        );
        println!(
            "   [{:4.2} s] created {}, released {}",
            t0.elapsed().as_secs_f64(),
            created.load(Ordering::Relaxed),
            released.load(Ordering::Relaxed)
        );
    }
    for h in handles {
        h.join().map_err(|_| "a churn worker panicked")?;
    }
    let elapsed = t0.elapsed();
    let s = mgr.statistics();
    let c = Churn {
        elapsed,
        created: created.load(Ordering::SeqCst),
        released: released.load(Ordering::SeqCst),
        failed: failed.load(Ordering::SeqCst),
        cut_short: s.quarantine_cut_short - cut_before,
    };
    println!(
        "   created {}, released {}, failed {} in {:.2} s: {:.0} operations/s (a create or a \
         release is one operation, over the measured time); {} pairs quarantined after (every \
         pair released so far, sub-tests 1 and 2 included, that no allocation has reclaimed \
         yet: the allocator takes a pair back lazily, once its 5 s are up and it meets it), {} \
         allocations cut a quarantine short; {} builders left",
        c.created,
        c.released,
        c.failed,
        elapsed.as_secs_f64(),
        (c.created + c.released) as f64 / elapsed.as_secs_f64(),
        s.ports_quarantined,
        c.cut_short,
        s.active_builders
    );
    figs.put("stress.churn.created", c.created);
    figs.put("stress.churn.released", c.released);
    figs.put("stress.churn.failed", c.failed);
    figs.real(
        "stress.churn.ops_per_s",
        (c.created + c.released) as f64 / elapsed.as_secs_f64(),
        0,
    );
    Ok(c)
}

/// The bounded queue of calls the mixed-load workers share.
struct Queue {
    calls: Mutex<VecDeque<Arc<Tracked>>>,
    capacity: usize,
    /// The most calls it held at once, after any push (the creator's new
    /// calls and the workers' returned ones alike).
    peak: AtomicUsize,
}

impl Queue {
    fn pop(&self) -> Option<Arc<Tracked>> {
        lock(&self.calls).pop_front()
    }

    /// Adds `t` (a new call, or one a worker is done with); `Err(t)` when
    /// full.
    fn push(&self, t: Arc<Tracked>) -> Result<(), Arc<Tracked>> {
        let mut q = lock(&self.calls);
        if q.len() >= self.capacity {
            return Err(t);
        }
        q.push_back(t);
        self.peak.fetch_max(q.len(), Ordering::Relaxed);
        Ok(())
    }

    fn len(&self) -> usize {
        lock(&self.calls).len()
    }
}

/// Settles a call taken out of use, adds its figures to `row` and
/// releases it.
fn retire(
    t: &Tracked,
    row: &Mutex<Row>,
    unsettled: &AtomicU64,
    mgr: &BuilderManager,
    pump: &EventPump,
) {
    let (ok, _) = settle(&[t], Duration::from_secs(3));
    if !ok {
        unsettled.fetch_add(1, Ordering::SeqCst);
    }
    t.account(&mut lock(row));
    t.release(mgr, pump);
}

/// Sub-test 4: a creating worker, audio workers, DTMF workers and a
/// deleting worker share a queue of at most 100 calls for `mixed`. A
/// worker takes a call out of the queue, uses it, and puts it back, so no
/// two workers touch one call; every worker is joined before the queue is
/// drained, so nothing sends to a call being torn down.
fn mixed(
    mgr: &Arc<BuilderManager>,
    pump: &EventPump,
    plan: &Plan,
    figs: &mut Figures,
) -> Result<Row, BoxError> {
    const AUDIO_WORKERS: usize = 4;
    const DTMF_WORKERS: usize = 2;
    println!();
    println!(
        "4. Parallel mixed load for {:.0} s: a queue of at most 100 calls; 1 worker sets up \
         a call and pauses 50 ms, {AUDIO_WORKERS} send 10 frames of audio both ways on a \
         call, {DTMF_WORKERS} send keys 1 2 3 (100 ms, 150 ms apart) on a call, 1 waits until \
         a call has received all that was sent to it, deletes it and pauses 100 ms; a \
         worker takes a call out of the queue and puts it back when done",
        plan.mixed.as_secs_f64()
    );
    let queue = Arc::new(Queue {
        calls: Mutex::new(VecDeque::new()),
        capacity: 100,
        peak: AtomicUsize::new(0),
    });
    let row = Arc::new(Mutex::new(Row {
        name: "mixed load",
        ..Row::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let unsettled = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let queue_full = Arc::new(AtomicU64::new(0));
    let deleted = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    std::thread::scope(|s| -> Result<(), BoxError> {
        let mut workers = Vec::new();
        // Creator.
        workers.push(s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                if queue.len() >= queue.capacity {
                    queue_full.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                n += 1;
                match Call::connect(mgr, &format!("parallel-{n}-a"), &format!("parallel-{n}-b")) {
                    Ok(c) => {
                        lock(&row).conns_ok += 1;
                        let t = Arc::new(Tracked::new(c, pump));
                        if let Err(t) = queue.push(t) {
                            retire(&t, &row, &unsettled, mgr, pump);
                            deleted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(e) => {
                        lock(&row).conns_failed += 1;
                        println!("   parallel-{n} failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
        // Audio.
        for w in 0..AUDIO_WORKERS {
            let (queue, stop, frames) = (&queue, &stop, &frames);
            let (row, unsettled, deleted) = (&row, &unsettled, &deleted);
            workers.push(s.spawn(move || {
                let mut tone = Tone::sine(300.0 + 100.0 * w as f64, 0.3, 8000).ok();
                let mut frame = [0i16; FRAME];
                while !stop.load(Ordering::SeqCst) {
                    let Some(t) = queue.pop() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let start = Instant::now();
                    for k in 1..=10u32 {
                        if let Some(tone) = tone.as_mut() {
                            next_frame(tone, &mut frame);
                        }
                        for session in [&t.call.sa, &t.call.sb] {
                            if call::timed("send_audio", || session.send_audio(&frame)).is_ok() {
                                frames.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let next = start + PTIME * k;
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                    if let Err(t) = queue.push(t) {
                        retire(&t, row, unsettled, mgr, pump);
                        deleted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        // DTMF.
        for _ in 0..DTMF_WORKERS {
            let (queue, stop, row, unsettled) = (&queue, &stop, &row, &unsettled);
            let deleted = &deleted;
            workers.push(s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Some(t) = queue.pop() else {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    for key in ['1', '2', '3'] {
                        if call::timed("send_dtmf", || {
                            t.call.sa.send_dtmf(key, Duration::from_millis(100))
                        })
                        .is_ok()
                        {
                            t.dtmf_ab.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    if let Err(t) = queue.push(t) {
                        retire(&t, row, unsettled, mgr, pump);
                        deleted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        // Deleter.
        workers.push(s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let Some(t) = queue.pop() else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                retire(&t, &row, &unsettled, mgr, pump);
                deleted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
        let mut next = t0 + plan.mixed / 4;
        while t0.elapsed() < plan.mixed {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += plan.mixed / 4;
            let r = lock(&row).clone();
            let (queued, gone) = (queue.len() as u64, deleted.load(Ordering::SeqCst));
            println!(
                "   [{:4.1} s] calls created {}: {queued} in the queue, {} out of it with a \
                 worker, {gone} deleted; the deleted calls' audio packets {}/{} \
                 received/sent, DTMF events {}/{}",
                t0.elapsed().as_secs_f64(),
                r.conns_ok,
                r.conns_ok.saturating_sub(queued + gone),
                r.audio_received,
                r.audio_sent,
                r.dtmf_received,
                r.dtmf_sent
            );
        }
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().map_err(|_| "a mixed-load worker panicked")?;
        }
        Ok(())
    })?;
    let stopped = t0.elapsed();
    // Every worker is joined: what is left sits in the queue, untouched.
    let left: Vec<Arc<Tracked>> = lock(&queue.calls).drain(..).collect();
    let refs: Vec<&Tracked> = left.iter().map(|t| t.as_ref()).collect();
    let (settled, drain) = settle(&refs, SETTLE);
    if !settled {
        unsettled.fetch_add(1, Ordering::SeqCst);
    }
    {
        let mut r = lock(&row);
        for t in &left {
            t.account(&mut r);
        }
    }
    for t in &left {
        t.release(mgr, pump);
    }
    let mut r = lock(&row).clone();
    r.elapsed = t0.elapsed();
    println!(
        "   workers joined {:.2} s in, each having put its call back; {} calls left in the \
         queue settled in {} ms and were released; peak queue {} (the most calls it held \
         at once, after any push), creator waited on a full queue {} times",
        stopped.as_secs_f64(),
        left.len(),
        drain.as_millis(),
        queue.peak.load(Ordering::SeqCst),
        queue_full.load(Ordering::SeqCst)
    );
    println!(
        "   calls {} set up, {} failed; audio frames written {}, audio packets sent {} \
         received {}; DTMF events sent {} received {}; loss {:.2}%, max jitter {:.2} ms; \
         calls that did not settle: {}",
        r.conns_ok,
        r.conns_failed,
        frames.load(Ordering::SeqCst),
        r.audio_sent,
        r.audio_received,
        r.dtmf_sent,
        r.dtmf_received,
        r.loss_pct(),
        r.jitter.as_secs_f64() * 1000.0,
        unsettled.load(Ordering::SeqCst)
    );
    if frames.load(Ordering::SeqCst) != r.audio_sent {
        println!(
            "   (frames written and packets sent differ: a frame that falls on a \
             telephone-event is not sent, the event replaces the audio)"
        );
    }
    figs.put("stress.mixed.calls", r.conns_ok);
    figs.put("stress.mixed.queue_left", left.len());
    figs.put("stress.mixed.queue_peak", queue.peak.load(Ordering::SeqCst));
    figs.put("stress.mixed.audio_sent", r.audio_sent);
    figs.put("stress.mixed.audio_received", r.audio_received);
    figs.real("stress.mixed.loss_pct", r.loss_pct(), 2);
    figs.real("stress.mixed.jitter_ms", r.jitter.as_secs_f64() * 1000.0, 2);
    figs.put("stress.mixed.dtmf_sent", r.dtmf_sent);
    figs.put("stress.mixed.dtmf_received", r.dtmf_received);
    figs.put("stress.mixed.unsettled", unsettled.load(Ordering::SeqCst));
    Ok(r)
}

/// Sub-test 5: one call for `long`: audio every 20 ms both ways, a key
/// every second from alice.
fn long(
    mgr: &Arc<BuilderManager>,
    pump: &EventPump,
    plan: &Plan,
    figs: &mut Figures,
) -> Result<Row, BoxError> {
    println!();
    println!(
        "5. Long-running call for {:.0} s: audio frames every 20 ms both ways, a key (1, 2, 3 \
         in turn, 200 ms) every second from alice, progress every {:.1} s",
        plan.long.as_secs_f64(),
        plan.long_progress.as_secs_f64()
    );
    let t = Tracked::new(Call::connect(mgr, "long-alice", "long-bob")?, pump);
    let stop = AtomicBool::new(false);
    let written = AtomicU64::new(0);
    // Audio one-way delay: once a second alice writes a marker frame (a
    // 1 kHz square wave at about half of full scale, louder than the
    // tones); the time from `send_audio` to bob's decoded marker frame is
    // the delay an application sees (ring, pacing, network, jitter buffer).
    let marker_writes: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
    let t0 = Instant::now();
    std::thread::scope(|s| -> Result<(), BoxError> {
        let audio = s.spawn(|| -> Result<(), String> {
            let mut tones = [
                Tone::sine(440.0, 0.3, 8000).map_err(|e| e.to_string())?,
                Tone::sine(660.0, 0.3, 8000).map_err(|e| e.to_string())?,
            ];
            let mut frame = [0i16; FRAME];
            let mut k = 0u32;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                for (i, (tone, session)) in
                    tones.iter_mut().zip([&t.call.sa, &t.call.sb]).enumerate()
                {
                    next_frame(tone, &mut frame);
                    let marker = i == 0 && k % 50 == 25;
                    if marker {
                        for (j, s) in frame.iter_mut().enumerate() {
                            *s = if j % 8 < 4 {
                                MARKER_LEVEL
                            } else {
                                -MARKER_LEVEL
                            };
                        }
                    }
                    call::timed("send_audio", || session.send_audio(&frame))
                        .map_err(|e| e.to_string())?;
                    if marker {
                        lock(&marker_writes).push(Instant::now());
                    }
                    written.fetch_add(1, Ordering::Relaxed);
                }
                let next = t0 + PTIME * k;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(())
        });
        let dtmf = s.spawn(|| -> Result<(), String> {
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let next = t0 + Duration::from_secs(1) * i;
                while Instant::now() < next {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let key = ['1', '2', '3'][(i as usize - 1) % 3];
                t.call
                    .sa
                    .send_dtmf(key, Duration::from_millis(200))
                    .map_err(|e| e.to_string())?;
                t.dtmf_ab.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
        let mut next = t0 + plan.long_progress;
        while t0.elapsed() < plan.long {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += plan.long_progress;
            let snap = t.snapshot();
            println!(
                "   [{:4.1} s] audio packets alice->bob {}/{} bob->alice {}/{} (received/sent), \
                 DTMF events {}/{}",
                t0.elapsed().as_secs_f64(),
                snap.b_audio_received,
                snap.a_audio_sent,
                snap.a_audio_received,
                snap.b_audio_sent,
                snap.events_ab,
                t.dtmf_ab.load(Ordering::SeqCst)
            );
        }
        stop.store(true, Ordering::SeqCst);
        audio.join().map_err(|_| "the audio thread panicked")??;
        dtmf.join().map_err(|_| "the DTMF thread panicked")??;
        Ok(())
    })?;
    let (settled, _) = settle(&[&t], SETTLE);
    let mut row = Row {
        name: "long call",
        conns_ok: 1,
        ..Row::default()
    };
    t.account(&mut row);
    row.elapsed = t0.elapsed();
    let (a, b) = (t.call.sa.statistics(), t.call.sb.statistics());
    let replaced: u64 = a
        .streams
        .iter()
        .chain(&b.streams)
        .map(|(_, e)| e.input_discarded)
        .sum();
    let mos = a.mos.into_iter().chain(b.mos).fold(f64::INFINITY, f64::min);
    let ratio = if row.audio_sent == 0 {
        0.0
    } else {
        row.audio_received as f64 * 100.0 / row.audio_sent as f64
    };
    println!(
        "   audio frames written {}, of which {replaced} fell during a telephone-event and \
         were not sent (RFC 4733: an event replaces the audio); audio packets sent {}, \
         received {}",
        written.load(Ordering::SeqCst),
        row.audio_sent,
        row.audio_received
    );
    println!(
        "   stability, measured: {ratio:.2}% of audio packets received; loss {:.2}% (RFC 3550 \
         expected minus received); max interarrival jitter {:.2} ms; lowest MOS-CQ estimate \
         {}; DTMF events {} sent, {} received; settled: {settled}",
        row.loss_pct(),
        row.jitter.as_secs_f64() * 1000.0,
        if mos.is_finite() {
            format!("{mos:.2}")
        } else {
            "none".to_owned()
        },
        row.dtmf_sent,
        row.dtmf_received
    );
    let delays = marker_delays(&lock(&marker_writes), &lock(&t.tb.markers));
    t.release(mgr, pump);
    let p = crate::latency::Percentiles::of(&delays);
    println!(
        "   audio one-way delay alice->bob (send_audio to decoded frame, {} markers, {} seen): \
         ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        lock(&marker_writes).len(),
        p.count,
        p.p50 as f64 / 1000.0,
        p.p90 as f64 / 1000.0,
        p.p99 as f64 / 1000.0,
        p.max as f64 / 1000.0
    );
    figs.put("stress.long_call.audio_delay_ms.markers", p.count);
    for (name, v) in [
        ("p50", p.p50),
        ("p90", p.p90),
        ("p99", p.p99),
        ("max", p.max),
    ] {
        if p.count > 0 {
            figs.real(
                &format!("stress.long_call.audio_delay_ms.{name}"),
                v as f64 / 1000.0,
                2,
            );
        } else {
            figs.put(
                &format!("stress.long_call.audio_delay_ms.{name}"),
                serde_json::Value::Null,
            );
        }
    }
    figs.put("stress.long_call.audio_sent", row.audio_sent);
    figs.put("stress.long_call.audio_received", row.audio_received);
    figs.real("stress.long_call.received_pct", ratio, 2);
    figs.real("stress.long_call.loss_pct", row.loss_pct(), 2);
    figs.real(
        "stress.long_call.jitter_ms",
        row.jitter.as_secs_f64() * 1000.0,
        2,
    );
    // `null` when neither side had a MOS estimate yet.
    if mos.is_finite() {
        figs.real("stress.long_call.mos_min", mos, 2);
    } else {
        figs.put("stress.long_call.mos_min", serde_json::Value::Null);
    }
    figs.put("stress.long_call.dtmf_sent", row.dtmf_sent);
    figs.put("stress.long_call.dtmf_received", row.dtmf_received);
    Ok(row)
}

/// Peak of the long call's marker frames (above [`call::MARKER_PEAK`]
/// after G.711 coding).
const MARKER_LEVEL: i16 = 16_000;

/// Pairs each marker write with the first marker frame decoded after it
/// and within a second: the delays, µs.
fn marker_delays(writes: &[Instant], seen: &[Instant]) -> hdrhistogram::Histogram<u64> {
    let mut h = crate::latency::new_histogram();
    for &w in writes {
        if let Some(&a) = seen
            .iter()
            .find(|&&a| a >= w && a - w < Duration::from_secs(1))
        {
            let _ = h.record(((a - w).as_micros() as u64).clamp(1, crate::latency::MAX_LATENCY_US));
        }
    }
    h
}

/// The final report; returns the self-check failures.
fn report(
    figs: &mut Figures,
    rows: &[Row],
    churn: &Churn,
    elapsed: Duration,
    m: &ManagerStatistics,
    fds: (usize, usize),
    threads: (usize, usize),
) -> Vec<String> {
    let secs = elapsed.as_secs_f64();
    let sum = |f: fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    let (ok, failed) = (sum(|r| r.conns_ok), sum(|r| r.conns_failed));
    let (audio_sent, audio_received) = (sum(|r| r.audio_sent), sum(|r| r.audio_received));
    let (dtmf_sent, dtmf_received) = (sum(|r| r.dtmf_sent), sum(|r| r.dtmf_received));
    let success = if ok + failed == 0 {
        0.0
    } else {
        ok as f64 * 100.0 / (ok + failed) as f64
    };
    let leaked_fds = fds.1 as i64 - fds.0 as i64;
    let leaked_threads = threads.1 as i64 - threads.0 as i64;
    println!();
    println!("==================================================");
    println!(
        "Final report ({:.1} s from sub-test 1 to the end of sub-test 5)",
        secs
    );
    println!(
        "Per sub-test (its duration, set-up to release and settling; received/sent; loss \
         from RTP sequence numbers, RFC 3550 A.3):"
    );
    for r in rows {
        println!(
            "  {:<12} {:6.2} s  calls {:>3} ok {:>2} failed  audio packets {:>6}/{:<6}  DTMF \
             events {:>4}/{:<4}  loss {:.2}%  max jitter {:.2} ms",
            r.name,
            r.elapsed.as_secs_f64(),
            r.conns_ok,
            r.conns_failed,
            r.audio_received,
            r.audio_sent,
            r.dtmf_received,
            r.dtmf_sent,
            r.loss_pct(),
            r.jitter.as_secs_f64() * 1000.0
        );
    }
    // Operations per second over each sub-test's real elapsed time, and
    // its success share.
    for r in rows {
        let key = match r.name {
            "dtmf storm" => "dtmf_storm",
            "mixed load" => "mixed",
            "long call" => "long_call",
            other => other,
        };
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let tried = r.conns_ok + r.conns_failed;
        figs.real(&format!("stress.{key}.elapsed_s"), secs, 3);
        figs.real(
            &format!("stress.{key}.calls_per_s"),
            r.conns_ok as f64 / secs,
            1,
        );
        figs.real(
            &format!("stress.{key}.success_pct"),
            if tried == 0 {
                0.0
            } else {
                r.conns_ok as f64 * 100.0 / tried as f64
            },
            2,
        );
        figs.real(
            &format!("stress.{key}.dtmf_per_s"),
            r.dtmf_sent as f64 / secs,
            1,
        );
        figs.real(&format!("stress.{key}.loss_pct"), r.loss_pct(), 3);
    }
    let churn_secs = churn.elapsed.as_secs_f64().max(1e-9);
    figs.real("stress.churn.elapsed_s", churn_secs, 3);
    figs.real(
        "stress.churn.builders_per_s",
        churn.created as f64 / churn_secs,
        1,
    );
    figs.real(
        "stress.churn.success_pct",
        if churn.created + churn.failed == 0 {
            0.0
        } else {
            churn.created as f64 * 100.0 / (churn.created + churn.failed) as f64
        },
        2,
    );
    let api = call::take_api_times();
    println!("Media builder API latency (us, every call of the run):");
    for (op, h) in &api {
        let p = crate::latency::Percentiles::of(h);
        println!(
            "  {op:<16} {:>7} calls  p50 {:>6} p90 {:>6} p99 {:>6} p99.9 {:>6} max {:>7}",
            p.count, p.p50, p.p90, p.p99, p.p999, p.max
        );
        for (name, v) in [
            ("count", p.count),
            ("p50", p.p50),
            ("p90", p.p90),
            ("p99", p.p99),
            ("p999", p.p999),
            ("max", p.max),
        ] {
            figs.put(&format!("stress.api_us.{op}.{name}"), v);
        }
    }
    println!(
        "  {:<12} {:6.2} s  builders {} created, {} released, {} refused (offer only, no \
         sockets)",
        "churn",
        churn.elapsed.as_secs_f64(),
        churn.created,
        churn.released,
        churn.failed
    );
    println!("Totals and rates (over the {secs:.1} s above):");
    println!(
        "  builders created      {:>7}  {:8.1}/s  every builder of every sub-test, churn \
         included (the seed counted sub-test 1 only)",
        m.total_builders_created,
        m.total_builders_created as f64 / secs
    );
    println!(
        "  calls set up          {:>7}  {:8.1}/s  offer/answer done and each side's media \
         started, sub-tests 1, 2, 4, 5 (the seed counted 1 and 4, and only calls its queue \
         took)",
        ok,
        ok as f64 / secs
    );
    println!(
        "  audio packets sent    {:>7}  {:8.1}/s  RTP audio packets on the wire, sub-tests 4 \
         and 5 (the seed counted send calls of sub-test 4, each sent twice)",
        audio_sent,
        audio_sent as f64 / secs
    );
    println!(
        "  audio packets recv'd  {:>7}  {:8.1}/s  RTP audio packets accepted at the far end",
        audio_received,
        audio_received as f64 / secs
    );
    println!(
        "  DTMF events sent      {:>7}  {:8.1}/s  keys the media took: send_dtmf accepted \
         them and the session did not refuse them later ({} were), sub-tests 2, 4, 5 (the \
         seed: send calls of 2 and 4, errors included)",
        dtmf_sent,
        dtmf_sent as f64 / secs,
        sum(|r| r.dtmf_refused)
    );
    println!(
        "  DTMF events recv'd    {:>7}  {:8.1}/s  telephone-events reported ended at the far \
         end (the seed counted callbacks)",
        dtmf_received,
        dtmf_received as f64 / secs
    );
    println!(
        "  success rate          {success:6.1}%  calls set up / calls attempted (failed \
         calls' builders are released, not leaked)"
    );
    println!(
        "Manager before shutdown: {} builders active, {} created, {} pairs in use, {} \
         available, of them {} quarantined (released and not reclaimed yet: the allocator \
         takes a pair back lazily, once its 5 s release delay is up and an allocation meets \
         it), {} idle timeouts, {} allocations cut a quarantine short",
        m.active_builders,
        m.total_builders_created,
        m.ports_in_use,
        m.ports_available,
        m.ports_quarantined,
        m.session_timeouts,
        m.quarantine_cut_short
    );
    println!(
        "After shutdown: open descriptors {} before the manager, {} after (leaked {leaked_fds}); \
         threads {} before, {} after (leaked {leaked_threads})",
        fds.0, fds.1, threads.0, threads.1
    );
    figs.real("stress.elapsed_s", secs, 1);
    figs.put("stress.total.builders_created", m.total_builders_created);
    figs.real(
        "stress.total.builders_per_s",
        m.total_builders_created as f64 / secs,
        1,
    );
    figs.put("stress.total.calls", ok);
    figs.put("stress.total.calls_failed", failed);
    figs.real("stress.total.calls_per_s", ok as f64 / secs, 1);
    figs.put("stress.total.audio_sent", audio_sent);
    figs.put("stress.total.audio_received", audio_received);
    figs.real(
        "stress.total.audio_packets_per_s",
        audio_sent as f64 / secs,
        1,
    );
    figs.put("stress.total.dtmf_sent", dtmf_sent);
    figs.put("stress.total.dtmf_received", dtmf_received);
    figs.real("stress.total.dtmf_events_per_s", dtmf_sent as f64 / secs, 1);
    figs.real("stress.success_rate", success, 1);
    figs.put("stress.active_at_end", m.active_builders);
    figs.put("stress.leaks.fds_before", fds.0);
    figs.put("stress.leaks.fds_after", fds.1);
    figs.put("stress.leaks.fds", leaked_fds);
    figs.put("stress.leaks.threads_before", threads.0);
    figs.put("stress.leaks.threads_after", threads.1);
    figs.put("stress.leaks.threads", leaked_threads);

    let mut failures = Vec::new();
    if failed > 0 {
        failures.push(format!("{failed} calls failed"));
    }
    for r in rows {
        if r.audio_received != r.audio_sent {
            failures.push(format!(
                "{}: {} of {} audio packets received",
                r.name, r.audio_received, r.audio_sent
            ));
        }
        if r.dtmf_received != r.dtmf_sent {
            failures.push(format!(
                "{}: {} of {} DTMF events received",
                r.name, r.dtmf_received, r.dtmf_sent
            ));
        }
    }
    if m.active_builders != 0 {
        failures.push(format!("{} builders left", m.active_builders));
    }
    if leaked_fds != 0 {
        failures.push(format!("{leaked_fds} descriptors leaked"));
    }
    if leaked_threads != 0 {
        failures.push(format!("{leaked_threads} threads leaked"));
    }
    println!();
    if failures.is_empty() {
        println!(
            "Self-checks passed: every call set up, everything sent received, nothing leaked."
        );
        figs.put("stress.result", "ok");
    } else {
        figs.put("stress.result", "failed");
    }
    failures
}

//! port_management: how a [`BuilderManager`] hands out, withholds and takes
//! back RTP/RTCP port pairs, in five demonstrations with their own managers:
//!
//! 1. sequential allocation, and why a released pair is not handed out
//!    again at once;
//! 2. random allocation from ten threads, with the spread measured;
//! 3. exhaustion (the builder limit, then the ports themselves) and
//!    recovery;
//! 4. live monitoring while builders come and go, and the idle cleanup
//!    closing an idle builder while a call with media flowing survives;
//! 5. sizing a port range, and an invalid one refused by validation.
//!
//! ```text
//! cargo run --release --example port_management              # full timings
//! cargo run --release --example port_management -- --quick   # shorter waits
//! ```
//!
//! The steps follow the seed library's `port_management` example (which
//! stopped at demonstration 3 on an invalid configuration). Ports are read
//! from the `m=` lines of the offers; counts from the allocator. Figures
//! for machines are printed as `## key=value` lines; exit status 1 (and a
//! message on stderr) when a step or a self-check fails.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BoxError, Call, figure, list, lock, next_frame, quick_mode};
use mediarelay::audio::Tone;
use mediarelay::builder::{
    BuilderManager, ConfigError, ManagerConfig, ManagerError, ManagerStatistics, PortStrategy,
};

/// One demonstration: runs in `quick` mode or not, adds failed self-checks.
type Demo = fn(bool, &mut Vec<String>) -> Result<(), BoxError>;

fn main() {
    let quick = quick_mode("port_management");
    let mut failures = Vec::new();
    let demos: [(&str, Demo); 5] = [
        ("1. Sequential allocation", sequential),
        ("2. Random allocation", random),
        ("3. Exhaustion and recovery", exhaustion),
        ("4. Live monitoring and idle cleanup", monitoring),
        ("5. Sizing a port range", sizing),
    ];
    println!(
        "Port management with the media builder ({} mode)",
        if quick { "quick" } else { "full" }
    );
    println!(
        "Ports are counted in RTP/RTCP pairs: an even RTP port and the odd RTCP port above it. \
         The seed library counted even ports, including a last one whose RTCP port lay outside \
         the range."
    );
    for (title, demo) in demos {
        println!();
        println!("{title}");
        if let Err(e) = demo(quick, &mut failures) {
            eprintln!("port_management: {title}: {e}");
            std::process::exit(1);
        }
    }
    println!();
    if failures.is_empty() {
        println!("Self-checks passed.");
        figure("result", "ok");
    } else {
        figure("result", "failed");
        eprintln!("port_management: {}", failures.join("; "));
        std::process::exit(1);
    }
}

fn base(min: u16, max: u16, builders: usize, strategy: PortStrategy) -> ManagerConfig {
    ManagerConfig {
        local_ip: "127.0.0.1".parse().expect("a literal address"),
        min_port: min,
        max_port: max,
        max_concurrent_builders: builders,
        port_strategy: strategy,
        session_timeout: None,
        ..ManagerConfig::default()
    }
}

/// The RTP port of the first `m=` line of `id`'s offer.
fn offer_port(mgr: &BuilderManager, id: &str) -> Result<u16, BoxError> {
    let b = mgr.create_builder(id)?;
    let offer = b.create_offer()?;
    let m = offer.media().first().ok_or("offer without m= line")?;
    Ok(m.port())
}

fn counts(s: &ManagerStatistics) -> String {
    format!(
        "{} active, {} pairs in use, {} available ({} of them quarantined)",
        s.active_builders, s.ports_in_use, s.ports_available, s.ports_quarantined
    )
}

fn check(failures: &mut Vec<String>, ok: bool, what: impl Into<String>) {
    if !ok {
        failures.push(what.into());
    }
}

/// Demonstration 1, sequential: next fit, so a released pair is reached again only after
/// the cursor has gone round the range (or its quarantine has passed
/// while nothing else is free).
fn sequential(_quick: bool, failures: &mut Vec<String>) -> Result<(), BoxError> {
    let mgr = BuilderManager::new(base(40000, 40021, 10, PortStrategy::Sequential))?;
    let s = mgr.statistics();
    println!(
        "   ports 40000-40021: {} pairs (40000/40001 ... 40020/40021), at most 10 builders, \
         release delay {} s",
        s.ports_total,
        mgr.config().port_release_delay.as_secs()
    );
    let mut ports = Vec::new();
    for i in 1..=5 {
        let p = offer_port(&mgr, &format!("seq-{i}"))?;
        println!("   seq-{i}: offer m=audio port {p}");
        ports.push(p);
    }
    let after_five = mgr.statistics();
    println!("   after five builders: {}", counts(&after_five));
    let released = ports[2];
    mgr.release_builder("seq-3");
    let after_release = mgr.statistics();
    println!(
        "   seq-3 released (port {released}): {}",
        counts(&after_release)
    );
    let new_port = offer_port(&mgr, "seq-new")?;
    let reused = new_port == released;
    println!(
        "   seq-new: offer m=audio port {new_port}; {}",
        if reused {
            "the released pair came straight back"
        } else {
            "not seq-3's pair: allocation moves on to the next pair up, and a released pair \
             also sits out the release delay while other pairs are free, so late packets of \
             the ended call cannot reach the next one (the seed library handed it straight \
             back)"
        }
    );
    figure("seq_pairs_total", s.ports_total);
    figure("seq_ports", list(&ports));
    figure("seq_available_after_5", after_five.ports_available);
    figure("seq_released_port", released);
    figure(
        "seq_quarantined_after_release",
        after_release.ports_quarantined,
    );
    figure("seq_new_port", new_port);
    figure("reused_immediately", reused);
    let consecutive = ports.windows(2).all(|w| w[1] == w[0] + 2);
    check(failures, consecutive, format!("sequential ports {ports:?}"));
    check(failures, !reused, "a released pair was reused at once");
    mgr.shutdown();
    Ok(())
}

/// Demonstration 2, random: ten threads, each creates a builder, offers, holds 50 ms,
/// releases.
fn random(_quick: bool, failures: &mut Vec<String>) -> Result<(), BoxError> {
    let mgr = Arc::new(BuilderManager::new(base(
        50000,
        50101,
        20,
        PortStrategy::Random,
    ))?);
    println!(
        "   ports 50000-50101: {} pairs, at most 20 builders; 10 threads started 10 ms apart \
         each create a builder, offer, hold 50 ms, release",
        mgr.statistics().ports_total
    );
    let got: Arc<Mutex<Vec<(Instant, usize, u16)>>> = Arc::default();
    let mut threads = Vec::new();
    for i in 0..10 {
        let (mgr, got) = (mgr.clone(), got.clone());
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let id = format!("rnd-{i}");
            let at = Instant::now();
            let p = offer_port(&mgr, &id).map_err(|e| format!("{id}: {e}"))?;
            lock(&got).push((at, i, p));
            std::thread::sleep(Duration::from_millis(50));
            mgr.release_builder(&id);
            Ok(())
        }));
        std::thread::sleep(Duration::from_millis(10));
    }
    for t in threads {
        t.join()
            .map_err(|_| "a random-allocation thread panicked")??;
    }
    let mut got = lock(&got).clone();
    got.sort();
    let ports: Vec<u16> = got.iter().map(|g| g.2).collect();
    for (_, i, p) in &got {
        println!("   rnd-{i}: port {p}");
    }
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    let (lo, hi) = (
        *distinct.first().unwrap_or(&0),
        *distinct.last().unwrap_or(&0),
    );
    let steps = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
    let s = mgr.statistics();
    println!(
        "   measured: {} distinct ports of {}, lowest {lo}, highest {hi}, spread {} ports of \
         the 100 the range spans; {steps} of 9 successive allocations took the next pair up \
         (sequential allocation: 9)",
        distinct.len(),
        ports.len(),
        hi - lo
    );
    println!("   afterwards: {}", counts(&s));
    figure("random_ports", list(&ports));
    figure("random_distinct", distinct.len());
    figure("random_spread", hi - lo);
    figure("random_sequential_steps", steps);
    check(
        failures,
        distinct.len() == ports.len(),
        "random allocation handed out a port twice",
    );
    mgr.shutdown();
    Ok(())
}

fn variant(e: &ManagerError) -> &'static str {
    match e {
        ManagerError::Limit(_) => "Limit",
        ManagerError::NoPorts(_) => "NoPorts",
        ManagerError::Config(_) => "Config",
        ManagerError::Closed => "Closed",
        ManagerError::Duplicate(_) => "Duplicate",
        ManagerError::EmptyId => "EmptyId",
        ManagerError::Engine(_) => "Engine",
        _ => "Other",
    }
}

/// Demonstration 3, exhaustion: six pairs, six builders at most.
fn exhaustion(_quick: bool, failures: &mut Vec<String>) -> Result<(), BoxError> {
    let mgr = BuilderManager::new(base(60000, 60011, 6, PortStrategy::Sequential))?;
    println!(
        "   ports 60000-60011: {} pairs, at most 6 builders (the seed library asked for 10 \
         builders on 6 ports, which its own validation refused)",
        mgr.statistics().ports_total
    );
    for i in 1..=6 {
        mgr.create_builder(&format!("exhaust-{i}"))?;
        println!(
            "   exhaust-{i} created: pairs still available: {}",
            mgr.statistics().ports_available
        );
    }
    let limit = match mgr.create_builder("exhaust-7") {
        Ok(_) => return Err("a 7th builder was created beyond the limit".into()),
        Err(e) => {
            println!("   exhaust-7 refused: ManagerError::{} ({e})", variant(&e));
            variant(&e)
        }
    };
    // The limit counts builders; ports can run out first when builders
    // offer more than one stream.
    mgr.release_builder("exhaust-6");
    let b1 = mgr.builder("exhaust-1").ok_or("exhaust-1 vanished")?;
    b1.set_audio_streams(2)?;
    let offer = b1.create_offer()?;
    let offered: Vec<u16> = offer.media().iter().map(|m| m.port()).collect();
    println!(
        "   exhaust-6 released; exhaust-1 offers two audio streams (ports {}), taking the \
         freed pair",
        list(&offered)
    );
    let no_ports = match mgr.create_builder("exhaust-extra") {
        Ok(_) => return Err("a builder was created with no pair left".into()),
        Err(e) => {
            println!(
                "   exhaust-extra refused with 5 builders alive: ManagerError::{} ({e})",
                variant(&e)
            );
            variant(&e)
        }
    };
    for i in 1..=3 {
        mgr.release_builder(&format!("exhaust-{i}"));
    }
    let s = mgr.statistics();
    println!("   exhaust-1..3 released: {}", counts(&s));
    let cut_before = s.quarantine_cut_short;
    let mut recovered = 0;
    for i in 1..=3 {
        match mgr.create_builder(&format!("recover-{i}")) {
            Ok(b) => {
                recovered += 1;
                println!(
                    "   recover-{i} created on port {}",
                    b.local_port().unwrap_or(0)
                );
            }
            Err(e) => println!("   recover-{i} failed: {e}"),
        }
    }
    let s = mgr.statistics();
    let cut_short = s.quarantine_cut_short - cut_before;
    println!(
        "   recovered {recovered} of 3; {cut_short} of these allocations cut a quarantine short \
         (every free pair had been released less than 5 s before); {}",
        counts(&s)
    );
    for id in mgr.active_builders() {
        mgr.release_builder(&id);
    }
    let end = mgr.statistics();
    println!("   everything released: {}", counts(&end));
    figure("exhausted_error", limit);
    figure("no_ports_error", no_ports);
    figure("recovered", recovered);
    figure("exhaust_cut_short", cut_short);
    figure("exhaust_available_end", end.ports_available);
    check(failures, limit == "Limit", format!("7th builder: {limit}"));
    check(
        failures,
        no_ports == "NoPorts",
        format!("no pair: {no_ports}"),
    );
    check(
        failures,
        recovered == 3,
        format!("recovered {recovered} of 3"),
    );
    check(
        failures,
        end.ports_available == end.ports_total,
        "pairs missing after releasing everything",
    );
    mgr.shutdown();
    Ok(())
}

/// Timings of demonstration 4.
struct MonitorPlan {
    timeout: Duration,
    cleanup: Duration,
    tick: Duration,
    wave1_gap: Duration,
    wave_gap: Duration,
    pause: Duration,
}

/// Demonstration 4: live monitoring while waves of builders come and go; then the idle
/// cleanup.
fn monitoring(quick: bool, failures: &mut Vec<String>) -> Result<(), BoxError> {
    let plan = if quick {
        MonitorPlan {
            timeout: Duration::from_secs(2),
            cleanup: Duration::from_millis(200),
            tick: Duration::from_millis(250),
            wave1_gap: Duration::from_millis(20),
            wave_gap: Duration::from_millis(40),
            pause: Duration::from_millis(250),
        }
    } else {
        MonitorPlan {
            timeout: Duration::from_secs(6),
            cleanup: Duration::from_millis(500),
            tick: Duration::from_millis(500),
            wave1_gap: Duration::from_millis(50),
            wave_gap: Duration::from_millis(100),
            pause: Duration::from_secs(1),
        }
    };
    let mgr = Arc::new(BuilderManager::new(ManagerConfig {
        session_timeout: Some(plan.timeout),
        cleanup_interval: plan.cleanup,
        ..base(30000, 30201, 50, PortStrategy::Random)
    })?);
    println!(
        "   ports 30000-30201: {} pairs, at most 50 builders, random; idle timeout {:.1} s \
         checked every {} ms (a builder is idle while it has neither signalling nor received \
         media)",
        mgr.statistics().ports_total,
        plan.timeout.as_secs_f64(),
        plan.cleanup.as_millis()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let monitor = {
        let (mgr, stop, tick) = (mgr.clone(), stop.clone(), plan.tick);
        std::thread::spawn(move || {
            let mut samples = 0u32;
            let mut peak = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let s = mgr.statistics();
                peak = peak.max(s.active_builders);
                samples += 1;
                println!(
                    "   [monitor {:5.2} s] active {:2}, created {:2}, pairs in use {:2}, \
                     available {:3}, quarantined {:2}, idle-closed {}",
                    t0.elapsed().as_secs_f64(),
                    s.active_builders,
                    s.total_builders_created,
                    s.ports_in_use,
                    s.ports_available,
                    s.ports_quarantined,
                    s.session_timeouts
                );
                std::thread::sleep(tick);
            }
            (samples, peak)
        })
    };

    // Wave 1: ten builders, each from its own thread.
    println!("   wave 1: monitor-1..10 created, one thread each");
    let mut threads = Vec::new();
    for i in 1..=10 {
        let mgr = mgr.clone();
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let b = mgr
                .create_builder(&format!("monitor-{i}"))
                .map_err(|e| e.to_string())?;
            b.create_offer().map_err(|e| e.to_string())?;
            Ok(())
        }));
        std::thread::sleep(plan.wave1_gap);
    }
    for t in threads {
        t.join().map_err(|_| "a wave thread panicked")??;
    }
    std::thread::sleep(plan.pause);
    println!("   wave 2: monitor-1..5 released");
    for i in 1..=5 {
        mgr.release_builder(&format!("monitor-{i}"));
        std::thread::sleep(plan.wave_gap);
    }
    std::thread::sleep(plan.pause);
    println!("   wave 3: monitor-new-11..15 created");
    for i in 11..=15 {
        let b = mgr.create_builder(&format!("monitor-new-{i}"))?;
        b.create_offer()?;
        std::thread::sleep(plan.wave_gap);
    }
    std::thread::sleep(plan.pause);
    let waves = mgr.statistics();
    println!("   after the waves: {}", counts(&waves));
    let wave_ids = mgr.active_builders();
    for id in &wave_ids {
        mgr.release_builder(id);
    }
    println!(
        "   the {} wave builders released before any reached the idle timeout",
        wave_ids.len()
    );

    // Idle cleanup: an offer nobody answers, beside a call with media.
    let idle = mgr.create_builder("idle-offer")?;
    idle.create_offer()?;
    let started = Instant::now();
    let call = Call::connect(&mgr, "active-a", "active-b")?;
    let talking = Arc::new(AtomicBool::new(true));
    let talkers: Vec<_> = [(call.sa.clone(), 440.0), (call.sb.clone(), 660.0)]
        .into_iter()
        .map(|(session, hz)| {
            let talking = talking.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let mut tone = Tone::sine(hz, 0.3, 8000).map_err(|e| e.to_string())?;
                let mut frame = [0i16; 160];
                let t = Instant::now();
                let mut k = 0u32;
                while talking.load(Ordering::SeqCst) {
                    next_frame(&mut tone, &mut frame);
                    session.send_audio(&frame).map_err(|e| e.to_string())?;
                    k += 1;
                    let next = t + Duration::from_millis(20) * k;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
                Ok(())
            })
        })
        .collect();
    println!(
        "   idle-offer offers and hears nothing back; active-a and active-b are in a call, \
         sending 20 ms audio frames both ways"
    );
    let timeouts_before = mgr.statistics().session_timeouts;
    let deadline = plan.timeout + plan.cleanup * 4 + Duration::from_secs(1);
    while listed(&mgr, "idle-offer") && started.elapsed() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let closed_after = started.elapsed();
    let rx_then = received(&call);
    // One more cleanup pass with the call still older than the timeout.
    std::thread::sleep(plan.cleanup * 2);
    let alive = mgr.active_builders();
    let alive_at = started.elapsed();
    let rx_now = received(&call);
    let idle_closed = mgr.statistics().session_timeouts - timeouts_before;
    let survived = alive.iter().any(|id| id == "active-a")
        && alive.iter().any(|id| id == "active-b")
        && call.sa.is_running()
        && rx_now.0 > rx_then.0
        && rx_now.1 > rx_then.1;
    talking.store(false, Ordering::SeqCst);
    for t in talkers {
        t.join().map_err(|_| "a talker thread panicked")??;
    }
    println!(
        "   idle-offer closed by the cleanup {:.2} s after it was created (timeout {:.1} s); \
         builders alive {:.2} s after it was created, a cleanup pass later: [{}]; the call's \
         audio packets received (active-a/active-b) kept growing, {}/{} when idle-offer closed \
         -> {}/{} then",
        closed_after.as_secs_f64(),
        plan.timeout.as_secs_f64(),
        alive_at.as_secs_f64(),
        alive.join(", "),
        rx_then.0,
        rx_then.1,
        rx_now.0,
        rx_now.1
    );
    call.release(&mgr);
    stop.store(true, Ordering::SeqCst);
    let (samples, peak) = monitor.join().map_err(|_| "the monitor thread panicked")?;
    let end = mgr.statistics();
    println!("   end: {}", counts(&end));
    figure("monitor_samples", samples);
    figure("monitor_peak_active", peak);
    figure("wave_created", waves.total_builders_created);
    figure("wave_active", waves.active_builders);
    figure("wave_timeouts", waves.session_timeouts);
    figure("idle_closed", idle_closed);
    figure("idle_closed_after_ms", closed_after.as_millis());
    figure("active_survived", survived);
    check(
        failures,
        waves.session_timeouts == 0,
        "a wave builder timed out",
    );
    check(failures, waves.active_builders == 10, "wave count");
    check(
        failures,
        idle_closed >= 1,
        "the idle builder was not closed",
    );
    check(failures, survived, "the call with media did not survive");
    // `started` is a little after the offer, the idle builder's last
    // activity.
    check(
        failures,
        closed_after + Duration::from_millis(10) >= plan.timeout,
        "idle builder closed before its timeout",
    );
    mgr.shutdown();
    Ok(())
}

/// Audio packets received by each side of `call`.
fn received(call: &Call) -> (u64, u64) {
    let (a, b) = (call.sa.statistics(), call.sb.statistics());
    (
        a.packets_received - a.dtmf_packets_received,
        b.packets_received - b.dtmf_packets_received,
    )
}

/// Pairs, ports and headroom for `builders` concurrent builders of
/// `streams` audio streams each.
struct Sizing {
    pairs: u32,
    pairs_needed: u32,
    headroom_pct: f64,
    loopback_calls: u32,
}

fn size(config: &ManagerConfig, streams: u32) -> Result<Sizing, ConfigError> {
    config.validate()?;
    let pairs = config.port_range()?.pairs();
    let builders = u32::try_from(config.max_concurrent_builders).unwrap_or(u32::MAX);
    let pairs_needed = builders * streams;
    Ok(Sizing {
        pairs,
        pairs_needed,
        headroom_pct: (f64::from(pairs) - f64::from(pairs_needed)) * 100.0
            / f64::from(pairs_needed),
        // Both parties of a loopback call are builders of this manager.
        loopback_calls: pairs / (streams * 2),
    })
}

fn config_variant(e: &ConfigError) -> String {
    let d = format!("{e:?}");
    d.split([' ', '(', '{']).next().unwrap_or("").to_owned()
}

/// Demonstration 5: sizing a range from the builders it must serve.
fn sizing(_quick: bool, failures: &mut Vec<String>) -> Result<(), BoxError> {
    let small = base(40000, 40010, 20, PortStrategy::Random);
    let invalid = match small.validate() {
        Ok(()) => return Err("40000-40010 for 20 builders passed validation".into()),
        Err(e) => {
            println!("   40000-40010 for 20 builders: ConfigError::{e:?} ({e})");
            config_variant(&e)
        }
    };
    let refused = BuilderManager::new(small).err();
    println!(
        "   BuilderManager::new with it: {}",
        refused
            .as_ref()
            .map_or("accepted".to_owned(), |e| format!("ManagerError::{e:?}"))
    );
    figure("sizing_invalid_error", &invalid);

    let config = base(30000, 30400, 100, PortStrategy::Random);
    let streams = 1;
    let s = size(&config, streams)?;
    let mgr = BuilderManager::new(config.clone())?;
    let allocator_total = mgr.statistics().ports_total;
    mgr.shutdown();
    println!(
        "   100 builders of {streams} audio stream: {} pairs ({} ports) needed; 30000-30400 \
         holds {} pairs (the allocator agrees: {allocator_total}), headroom {:.0}%",
        s.pairs_needed,
        s.pairs_needed * 2,
        s.pairs,
        s.headroom_pct
    );
    println!(
        "   a call between two builders of this manager (as in these examples) takes \
         {streams} pair(s) x 2 builders: the range holds {} such calls, the builder limit \
         allows {}",
        s.loopback_calls,
        config.max_concurrent_builders / 2
    );
    // Released pairs sit out the release delay; under steady churn that
    // many more pairs are needed for new builders never to cut one short.
    let delay = config.port_release_delay.as_secs_f64();
    let churn = 10.0;
    let quarantined = (churn * delay * f64::from(streams)).ceil() as u32;
    println!(
        "   at {churn} builders released per second, {quarantined} pairs are in their \
         {delay} s release delay at any time: {} pairs keep every quarantine whole ({})",
        s.pairs_needed + quarantined,
        if s.pairs >= s.pairs_needed + quarantined {
            "this range does"
        } else {
            "this range does not: allocations would cut quarantines short"
        }
    );
    println!(
        "   recommendations: even bounds (RTP even, RTCP odd), above 1024, open in the \
         firewall for UDP; random allocation where off-path packet injection matters"
    );
    figure("sizing_pairs", s.pairs);
    figure("sizing_pairs_needed", s.pairs_needed);
    figure("sizing_headroom_pct", format!("{:.0}", s.headroom_pct));
    figure("sizing_loopback_calls", s.loopback_calls);
    figure("sizing_quarantine_pairs", quarantined);
    check(
        failures,
        invalid == "RangeTooSmall",
        format!("invalid config gave {invalid}"),
    );
    check(failures, refused.is_some(), "invalid config was accepted");
    check(
        failures,
        allocator_total == s.pairs,
        "allocator and sizing disagree",
    );
    Ok(())
}

/// Whether the manager still lists builder `id` (without touching it: a
/// lookup through `BuilderManager::builder` counts as activity).
fn listed(mgr: &BuilderManager, id: &str) -> bool {
    mgr.active_builders().iter().any(|b| b == id)
}

//! [`BuilderManager`]: the registry of [`Builder`]s, the media engine they
//! run on, port allocation, and idle cleanup.
//!
//! Locking: the builder registry is one `Mutex<HashMap>` held only to look
//! up, insert or remove an entry; closing a builder (which waits for its
//! RTCP BYE and unbinds its sockets) always happens after the entry was
//! taken out, never under the lock. Media never touches the manager: it
//! runs on the engine's shard threads, and ports come from the lock-free
//! [`PortAllocator`](crate::ports::PortAllocator).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::config::ManagerConfig;
use super::error::ManagerError;
use super::negotiate::Builder;
use super::session::{MediaSession, STOP_WAIT};
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::ports::{PortPair, ShardId};
use crate::relay::RelayConfig;

/// Counters of a manager ([`BuilderManager::statistics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerStatistics {
    /// Builders alive.
    pub active_builders: usize,
    /// Builders created since the start.
    pub total_builders_created: u64,
    /// RTP/RTCP port pairs allocated (every stream of every builder, bound
    /// or only advertised), from the allocator.
    pub ports_in_use: u32,
    /// Pairs that can be handed out now (`total - in_use`).
    pub ports_available: u32,
    /// Of those, pairs released less than `port_release_delay` ago (or not
    /// yet reclaimed): passed over while others are free.
    pub ports_quarantined: u32,
    /// Pairs in the range.
    pub ports_total: u32,
    /// Allocations that had to cut a quarantine short (nothing else left).
    pub quarantine_cut_short: u64,
    /// Builders closed by the idle cleanup.
    pub session_timeouts: u64,
    /// When the cleanup last ran (`None`: never).
    pub last_cleanup: Option<SystemTime>,
}

/// Creates, finds and releases [`Builder`]s; owns the media engine (its
/// shard threads) and the cleanup thread. `Send + Sync`: share it by
/// reference or in an `Arc`. Dropping it shuts it down.
pub struct BuilderManager {
    inner: Arc<Inner>,
    cleanup: Mutex<Option<JoinHandle<()>>>,
}

/// What builders and sessions share with their manager.
pub(crate) struct Inner {
    pub(crate) config: ManagerConfig,
    engine: RwLock<Option<Engine>>,
    builders: Mutex<HashMap<String, Arc<Builder>>>,
    closed: AtomicBool,
    created: AtomicU64,
    timeouts: AtomicU64,
    last_cleanup: Mutex<Option<SystemTime>>,
    stop: (Mutex<bool>, Condvar),
    next_session: AtomicU64,
    pub(crate) epoch: Instant,
}

impl BuilderManager {
    /// Validates `config`, starts the media engine (shard threads bound to
    /// nothing yet) and, when a session timeout is set, the cleanup thread.
    pub fn new(config: ManagerConfig) -> Result<BuilderManager, ManagerError> {
        config.validate()?;
        crate::engine::check_bind_ip(config.local_ip).map_err(ManagerError::Engine)?;
        let engine = Engine::start(EngineConfig {
            shards: config.shards,
            io_backend: config.io_backend,
            bind_ip: config.local_ip,
            port_min: config.min_port,
            port_max: config.max_port,
            port_strategy: config.port_strategy,
            release_delay: config.port_release_delay,
            relay: RelayConfig {
                // Idle calls are the manager's to end (media counts as
                // activity, see `cleanup`); the engine's own media timeout
                // would end a call on hold behind the application's back.
                timeout: Duration::from_secs(86_400),
                silent_timeout: Duration::from_secs(86_400),
                offer_timeout: Duration::from_secs(86_400),
                ..RelayConfig::default()
            },
            pin_cores: false,
            ..EngineConfig::default()
        })
        .map_err(ManagerError::Engine)?;
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs());
        let inner = Arc::new(Inner {
            config,
            engine: RwLock::new(Some(engine)),
            builders: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            created: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            last_cleanup: Mutex::new(None),
            stop: (Mutex::new(false), Condvar::new()),
            next_session: AtomicU64::new(seed),
            epoch: Instant::now(),
        });
        let cleanup = match inner.config.session_timeout {
            Some(timeout) => {
                let i = inner.clone();
                let t = std::thread::Builder::new()
                    .name("mr-builder-cleanup".into())
                    .spawn(move || i.cleanup_loop(timeout))
                    .map_err(|e| ManagerError::Engine(EngineError::Io(e.to_string())))?;
                Some(t)
            }
            None => None,
        };
        Ok(BuilderManager {
            inner,
            cleanup: Mutex::new(cleanup),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// Creates builder `id` and allocates its first port pair (checked
    /// free on this host, not yet bound: sockets are bound once the far
    /// end's address is known).
    pub fn create_builder(&self, id: &str) -> Result<Arc<Builder>, ManagerError> {
        if id.is_empty() {
            return Err(ManagerError::EmptyId);
        }
        let inner = &self.inner;
        let mut map = inner.lock_builders();
        if inner.closed.load(Ordering::SeqCst) {
            return Err(ManagerError::Closed);
        }
        if map.contains_key(id) {
            return Err(ManagerError::Duplicate(id.to_owned()));
        }
        if map.len() >= inner.config.max_concurrent_builders {
            return Err(ManagerError::Limit(map.len()));
        }
        let pair = inner.allocate_pair().map_err(ManagerError::NoPorts)?;
        let session_id = inner.next_session.fetch_add(1, Ordering::Relaxed);
        let builder = Arc::new(Builder::new(id, pair, session_id, inner.clone()));
        map.insert(id.to_owned(), builder.clone());
        inner.created.fetch_add(1, Ordering::Relaxed);
        Ok(builder)
    }

    /// Closes builder `id` (its session stops, its sockets and ports are
    /// released) and forgets it. Idempotent: `false` when there was none.
    pub fn release_builder(&self, id: &str) -> bool {
        let taken = self.inner.lock_builders().remove(id);
        match taken {
            Some(b) => {
                b.close_quietly();
                true
            }
            None => false,
        }
    }

    /// Builder `id`, if alive. Counts as activity for the idle cleanup.
    pub fn builder(&self, id: &str) -> Option<Arc<Builder>> {
        let b = self.inner.lock_builders().get(id).cloned();
        if let Some(b) = &b {
            b.touch();
        }
        b
    }

    /// Ids of the builders alive.
    pub fn active_builders(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.inner.lock_builders().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Port pairs that can be allocated now (from the allocator).
    pub fn available_ports(&self) -> u32 {
        self.statistics().ports_available
    }

    /// Counters; port figures come from the allocator itself.
    pub fn statistics(&self) -> ManagerStatistics {
        let inner = &self.inner;
        let active = inner.lock_builders().len();
        let c = inner.port_counts();
        ManagerStatistics {
            active_builders: active,
            total_builders_created: inner.created.load(Ordering::Relaxed),
            ports_in_use: c.in_use,
            ports_available: c.total.saturating_sub(c.in_use),
            ports_quarantined: c.quarantined,
            ports_total: c.total,
            quarantine_cut_short: c.cut_short,
            session_timeouts: inner.timeouts.load(Ordering::Relaxed),
            last_cleanup: inner.last_cleanup.lock().ok().and_then(|g| *g),
        }
    }

    /// A Prometheus text-format snapshot of the manager and every live
    /// session (see [`super::metrics`]).
    pub fn prometheus(&self) -> String {
        let builders: Vec<Arc<Builder>> = self.inner.lock_builders().values().cloned().collect();
        super::metrics::render(&self.statistics(), &builders)
    }

    /// Closes every builder, stops the cleanup thread and the engine's
    /// shard threads, and joins them. Idempotent; afterwards
    /// [`create_builder`](Self::create_builder) fails with `Closed`.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let (lock, cv) = &inner.stop;
            if let Ok(mut s) = lock.lock() {
                *s = true;
            }
            cv.notify_all();
        }
        if let Some(t) = self.cleanup.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
        let all: Vec<Arc<Builder>> = inner.lock_builders().drain().map(|(_, b)| b).collect();
        // Stop every session at once and wait for the BYEs together, then
        // close (each close finds its session stopped): one wait of up to a
        // ptime in all rather than one per builder.
        let stopping: Vec<MediaSession> = all
            .iter()
            .filter_map(|b| b.media_session())
            .filter(MediaSession::request_stop)
            .collect();
        let deadline = Instant::now() + STOP_WAIT;
        for s in &stopping {
            s.wait_stopped(deadline);
        }
        for b in all {
            b.close_quietly();
        }
        let engine = inner.engine.write().ok().and_then(|mut g| g.take());
        if let Some(e) = engine {
            e.shutdown();
        }
    }
}

impl Drop for BuilderManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for BuilderManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuilderManager")
            .field("statistics", &self.statistics())
            .finish_non_exhaustive()
    }
}

/// Pair counts as the statistics need them.
struct PairCounts {
    in_use: u32,
    quarantined: u32,
    total: u32,
    cut_short: u64,
}

impl Inner {
    fn lock_builders(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Builder>>> {
        // A panic while holding the registry lock leaves a consistent map
        // (every operation on it is a single insert/remove/read).
        self.builders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the engine; `None` once shut down.
    pub(crate) fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> Option<T> {
        let g = self.engine.read().ok()?;
        g.as_ref().map(f)
    }

    fn port_counts(&self) -> PairCounts {
        self.with_engine(|e| {
            let c = e.ports().totals();
            PairCounts {
                in_use: c.in_use,
                quarantined: c.quarantined,
                total: c.total,
                cut_short: c.quarantine_cut_short,
            }
        })
        .unwrap_or(PairCounts {
            in_use: 0,
            quarantined: 0,
            total: 0,
            cut_short: 0,
        })
    }

    /// Allocates a pair whose ports this host can bind now (each is bound
    /// and closed again at once: a port another process holds is skipped,
    /// left quarantined, rather than advertised in SDP and failing later).
    pub(crate) fn allocate_pair(&self) -> Result<PortPair, String> {
        const ATTEMPTS: usize = 16;
        let ip = self.config.local_ip;
        self.with_engine(|e| {
            let mut last = String::new();
            for _ in 0..ATTEMPTS {
                let now = Instant::now();
                let (_, pair) = e
                    .ports()
                    .allocate_any(ShardId(0), now)
                    .map_err(|err| err.to_string())?;
                let free = UdpSocket::bind(SocketAddr::new(ip, pair.rtp())).and_then(|a| {
                    UdpSocket::bind(SocketAddr::new(ip, pair.rtcp())).map(|b| (a, b))
                });
                match free {
                    Ok(_) => return Ok(pair),
                    Err(err) => {
                        last = format!("port {} in use on this host: {err}", pair.rtp());
                        let _ = e.ports().release(pair, now);
                    }
                }
            }
            Err(last)
        })
        .unwrap_or_else(|| Err("manager is shut down".to_owned()))
    }

    /// Returns an unbound pair to the allocator (quarantined).
    pub(crate) fn release_pair(&self, pair: PortPair) {
        self.with_engine(|e| e.ports().release(pair, Instant::now()));
    }

    /// Milliseconds since the manager started (activity clock).
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn cleanup_loop(self: Arc<Self>, timeout: Duration) {
        let interval = self.config.cleanup_interval;
        loop {
            {
                let (lock, cv) = &self.stop;
                let Ok(guard) = lock.lock() else {
                    return;
                };
                let Ok((guard, _)) = cv.wait_timeout_while(guard, interval, |stop| !*stop) else {
                    return;
                };
                if *guard {
                    return;
                }
            }
            self.cleanup(timeout);
        }
    }

    /// One cleanup pass: a builder whose media counters moved since the
    /// last pass is active; one idle (no signalling, no media received)
    /// for `timeout` is closed and released.
    pub(crate) fn cleanup(&self, timeout: Duration) {
        // Drain engine events (timed-out calls are the manager's business
        // only through the builders' own activity).
        while self.with_engine(|e| e.try_event()).flatten().is_some() {}
        let now_ms = self.now_ms();
        let snapshot: Vec<Arc<Builder>> = self.lock_builders().values().cloned().collect();
        let limit = timeout.as_millis() as u64;
        for b in snapshot {
            b.observe_media();
            if now_ms.saturating_sub(b.last_activity_ms()) <= limit {
                continue;
            }
            let taken = {
                let mut map = self.lock_builders();
                match map.get(b.id()) {
                    Some(cur) if Arc::ptr_eq(cur, &b) => map.remove(b.id()),
                    _ => None,
                }
            };
            if let Some(b) = taken {
                b.close_quietly();
                self.timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut g) = self.last_cleanup.lock() {
            *g = Some(SystemTime::now());
        }
    }
}

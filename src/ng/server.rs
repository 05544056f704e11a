//! The NG UDP server: one thread that receives datagrams on `listen-ng`,
//! runs them through a [`Handler`] (framing, reply cache, command) and
//! sends the replies; between datagrams it drains media-timeout events.
//!
//! Bounded: one datagram buffer of 64 KiB, the handler's reply cache is
//! capped. Malformed input is counted ([`NgCounters::malformed`]) and
//! answered with an error when it carries a cookie.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::counters::NgCounters;
use super::handler::Handler;
use super::media::MediaPlane;
use super::{OwnedValue, Value, message};

/// Largest NG datagram read (UDP's maximum).
const MAX_DATAGRAM: usize = 65_536;
/// How often the thread wakes without traffic (stop flag, events).
const TICK: Duration = Duration::from_millis(50);

/// Why the NG server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The socket did not bind.
    #[error("cannot bind the NG socket {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The socket could not be configured or the thread not spawned.
    #[error("NG server: {0}")]
    Io(std::io::Error),
}

/// A running NG server thread.
#[derive(Debug)]
pub struct NgServer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<NgCounters>,
    thread: Option<JoinHandle<()>>,
}

impl NgServer {
    /// Binds `addr` and starts the server thread. `timeouts` is polled
    /// between datagrams for the tags of engine calls removed by media
    /// timeout (e.g. from [`Engine::try_event`](crate::engine::Engine::try_event)).
    pub fn start<M, F>(
        addr: SocketAddr,
        handler: Handler<M>,
        timeouts: F,
    ) -> Result<NgServer, ServerError>
    where
        M: MediaPlane + Send + 'static,
        F: FnMut() -> Option<u64> + Send + 'static,
    {
        let none = |_: SocketAddr, _: &Value<'_>| None;
        NgServer::start_with_command(addr, handler, timeouts, "", none)
    }

    /// [`NgServer::start`], plus one command the server answers itself,
    /// before the [`Handler`]: a request whose `command` is `name` goes to
    /// `own(source, request)`, and its reply dictionary, when `Some`, is
    /// sent back under the request's cookie; `None` hands the request to
    /// the handler. Such a command is not counted per command in
    /// [`NgCounters`] nor kept in the reply cache, so it should be
    /// idempotent. An empty `name` answers nothing itself.
    pub fn start_with_command<M, F, C>(
        addr: SocketAddr,
        mut handler: Handler<M>,
        mut timeouts: F,
        name: &str,
        mut own: C,
    ) -> Result<NgServer, ServerError>
    where
        M: MediaPlane + Send + 'static,
        F: FnMut() -> Option<u64> + Send + 'static,
        C: FnMut(SocketAddr, &Value<'_>) -> Option<OwnedValue> + Send + 'static,
    {
        // The name as a bencode string: a cheap filter before a second parse.
        let needle = format!("{}:{name}", name.len()).into_bytes();
        let name = name.to_string();
        let mut own = move |from: SocketAddr, datagram: &[u8]| {
            let first = needle.first().copied();
            let found = datagram
                .windows(needle.len())
                .any(|w| w.first().copied() == first && w == needle);
            if name.is_empty() || !found {
                return None;
            }
            let req = message::parse(datagram).ok()?;
            if req.body.get("command").and_then(Value::as_str) != Some(name.as_str()) {
                return None;
            }
            let body = own(from, &req.body)?;
            let mut out = req.cookie.to_vec();
            out.push(b' ');
            body.encode(&mut out);
            Some(out)
        };
        let socket = UdpSocket::bind(addr).map_err(|e| ServerError::Bind(addr, e))?;
        socket
            .set_read_timeout(Some(TICK))
            .map_err(ServerError::Io)?;
        let local = socket.local_addr().map_err(ServerError::Io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::clone(handler.counters());
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ng".into())
            .spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                while !flag.load(Ordering::Relaxed) {
                    serve_one(&socket, &mut handler, &mut own, &mut buf);
                    while let Some(tag) = timeouts() {
                        handler.media_timeout(tag);
                    }
                    handler.expire(Instant::now());
                }
                // Answer what is already queued, then stop.
                if socket.set_nonblocking(true).is_ok() {
                    while serve_one(&socket, &mut handler, &mut own, &mut buf) {}
                }
            })
            .map_err(ServerError::Io)?;
        Ok(NgServer {
            local,
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The command counters.
    pub fn counters(&self) -> &Arc<NgCounters> {
        &self.counters
    }

    /// Stops the thread after it has answered the datagrams already
    /// received, and joins it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NgServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Receives and answers one datagram; false when none was waiting.
fn serve_one<M: MediaPlane>(
    socket: &UdpSocket,
    handler: &mut Handler<M>,
    own: &mut impl FnMut(SocketAddr, &[u8]) -> Option<Vec<u8>>,
    buf: &mut [u8],
) -> bool {
    let (n, from) = match socket.recv_from(buf) {
        Ok(r) => r,
        Err(_) => return false,
    };
    let Some(datagram) = buf.get(..n) else {
        return true;
    };
    let started = Instant::now();
    let reply =
        own(from, datagram).or_else(|| handler.handle_datagram_from(started, from.ip(), datagram));
    handler.observe_datagram(Some(from.ip()), started.elapsed());
    if let Some(reply) = reply {
        if let Err(e) = socket.send_to(&reply, from) {
            tracing::debug!(%from, "NG reply not sent: {e}");
        }
    }
    true
}

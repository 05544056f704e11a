//! [`ManagerConfig`]: the settings of a [`BuilderManager`](super::BuilderManager),
//! validated as a whole before anything is bound or spawned.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::engine::IoBackend;
use crate::ports::{PortRange, Strategy};
use crate::rtp::PayloadType;
use crate::sdp::Direction;

/// How ports are handed out (see [`Strategy`]): `Sequential` walks the
/// range round-robin (a released pair comes back only after the walk has
/// gone once around), `Random` starts each search at a random pair.
pub type PortStrategy = Strategy;

/// Settings of a [`BuilderManager`](super::BuilderManager). Every field is
/// checked by [`validate`](Self::validate) (called by
/// [`BuilderManager::new`](super::BuilderManager::new)).
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// Address media sockets bind to. Also the address written in SDP
    /// unless [`advertise_ip`](Self::advertise_ip) is set; the wildcard
    /// (`0.0.0.0`, `::`) is only accepted with an `advertise_ip`.
    pub local_ip: IpAddr,
    /// Address written in SDP `o=`/`c=` when it differs from `local_ip`
    /// (a host behind 1:1 NAT, or `local_ip` the wildcard).
    pub advertise_ip: Option<IpAddr>,
    /// Lowest media port (even: an RTP port, its RTCP port is the next).
    pub min_port: u16,
    /// Highest media port; the last whole RTP/RTCP pair ends at or below it.
    pub max_port: u16,
    /// Builders alive at once.
    pub max_concurrent_builders: usize,
    /// Port allocation strategy.
    pub port_strategy: PortStrategy,
    /// A builder with neither signalling nor received media for this long
    /// is closed and released by the cleanup thread (`None`: never).
    pub session_timeout: Option<Duration>,
    /// How often the cleanup thread looks.
    pub cleanup_interval: Duration,
    /// A released port pair is not handed out again for this long while
    /// other pairs are free, so late packets of an ended call never reach
    /// the next one.
    pub port_release_delay: Duration,
    /// Audio payload types offered, in order of preference (PCMU 0, PCMA
    /// 8: the codecs this crate implements).
    pub payload_types: Vec<u8>,
    /// Packetisation time (`a=ptime`): 10 to 60 ms in steps of 10 ms.
    pub ptime: Duration,
    /// Play received audio through the adaptive jitter buffer (otherwise on
    /// arrival).
    pub jitter_buffer: bool,
    /// Send and receive RTCP (SR/RR, SDES, BYE, XR VoIP metrics).
    pub rtcp: bool,
    /// Minimum RTCP interval (RFC 3550 §6.2; at least 100 ms).
    pub rtcp_interval: Duration,
    /// Offer (and accept) RTP/RTCP multiplexing on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Direction offered, and the most an answer agrees to.
    pub direction: Direction,
    /// RFC 4733 telephone-event payload type (dynamic, 96-127); `None`
    /// disables DTMF.
    pub dtmf_payload_type: Option<u8>,
    /// SDP `s=` line.
    pub session_name: String,
    /// SDP `a=tool:` (RFC 8866 §6.3); empty: none.
    pub user_agent: String,
    /// Engine shard threads that run the media (0: one per CPU).
    pub shards: usize,
    /// I/O backend of the engine.
    pub io_backend: IoBackend,
    /// Events buffered per stream for the application (beyond it they are
    /// counted and dropped, never queued without bound).
    pub event_capacity: usize,
}

impl Default for ManagerConfig {
    /// The seed library's defaults (ports 10000-20000, 100 builders,
    /// sequential, 5 min idle timeout checked every minute, 5 s release
    /// delay, 20 ms, jitter buffer, RTCP, sendrecv, DTMF 101), except:
    /// - the address is this host's outbound IPv4 address (127.0.0.1 when
    ///   it has none), never `0.0.0.0`, which peers read as hold;
    /// - payload types are PCMU and PCMA only: G.722 and G.729 are not
    ///   implemented, and offering a codec one cannot decode is a lie.
    fn default() -> Self {
        let ip = outbound_ipv4();
        ManagerConfig {
            local_ip: ip,
            advertise_ip: None,
            min_port: 10000,
            max_port: 20000,
            max_concurrent_builders: 100,
            port_strategy: Strategy::Sequential,
            session_timeout: Some(Duration::from_secs(300)),
            cleanup_interval: Duration::from_secs(60),
            port_release_delay: Duration::from_secs(5),
            payload_types: vec![0, 8],
            ptime: Duration::from_millis(20),
            jitter_buffer: true,
            rtcp: true,
            rtcp_interval: Duration::from_secs(5),
            rtcp_mux: false,
            direction: Direction::SendRecv,
            dtmf_payload_type: Some(101),
            session_name: "SoftPhone Media Session".to_owned(),
            user_agent: "SoftPhone/1.0".to_owned(),
            shards: 1,
            io_backend: IoBackend::Auto,
            event_capacity: 64,
        }
    }
}

/// A [`ManagerConfig`] field that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The SDP address is the wildcard, multicast or broadcast: peers
    /// could not send to it (`0.0.0.0` reads as hold, RFC 3264 §8.4).
    #[error("{0} cannot be advertised in SDP (set advertise_ip to a unicast address)")]
    Unadvertisable(IpAddr),
    /// The port range holds no RTP/RTCP pair.
    #[error("port range {min}-{max} holds no RTP/RTCP pair")]
    PortRange {
        /// `min_port`.
        min: u16,
        /// `max_port`.
        max: u16,
    },
    /// `min_port` is odd: RTP ports are even (RFC 3550 §11).
    #[error("min_port {0} is odd; RTP ports are even")]
    OddMinPort(u16),
    /// Ports below 1024 need privileges and collide with system services.
    #[error("min_port {0} is below 1024")]
    PrivilegedPort(u16),
    /// `max_concurrent_builders` is 0.
    #[error("max_concurrent_builders must be at least 1")]
    NoBuilders,
    /// The range has fewer pairs than builders may be alive at once.
    #[error("port range has {pairs} RTP/RTCP pairs, fewer than max_concurrent_builders {builders}")]
    RangeTooSmall {
        /// Whole pairs in the range.
        pairs: u32,
        /// `max_concurrent_builders`.
        builders: usize,
    },
    /// `session_timeout` is `Some(0)` (use `None` to disable it).
    #[error("session_timeout is zero (use None to disable)")]
    ZeroSessionTimeout,
    /// `cleanup_interval` is zero while a session timeout is set.
    #[error("cleanup_interval must be positive")]
    ZeroCleanupInterval,
    /// No audio payload type.
    #[error("payload_types is empty")]
    NoPayloadTypes,
    /// A payload type this library cannot encode or decode.
    #[error("payload type {0} is not supported (PCMU 0 and PCMA 8 are)")]
    UnsupportedPayloadType(u8),
    /// A payload type listed twice.
    #[error("payload type {0} is listed twice")]
    DuplicatePayloadType(u8),
    /// The telephone-event payload type is not dynamic (96-127, RFC 3551 §3).
    #[error("telephone-event payload type {0} is not dynamic (96-127)")]
    DtmfPayloadType(u8),
    /// The telephone-event payload type is also an audio one.
    #[error("telephone-event payload type {0} collides with an audio payload type")]
    DtmfCollides(u8),
    /// `ptime` outside 10-60 ms or not a multiple of 10 ms.
    #[error("ptime {0:?} must be 10 to 60 ms in steps of 10 ms")]
    Ptime(Duration),
    /// `rtcp_interval` below 100 ms.
    #[error("rtcp_interval {0:?} is below 100 ms")]
    RtcpInterval(Duration),
    /// A text field cannot be written in SDP (empty, or a line break).
    #[error("{0} is empty or holds a line break")]
    Text(&'static str),
    /// `event_capacity` is 0.
    #[error("event_capacity must be at least 1")]
    EventCapacity,
}

impl ManagerConfig {
    /// The address written in SDP.
    pub fn advertised_ip(&self) -> IpAddr {
        self.advertise_ip.unwrap_or(self.local_ip)
    }

    /// The port range as whole RTP/RTCP pairs.
    pub fn port_range(&self) -> Result<PortRange, ConfigError> {
        PortRange::new(self.min_port, self.max_port).map_err(|_| ConfigError::PortRange {
            min: self.min_port,
            max: self.max_port,
        })
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let adv = self.advertised_ip();
        let bad = match adv {
            IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
        };
        if bad {
            return Err(ConfigError::Unadvertisable(adv));
        }
        if self.min_port < 1024 {
            return Err(ConfigError::PrivilegedPort(self.min_port));
        }
        if self.min_port % 2 == 1 {
            return Err(ConfigError::OddMinPort(self.min_port));
        }
        let range = self.port_range()?;
        if self.max_concurrent_builders == 0 {
            return Err(ConfigError::NoBuilders);
        }
        if (range.pairs() as usize) < self.max_concurrent_builders {
            return Err(ConfigError::RangeTooSmall {
                pairs: range.pairs(),
                builders: self.max_concurrent_builders,
            });
        }
        if self.session_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroSessionTimeout);
        }
        if self.cleanup_interval.is_zero() {
            return Err(ConfigError::ZeroCleanupInterval);
        }
        if self.payload_types.is_empty() {
            return Err(ConfigError::NoPayloadTypes);
        }
        for (i, &pt) in self.payload_types.iter().enumerate() {
            if pt != 0 && pt != 8 {
                return Err(ConfigError::UnsupportedPayloadType(pt));
            }
            if self.payload_types[..i].contains(&pt) {
                return Err(ConfigError::DuplicatePayloadType(pt));
            }
        }
        if let Some(te) = self.dtmf_payload_type {
            if self.payload_types.contains(&te) {
                return Err(ConfigError::DtmfCollides(te));
            }
            if !(96..=127).contains(&te) {
                return Err(ConfigError::DtmfPayloadType(te));
            }
        }
        let ms = self.ptime.as_millis();
        if !(10..=60).contains(&ms)
            || !ms.is_multiple_of(10)
            || !self.ptime.subsec_nanos().is_multiple_of(1_000_000)
        {
            return Err(ConfigError::Ptime(self.ptime));
        }
        if self.rtcp_interval < Duration::from_millis(100) {
            return Err(ConfigError::RtcpInterval(self.rtcp_interval));
        }
        let text_ok = |s: &str| !s.is_empty() && !s.contains(['\r', '\n']);
        if !text_ok(&self.session_name) {
            return Err(ConfigError::Text("session_name"));
        }
        if self.user_agent.contains(['\r', '\n']) {
            return Err(ConfigError::Text("user_agent"));
        }
        if self.event_capacity == 0 {
            return Err(ConfigError::EventCapacity);
        }
        Ok(())
    }

    /// The payload types, typed (valid after [`validate`](Self::validate)).
    pub(crate) fn audio_payload_types(&self) -> Vec<PayloadType> {
        self.payload_types
            .iter()
            .filter_map(|&p| PayloadType::new(p))
            .collect()
    }
}

/// This host's outbound IPv4 address: the source address the kernel picks
/// for a route to a documentation address (RFC 5737). Connecting a UDP
/// socket only looks the route up; nothing is sent. 127.0.0.1 when there
/// is no route.
pub fn outbound_ipv4() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let s = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))?;
        s.connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9))?;
        Ok(s.local_addr()?.ip())
    };
    match probe() {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> ManagerConfig {
        ManagerConfig {
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ..ManagerConfig::default()
        }
    }

    #[test]
    fn default_is_valid_and_advertisable() {
        let c = ManagerConfig::default();
        assert!(!c.advertised_ip().is_unspecified());
        c.validate().unwrap();
    }

    #[test]
    fn every_field_is_checked() {
        let cases: Vec<(ManagerConfig, ConfigError)> = vec![
            (
                ManagerConfig {
                    local_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    ..ok()
                },
                ConfigError::Unadvertisable(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            ),
            (
                ManagerConfig {
                    min_port: 10001,
                    ..ok()
                },
                ConfigError::OddMinPort(10001),
            ),
            (
                ManagerConfig {
                    min_port: 0,
                    ..ok()
                },
                ConfigError::PrivilegedPort(0),
            ),
            (
                ManagerConfig {
                    min_port: 20000,
                    max_port: 10000,
                    ..ok()
                },
                ConfigError::PortRange {
                    min: 20000,
                    max: 10000,
                },
            ),
            (
                ManagerConfig {
                    min_port: 40000,
                    max_port: 40010,
                    max_concurrent_builders: 20,
                    ..ok()
                },
                ConfigError::RangeTooSmall {
                    pairs: 5,
                    builders: 20,
                },
            ),
            (
                ManagerConfig {
                    max_concurrent_builders: 0,
                    ..ok()
                },
                ConfigError::NoBuilders,
            ),
            (
                ManagerConfig {
                    cleanup_interval: Duration::ZERO,
                    ..ok()
                },
                ConfigError::ZeroCleanupInterval,
            ),
            (
                ManagerConfig {
                    session_timeout: Some(Duration::ZERO),
                    ..ok()
                },
                ConfigError::ZeroSessionTimeout,
            ),
            (
                ManagerConfig {
                    payload_types: vec![],
                    ..ok()
                },
                ConfigError::NoPayloadTypes,
            ),
            (
                ManagerConfig {
                    payload_types: vec![0, 18],
                    ..ok()
                },
                ConfigError::UnsupportedPayloadType(18),
            ),
            (
                ManagerConfig {
                    payload_types: vec![0, 0],
                    ..ok()
                },
                ConfigError::DuplicatePayloadType(0),
            ),
            (
                ManagerConfig {
                    dtmf_payload_type: Some(8),
                    ..ok()
                },
                ConfigError::DtmfCollides(8),
            ),
            (
                ManagerConfig {
                    dtmf_payload_type: Some(13),
                    ..ok()
                },
                ConfigError::DtmfPayloadType(13),
            ),
            (
                ManagerConfig {
                    ptime: Duration::from_millis(25),
                    ..ok()
                },
                ConfigError::Ptime(Duration::from_millis(25)),
            ),
            (
                ManagerConfig {
                    rtcp_interval: Duration::from_millis(10),
                    ..ok()
                },
                ConfigError::RtcpInterval(Duration::from_millis(10)),
            ),
            (
                ManagerConfig {
                    session_name: String::new(),
                    ..ok()
                },
                ConfigError::Text("session_name"),
            ),
            (
                ManagerConfig {
                    event_capacity: 0,
                    ..ok()
                },
                ConfigError::EventCapacity,
            ),
        ];
        for (cfg, want) in cases {
            assert_eq!(cfg.validate(), Err(want));
        }
        // A wildcard bind is fine with a unicast address to advertise.
        ManagerConfig {
            local_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            advertise_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
            ..ok()
        }
        .validate()
        .unwrap();
    }
}

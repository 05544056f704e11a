//! A Prometheus text-format snapshot (exposition format 0.0.4) of a
//! manager and its sessions: for an application's own `/metrics`, or a
//! test tool's report. Each family has one `# HELP`/`# TYPE` pair; label
//! values are escaped.

use std::fmt::Write;
use std::sync::Arc;

use super::manager::ManagerStatistics;
use super::negotiate::Builder;
use super::session::MediaStatistics;

/// Escapes a label value (backslash, double quote, line feed).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The manager's figures and every session's, one series per stream.
pub(crate) fn render(m: &ManagerStatistics, builders: &[Arc<Builder>]) -> String {
    let mut out = String::new();
    let gauges: [(&str, &str, u64); 5] = [
        (
            "mediarelay_builders_active",
            "Builders alive.",
            m.active_builders as u64,
        ),
        (
            "mediarelay_port_pairs_in_use",
            "RTP/RTCP port pairs allocated.",
            u64::from(m.ports_in_use),
        ),
        (
            "mediarelay_port_pairs_available",
            "Port pairs that can be allocated now.",
            u64::from(m.ports_available),
        ),
        (
            "mediarelay_port_pairs_quarantined",
            "Released port pairs not handed out again yet (within their release delay, or past it and not reclaimed by an allocation yet).",
            u64::from(m.ports_quarantined),
        ),
        (
            "mediarelay_port_pairs_total",
            "Port pairs in the range.",
            u64::from(m.ports_total),
        ),
    ];
    for (name, help, v) in gauges {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {v}");
    }
    let counters: [(&str, &str, u64); 3] = [
        (
            "mediarelay_builders_created_total",
            "Builders created.",
            m.total_builders_created,
        ),
        (
            "mediarelay_session_timeouts_total",
            "Builders closed by the idle cleanup.",
            m.session_timeouts,
        ),
        (
            "mediarelay_port_quarantine_cut_short_total",
            "Allocations that cut a quarantine short.",
            m.quarantine_cut_short,
        ),
    ];
    for (name, help, v) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    let sessions: Vec<(String, MediaStatistics)> = builders
        .iter()
        .filter_map(|b| {
            b.session_quietly()
                .map(|s| (b.id().to_owned(), s.statistics()))
        })
        .collect();
    out.push_str(&render_sessions(&sessions));
    out
}

/// Per-stream series of the given sessions (`(builder id, statistics)`).
pub fn render_sessions(sessions: &[(String, MediaStatistics)]) -> String {
    type Get = fn(&crate::media::EndpointStats) -> f64;
    let series: [(&str, &str, &str, Get); 12] = [
        (
            "mediarelay_session_audio_packets_sent_total",
            "counter",
            "Audio RTP packets sent.",
            |e| e.audio_sent as f64,
        ),
        (
            "mediarelay_session_packets_received_total",
            "counter",
            "RTP packets received.",
            |e| (e.received + e.dtmf_received) as f64,
        ),
        (
            "mediarelay_session_bytes_sent_total",
            "counter",
            "RTP payload octets sent.",
            |e| e.bytes_sent as f64,
        ),
        (
            "mediarelay_session_bytes_received_total",
            "counter",
            "RTP payload octets received.",
            |e| e.bytes_received as f64,
        ),
        (
            "mediarelay_session_dtmf_packets_sent_total",
            "counter",
            "Telephone-event packets sent.",
            |e| e.dtmf_sent as f64,
        ),
        (
            "mediarelay_session_dtmf_packets_received_total",
            "counter",
            "Telephone-event packets received.",
            |e| e.dtmf_received as f64,
        ),
        (
            "mediarelay_session_packets_lost",
            "gauge",
            "Packets lost on receive (RFC 3550 A.3).",
            |e| e.lost as f64,
        ),
        (
            "mediarelay_session_jitter_seconds",
            "gauge",
            "Interarrival jitter (RFC 3550 A.8).",
            |e| e.jitter_us as f64 / 1e6,
        ),
        (
            "mediarelay_session_rtt_seconds",
            "gauge",
            "Last RTCP round-trip time (0: none measured yet).",
            |e| e.rtt_us as f64 / 1e6,
        ),
        (
            "mediarelay_session_buffer_delay_seconds",
            "gauge",
            "Jitter-buffer delay.",
            |e| e.buffer_delay_us as f64 / 1e6,
        ),
        (
            "mediarelay_session_concealed_frames_total",
            "counter",
            "Frames concealed (loss).",
            |e| e.concealed as f64,
        ),
        (
            "mediarelay_session_mos_estimate",
            "gauge",
            "MOS-CQ estimate (ITU-T G.107 E-model), 0 before the first report.",
            |e| e.mos.unwrap_or(0.0),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, get) in series {
        family(&mut out, name, kind, help);
        for (builder, st) in sessions {
            for (stream, e) in &st.streams {
                let _ = writeln!(
                    out,
                    "{name}{{builder=\"{}\",stream=\"{}\"}} {}",
                    escape(builder),
                    escape(stream),
                    get(e)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

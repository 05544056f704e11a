//! CPU time of the system under test, from `/proc`: a process's user +
//! system time (`/proc/<pid>/stat`, fields 14 and 15, in clock ticks of
//! `USER_HZ`, which Linux fixes at 100 for these files on the
//! architectures this project runs on), and system-wide busy time and
//! softirq share (`/proc/stat`, first `cpu` line: all cores).

use std::time::Duration;

/// `USER_HZ`: the unit of the tick counts in `/proc/<pid>/stat` and
/// `/proc/stat`.
pub const USER_HZ: u64 = 100;

/// Parses user + system ticks from the text of `/proc/<pid>/stat`. The
/// command name (field 2) is in parentheses and may hold spaces and
/// parentheses, so fields are counted after its last `)`.
pub fn parse_process_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': field 3 (state) is the first; utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// User + system CPU time of process `pid` so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_process_ticks(&text)?;
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// System-wide CPU ticks (all cores): total, busy, and those in softirq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemTicks {
    /// All states summed.
    pub total: u64,
    /// Time this machine's CPUs did work: all states but idle, iowait and
    /// steal (time the hypervisor gave to other guests).
    pub busy: u64,
    /// Softirq (network receive processing among others).
    pub softirq: u64,
}

impl SystemTicks {
    /// Parses the first `cpu ` line of `/proc/stat`.
    pub fn parse(stat: &str) -> Option<SystemTicks> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is
        // already inside user/nice).
        let total: u64 = v.iter().take(8).sum();
        Some(SystemTicks {
            total,
            busy: total.saturating_sub(*v.get(3)? + *v.get(4)? + *v.get(7)?),
            softirq: *v.get(6)?,
        })
    }

    /// This host's ticks now.
    pub fn read() -> Option<SystemTicks> {
        SystemTicks::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// CPU time all cores spent busy between `earlier` and `self`.
    pub fn busy_since(&self, earlier: &SystemTicks) -> Duration {
        Duration::from_millis(self.busy.saturating_sub(earlier.busy) * 1000 / USER_HZ)
    }

    /// Softirq share of all CPU time between `earlier` and `self`, 0..=1.
    pub fn softirq_share_since(&self, earlier: &SystemTicks) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.softirq.saturating_sub(earlier.softirq) as f64 / total as f64
    }
}

/// CPU per relayed packet, ns, from the relay's CPU time over a window and
/// the packets it relayed in it (`None` without packets).
pub fn ns_per_packet(cpu: Duration, packets: u64) -> Option<f64> {
    (packets > 0).then(|| cpu.as_nanos() as f64 / packets as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        let stat =
            "4242 (my (odd) relay) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 3 0";
        assert_eq!(parse_process_ticks(stat), Some(1801));
        assert_eq!(parse_process_ticks("garbage"), None);
        assert!(process_cpu(std::process::id()).is_some());
        let s = SystemTicks::parse("cpu  100 0 50 800 10 5 35 7 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(
            s,
            SystemTicks {
                total: 1007,
                busy: 190,
                softirq: 35
            }
        );
        let later = SystemTicks {
            total: 1107,
            busy: 240,
            softirq: 45,
        };
        assert!((later.softirq_share_since(&s) - 0.1).abs() < 1e-12);
        assert_eq!(later.busy_since(&s), Duration::from_millis(500));
        assert!(SystemTicks::read().is_some());
        assert_eq!(ns_per_packet(Duration::from_millis(1), 1000), Some(1000.0));
        assert_eq!(ns_per_packet(Duration::from_millis(1), 0), None);
    }
}

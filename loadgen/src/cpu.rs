//! CPU time of the system under test, from `/proc`: a process's user +
//! system time (`/proc/<pid>/stat`, fields 14 and 15, in clock ticks of
//! `USER_HZ`, which Linux fixes at 100 for these files on the
//! architectures this project runs on); the run time of every thread on
//! the host (`/proc/<pid>/task/<tid>/schedstat`); and the system-wide
//! softirq share (`/proc/stat`, first `cpu` line: all cores).

use std::collections::HashMap;
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

/// System-wide CPU ticks (all cores): total, and those in softirq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemTicks {
    /// All states summed.
    pub total: u64,
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
        Some(SystemTicks {
            total: v.iter().take(8).sum(),
            softirq: *v.get(6)?,
        })
    }

    /// This host's ticks now.
    pub fn read() -> Option<SystemTicks> {
        SystemTicks::parse(&std::fs::read_to_string("/proc/stat").ok()?)
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

/// Run time of every thread on the host so far, ns, by (pid, tid), from
/// `/proc/<pid>/task/<tid>/schedstat`: the scheduler's own clock, exact.
/// `/proc/stat` is not: on kernels with tick-based accounting (this
/// project's development VM among them) it samples each CPU at every
/// timer tick, and short bursts of work on otherwise idle CPUs go
/// uncounted. Softirq work counts where it ran in a thread's context (on
/// loopback, all of it: the sender delivers); interrupt work on an idle
/// CPU is in no thread and not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadTimes(HashMap<(u32, u32), u64>);

impl ThreadTimes {
    /// Every thread's run time now; `None` when `/proc` has none to read.
    pub fn read() -> Option<ThreadTimes> {
        let number = |e: &std::fs::DirEntry| e.file_name().to_str()?.parse::<u32>().ok();
        let mut times = HashMap::new();
        for proc in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = number(&proc) else {
                continue;
            };
            // A process may end while it is read: skip what is gone.
            let Ok(tasks) = std::fs::read_dir(proc.path().join("task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let Some(tid) = number(&task) else {
                    continue;
                };
                if let Some(ns) = std::fs::read_to_string(task.path().join("schedstat"))
                    .ok()
                    .and_then(|s| parse_schedstat(&s))
                {
                    times.insert((pid, tid), ns);
                }
            }
        }
        (!times.is_empty()).then_some(ThreadTimes(times))
    }

    /// Run time between `earlier` and `self` of the threads of the
    /// processes `keep` selects (a thread started in between counts from
    /// zero; one that ended in between is not counted).
    pub fn since(&self, earlier: &ThreadTimes, keep: impl Fn(u32) -> bool) -> Duration {
        let ns = self
            .0
            .iter()
            .filter(|((pid, _), _)| keep(*pid))
            .map(|(k, &ns)| ns.saturating_sub(earlier.0.get(k).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(ns)
    }
}

/// The run time, ns, first field of a `schedstat` file.
fn parse_schedstat(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
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
                softirq: 35
            }
        );
        let later = SystemTicks {
            total: 1107,
            softirq: 45,
        };
        assert!((later.softirq_share_since(&s) - 0.1).abs() < 1e-12);
        assert_eq!(parse_schedstat("168961 3257261 2\n"), Some(168961));
        assert_eq!(parse_schedstat(""), None);
        let before = ThreadTimes(HashMap::from([((1, 1), 100), ((2, 2), 50)]));
        let after = ThreadTimes(HashMap::from([((1, 1), 150), ((2, 2), 80), ((2, 3), 5)]));
        assert_eq!(after.since(&before, |_| true), Duration::from_nanos(85));
        assert_eq!(
            after.since(&before, |pid| pid != 2),
            Duration::from_nanos(50)
        );
        // This process's threads are found and their time grows.
        let t0 = ThreadTimes::read().unwrap();
        let me = std::process::id();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let t1 = ThreadTimes::read().unwrap();
        assert!(t1.since(&t0, |pid| pid == me) > Duration::ZERO, "{x}");
        assert!(SystemTicks::read().is_some());
        assert_eq!(ns_per_packet(Duration::from_millis(1), 1000), Some(1000.0));
        assert_eq!(ns_per_packet(Duration::from_millis(1), 0), None);
    }
}

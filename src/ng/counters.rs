//! NG command counters, shared (atomics) between the NG server thread and
//! whoever reports them (`statistics`, Prometheus `/metrics`).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::{Histogram, HistogramSnapshot};

/// An NG command, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `ping`.
    Ping,
    /// `offer`.
    Offer,
    /// `answer`.
    Answer,
    /// `delete`.
    Delete,
    /// `query`.
    Query,
    /// `list`.
    List,
    /// `statistics`.
    Statistics,
    /// Anything else (or no `command` key).
    Other,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `result: ok` / `pong`.
    Ok,
    /// `result: error`.
    Error,
}

/// Counters of the NG control socket.
#[derive(Debug, Default)]
pub struct NgCounters {
    by_command: [[AtomicU64; 2]; Command::ALL.len()],
    malformed: AtomicU64,
    retransmissions: AtomicU64,
    /// Handling time per command (`mediarelay_ng_command_duration_seconds`).
    durations: [Histogram; Command::ALL.len()],
    /// The command counted last and not yet timed: its index + 1, 0 none.
    /// Written and taken by the thread that runs the handler.
    last: AtomicU8,
}

impl Command {
    /// Every command, in counter order.
    pub const ALL: [Command; 8] = [
        Command::Ping,
        Command::Offer,
        Command::Answer,
        Command::Delete,
        Command::Query,
        Command::List,
        Command::Statistics,
        Command::Other,
    ];

    /// Parses the `command` value.
    pub fn from_name(name: &str) -> Command {
        match name {
            "ping" => Command::Ping,
            "offer" => Command::Offer,
            "answer" => Command::Answer,
            "delete" => Command::Delete,
            "query" => Command::Query,
            "list" => Command::List,
            "statistics" => Command::Statistics,
            _ => Command::Other,
        }
    }

    /// The command name (`other` for [`Command::Other`]).
    pub fn name(self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Offer => "offer",
            Command::Answer => "answer",
            Command::Delete => "delete",
            Command::Query => "query",
            Command::List => "list",
            Command::Statistics => "statistics",
            Command::Other => "other",
        }
    }

    fn index(self) -> usize {
        Command::ALL.iter().position(|&c| c == self).unwrap_or(7)
    }
}

impl NgCounters {
    /// Counts one executed command.
    pub fn count(&self, cmd: Command, outcome: Outcome) {
        if let Some(c) = self.by_command.get(cmd.index()) {
            c[outcome as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.last.store(cmd.index() as u8 + 1, Ordering::Relaxed);
    }

    /// Records `elapsed`, the time spent handling one NG datagram, under
    /// the command that datagram executed (the one [`NgCounters::count`]
    /// counted since the previous call). A datagram that executed none
    /// (malformed, or a retransmission answered from the reply cache) is
    /// not recorded. Call it from the thread that runs the handler, after
    /// each datagram. Lock-free, no allocation.
    pub fn observe_datagram(&self, elapsed: Duration) {
        let last = self.last.swap(0, Ordering::Relaxed);
        if let Some(h) = usize::from(last)
            .checked_sub(1)
            .and_then(|i| self.durations.get(i))
        {
            h.observe(elapsed);
        }
    }

    /// The handling-time histogram of one command.
    pub fn command_duration(&self, cmd: Command) -> HistogramSnapshot {
        self.durations
            .get(cmd.index())
            .map_or_else(HistogramSnapshot::default, Histogram::snapshot)
    }

    /// Commands of one kind that ended with `outcome`.
    pub fn commands(&self, cmd: Command, outcome: Outcome) -> u64 {
        self.by_command
            .get(cmd.index())
            .map_or(0, |c| c[outcome as usize].load(Ordering::Relaxed))
    }

    /// Counts a datagram that is not an NG message.
    pub fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// Datagrams that were not NG messages.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Counts a retransmission answered from the reply cache.
    pub fn count_retransmission(&self) {
        self.retransmissions.fetch_add(1, Ordering::Relaxed);
    }

    /// Retransmissions answered from the reply cache.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions.load(Ordering::Relaxed)
    }
}

/// The NG counters as Prometheus series (`mediarelay_ng_commands_total`,
/// `mediarelay_ng_malformed_total`, `mediarelay_ng_command_duration_seconds`).
impl crate::metrics::NgCounters for NgCounters {
    fn commands(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::with_capacity(Command::ALL.len() * 2);
        for cmd in Command::ALL {
            for (outcome, label) in [(Outcome::Ok, "ok"), (Outcome::Error, "error")] {
                out.push((cmd.name(), label, NgCounters::commands(self, cmd, outcome)));
            }
        }
        out
    }

    fn malformed(&self) -> u64 {
        NgCounters::malformed(self)
    }

    fn command_durations(&self) -> Vec<(&'static str, HistogramSnapshot)> {
        Command::ALL
            .iter()
            .map(|&cmd| (cmd.name(), self.command_duration(cmd)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_time_goes_to_the_command_it_executed() {
        let c = NgCounters::default();
        // A datagram that executed no command is not timed.
        c.count_malformed();
        c.observe_datagram(Duration::from_millis(1));
        assert!(
            Command::ALL
                .iter()
                .all(|&cmd| c.command_duration(cmd).count() == 0)
        );

        c.count(Command::Offer, Outcome::Ok);
        c.observe_datagram(Duration::from_micros(700));
        c.count(Command::Ping, Outcome::Ok);
        c.observe_datagram(Duration::from_micros(20));
        c.count(Command::Offer, Outcome::Error);
        c.observe_datagram(Duration::from_millis(30));
        // A retransmission answered from the cache: nothing counted, not
        // timed again.
        c.count_retransmission();
        c.observe_datagram(Duration::from_secs(9));

        let offer = c.command_duration(Command::Offer);
        assert_eq!(offer.count(), 2);
        assert_eq!(offer.sum_ns, 30_700_000);
        let ping = c.command_duration(Command::Ping);
        assert_eq!(ping.count(), 1);
        assert_eq!(ping.buckets[0], 1, "20 us is in the 50 us bucket");
        assert_eq!(c.command_duration(Command::Delete).count(), 0);

        let families = crate::metrics::NgCounters::command_durations(&c);
        assert_eq!(families.len(), Command::ALL.len());
        assert_eq!(families[1], ("offer", offer));
        // One histogram observation per executed command.
        let timed: u64 = families.iter().map(|(_, h)| h.count()).sum();
        let counted: u64 = crate::metrics::NgCounters::commands(&c)
            .iter()
            .map(|&(_, _, n)| n)
            .sum();
        assert_eq!(timed, counted);
    }
}

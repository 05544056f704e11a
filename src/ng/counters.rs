//! NG command counters, shared (atomics) between the NG server thread and
//! whoever reports them (`statistics`, Prometheus `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

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
/// `mediarelay_ng_malformed_total`).
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
}

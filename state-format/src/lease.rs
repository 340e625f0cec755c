//! Leases: one live writer at a time for a fan-out shard, for an export, and for the start of
//! the export a client token names. A lease is a small object at the destination that names
//! its holder and says when it last renewed it; these are its format and its timing rules, which
//! every holder keeps (the host's `state::lease` takes, renews and releases them).
//!
//! - A lease renewed within [`LEASE_TTL`] by a live holder refuses a newcomer; one not renewed
//!   for that long (its holder is gone) is taken over; so is one whose holder ran on the
//!   newcomer's machine and has ended.
//! - Taking one is a write, then a read back after [`SETTLE`]: of two writers that wrote at
//!   nearly the same time, only the one whose write landed last goes on.
//! - A running holder renews it every [`RENEW_EVERY`], and checks it before each checkpoint
//!   and before the manifests.
//!
//! Times are the writers' clocks: they must agree to within a fraction of [`LEASE_TTL`] (NTP).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a lease holds without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(90);
/// How often a running holder renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);
/// How long a newcomer waits after writing a lease before reading it back.
pub const SETTLE: Duration = Duration::from_secs(1);

/// A lease object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The holder: a random id per lease taken.
    pub owner: String,
    /// When the holder last wrote the lease (ms since the epoch, by its clock).
    pub renewed_ms: u64,
    /// The process that holds it, where it could tell.
    #[serde(default)]
    pub process: Option<Process>,
    /// The task that holds it, as its engine names it, stable across the task's retries (a
    /// step component's caller may give one): a retry of the same task takes the lease over at
    /// once, as the attempt it replaces has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

impl LeaseRecord {
    /// How long ago, at `now_ms`, the holder last renewed it.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.renewed_ms)
    }

    /// Whether it still holds at `now_ms`: renewed within [`LEASE_TTL`], by a holder not known
    /// to have ended.
    pub fn holds(&self, now_ms: u64, holder_ended: bool) -> bool {
        !holder_ended && u128::from(self.age_ms(now_ms)) < LEASE_TTL.as_millis()
    }

    /// Whether the holder is an earlier attempt of `task` (so it has ended: an engine retries a
    /// task once its attempt failed or timed out).
    pub fn held_by_task(&self, task: Option<&str>) -> bool {
        task.is_some() && self.task.as_deref() == task
    }
}

/// A process, as precisely as its machine can name it: enough to tell, on the same machine,
/// that it has ended (its pid gone, or reused by a process that started at another time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub host: String,
    pub pid: u32,
    /// `/proc/sys/kernel/random/boot_id` (Linux): the same host name after a reboot is
    /// another machine as far as pids go.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The process's start time, in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    #[serde(default)]
    pub started: Option<u64>,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_until_its_ttl_unless_its_holder_ended() {
        let record = LeaseRecord { owner: "a".into(), renewed_ms: 1_000_000, process: None, task: None };
        let ttl = LEASE_TTL.as_millis() as u64;
        assert!(record.holds(1_000_000 + ttl - 1, false));
        assert!(!record.holds(1_000_000 + ttl, false));
        assert!(!record.holds(1_000_001, true));
        assert_eq!(record.age_ms(999_000), 0, "a clock behind the holder's is no age");
    }

    #[test]
    fn a_record_without_a_process_still_reads() {
        let record: LeaseRecord = serde_json::from_str(r#"{"owner":"x","renewed_ms":5}"#).unwrap();
        assert_eq!(record, LeaseRecord { owner: "x".into(), renewed_ms: 5, process: None, task: None });
    }

    #[test]
    fn only_the_same_named_task_is_an_earlier_attempt() {
        let record = LeaseRecord { owner: "a".into(), renewed_ms: 0, process: None, task: Some("exec-1".into()) };
        assert!(record.held_by_task(Some("exec-1")));
        assert!(!record.held_by_task(Some("exec-2")));
        assert!(!record.held_by_task(None));
        let unnamed = LeaseRecord { task: None, ..record };
        assert!(!unnamed.held_by_task(None), "two callers without a name are not one task");
        let text = serde_json::to_string(&unnamed).unwrap();
        assert!(!text.contains("task"), "a lease without a task is written as before: {text}");
    }
}

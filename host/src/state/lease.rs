//! Leases: one live writer at a time for a fan-out shard, for an export, and for the start of
//! the export a client token names.
//!
//! Workflow engines run a task twice (a retry after a timeout while the first attempt still
//! runs, a node thought lost), and schedulers overlap (cron, a retried step). Two writers of one
//! export would overwrite each other's data files with other bytes and each publish manifests
//! of its own, so every writer takes a lease first, a small object at the destination that
//! names it and says when it last renewed the lease:
//!
//! - `<root>/_ddb-export/leases/<shard>.json`: a fan-out worker's, on its shard;
//! - `<root>/_ddb-export/leases/export.json`: an `export` run's (and `finalize`'s), on the
//!   whole export;
//! - `_ddb-export/client-tokens/<sha256>.lease.json`: held while a run with a client token
//!   finds or starts the token's export, so that two runs of one token never start two exports.
//!
//! The rules:
//! - A lease renewed within [`LEASE_TTL`] by a live holder refuses the newcomer
//!   ([`ExportError::ShardBusy`], [`ExportError::ExportBusy`]). One not renewed for that long (its
//!   holder is gone) is taken over; so is one whose holder ran on this machine and has ended (a
//!   run killed with `kill -9`, resumed at once on the same machine, need not wait).
//! - Taking one is a write, then a read back after [`SETTLE`]: of two writers that wrote at
//!   nearly the same time, only the one whose write landed last goes on. The write is also
//!   conditional (`If-None-Match: *` for a new lease, `If-Match` on the one read when taking one
//!   over, where the store honours them): a second guard, not relied on.
//! - While the work runs, the lease is renewed every [`RENEW_EVERY`] (conditionally, on the
//!   ETag of its last write) and checked before each checkpoint and before the manifests: a
//!   holder that finds it taken over stops without saving anything more.
//! - It is deleted when the work ends, either way.
//!
//! Times are the writers' clocks: they must agree to within a fraction of [`LEASE_TTL`] (NTP).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use ddb_export_state_format::lease::{LEASE_TTL, LeaseRecord, Process, RENEW_EVERY, SETTLE};

use crate::error::ExportError;
use crate::io::destination::{Condition, Destination};

/// What a lease guards, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseScope {
    /// A fan-out shard.
    Shard(u32),
    /// A whole export, by id.
    Export(String),
    /// The start of a client token's export.
    ClientToken,
}

/// This process, as a lease names its holder.
fn this_process() -> Process {
    let pid = std::process::id();
    Process { host: host_name(), pid, boot_id: boot_id(), started: process_start(pid) }
}

/// Whether `process` is one of this machine (same host and boot) that is no longer running.
/// `false` wherever that cannot be told (another machine, no `/proc`).
fn has_ended(process: &Process) -> bool {
    let here = this_process();
    if process.host != here.host || process.boot_id.is_none() || process.boot_id != here.boot_id {
        return false;
    }
    match process_start(process.pid) {
        None => std::path::Path::new("/proc/self/stat").exists(),
        Some(started) => process.started.is_some_and(|then| then != started),
    }
}

fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    if result == 0 { String::from_utf8_lossy(&buffer[..end]).into_owned() } else { "unknown".into() }
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|id| id.trim().to_string())
}

/// Field 22 of `/proc/<pid>/stat`, counted after the command name (which may hold spaces).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// A lease this holder holds.
#[derive(Clone)]
pub struct Lease {
    destination: Destination,
    key: String,
    scope: LeaseScope,
    record: LeaseRecord,
    /// The ETag of the lease as this holder last wrote it (for conditional renewals).
    etag: Arc<Mutex<Option<String>>>,
    /// Set once another holder is found to hold the lease.
    lost: Arc<AtomicBool>,
}

impl Lease {
    fn new(destination: &Destination, key: String, scope: LeaseScope) -> Self {
        let record = LeaseRecord {
            owner: uuid::Uuid::new_v4().to_string(),
            renewed_ms: 0,
            process: Some(this_process()),
            task: None,
        };
        Self {
            destination: destination.clone(),
            key,
            scope,
            record,
            etag: Arc::new(Mutex::new(None)),
            lost: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Takes the lease at `key`, or refuses while another live holder has it.
    pub async fn acquire(destination: &Destination, key: String, scope: LeaseScope) -> Result<Self, ExportError> {
        let lease = Self::new(destination, key, scope);
        let condition = match lease.read().await? {
            Some((held, etag)) => {
                lease.refuse_if_live(&held)?;
                Condition::Matches(etag)
            }
            None => Condition::Absent,
        };
        if !lease.write(condition).await? {
            // Another holder wrote it between our read and our write.
            return Err(match lease.read().await? {
                Some((held, _)) => lease.busy(&held),
                None => lease.vanished(),
            });
        }
        tokio::time::sleep(SETTLE).await;
        match lease.read().await? {
            Some((held, etag)) if held.owner == lease.record.owner => {
                lease.remember(Some(etag));
                Ok(lease)
            }
            Some((held, _)) => Err(lease.busy(&held)),
            None => Err(lease.vanished()),
        }
    }

    /// Takes a lease nobody else can be after yet (that of an export whose id this run just
    /// made and has not recorded anywhere): one write, no wait.
    pub async fn create(destination: &Destination, key: String, scope: LeaseScope) -> Result<Self, ExportError> {
        let lease = Self::new(destination, key, scope);
        if !lease.write(Condition::Absent).await? {
            return Err(match lease.read().await? {
                Some((held, _)) => lease.busy(&held),
                None => lease.vanished(),
            });
        }
        Ok(lease)
    }

    /// The lease's key at the destination.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Renews the lease every [`RENEW_EVERY`] until the returned guard is dropped; finding it
    /// taken over marks it lost and sets `stop`, which stops the work.
    pub fn keep_alive(&self, stop: Arc<AtomicBool>) -> KeepAlive {
        let lease = self.clone();
        KeepAlive(tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                if let Err(error) = lease.renew().await {
                    tracing::warn!("{error}");
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }))
    }

    /// Writes the lease again, on the condition that it is still as this holder last wrote it.
    async fn renew(&self) -> Result<(), ExportError> {
        self.check().await?;
        let condition = match self.last_etag() {
            Some(etag) => Condition::Matches(etag),
            None => Condition::None,
        };
        if self.write(condition).await? {
            Ok(())
        } else {
            self.lost.store(true, Ordering::Relaxed);
            Err(self.taken_over())
        }
    }

    /// Fails unless this holder still holds the lease (a read of it).
    pub async fn check(&self) -> Result<(), ExportError> {
        if self.lost.load(Ordering::Relaxed) {
            return Err(self.taken_over());
        }
        match self.read().await? {
            Some((held, _)) if held.owner == self.record.owner => Ok(()),
            _ => {
                self.lost.store(true, Ordering::Relaxed);
                Err(self.taken_over())
            }
        }
    }

    /// Whether the lease was found taken over.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// The error of a holder whose lease another took over.
    pub fn taken_over(&self) -> ExportError {
        let message = format!(
            "another run took its lease over (this one went {}s without renewing it); this one stopped without \
             saving anything more",
            LEASE_TTL.as_secs()
        );
        self.error(message)
    }

    /// Deletes the lease, if this holder still holds it.
    pub async fn release(self) {
        if matches!(self.read().await, Ok(Some((held, _))) if held.owner == self.record.owner)
            && let Err(e) = self.destination.delete(&self.key).await
        {
            tracing::warn!("could not release the lease {}: {e}", self.destination.locate(&self.key));
        }
    }

    fn remember(&self, etag: Option<String>) {
        *self.etag.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = etag;
    }

    fn last_etag(&self) -> Option<String> {
        self.etag.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The lease as stored, with its ETag; `None` when there is none.
    async fn read(&self) -> Result<Option<(LeaseRecord, String)>, ExportError> {
        let Some((bytes, etag)) = self.destination.get_tagged(&self.key).await? else { return Ok(None) };
        let record = serde_json::from_slice(&bytes).map_err(|e| ExportError::CorruptState {
            location: self.destination.locate(&self.key),
            message: format!("not a lease: {e}"),
        })?;
        Ok(Some((record, etag)))
    }

    /// Writes this holder's record under `condition`; `false` when the store refused the
    /// condition (someone else wrote the lease meanwhile).
    async fn write(&self, condition: Condition) -> Result<bool, ExportError> {
        let record = LeaseRecord { renewed_ms: crate::model::time::now_ms(), ..self.record.clone() };
        let body = serde_json::to_vec_pretty(&record)
            .map_err(|e| ExportError::Internal(format!("encoding the lease {}: {e}", self.key)))?;
        match self.destination.put_if(&self.key, body, condition).await? {
            Some(written) => {
                self.remember(Some(written.etag));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn refuse_if_live(&self, held: &LeaseRecord) -> Result<(), ExportError> {
        let now = crate::model::time::now_ms();
        let age = held.age_ms(now);
        let ended = held.process.as_ref().filter(|p| has_ended(p));
        if held.holds(now, ended.is_some()) {
            return Err(self.busy(held));
        }
        let why = match ended {
            Some(process) => format!("{process} has ended"),
            None => format!("silent for {}s", age / 1000),
        };
        tracing::warn!("taking over the lease of {} from its last holder ({why})", self.scope);
        Ok(())
    }

    fn busy(&self, held: &LeaseRecord) -> ExportError {
        let age = crate::model::time::now_ms().saturating_sub(held.renewed_ms) / 1000;
        let who = match &held.process {
            Some(process) => format!("{process} (lease {})", held.owner),
            None => format!("lease {}", held.owner),
        };
        let again = match &self.scope {
            LeaseScope::Shard(_) => "a finished shard is not read again",
            LeaseScope::Export(_) | LeaseScope::ClientToken => "a complete export is returned as it is",
        };
        self.error(format!(
            "another run ({who}) holds its lease, renewed {age}s ago (two writers of one export would publish \
             manifests that lie); run this again once that run has ended ({again}), or after {}s without renewal",
            LEASE_TTL.as_secs()
        ))
    }

    fn vanished(&self) -> ExportError {
        self.error("its lease vanished as it was taken: another run is finishing it".into())
    }

    fn error(&self, message: String) -> ExportError {
        match &self.scope {
            LeaseScope::Shard(shard) => ExportError::ShardBusy { shard: *shard, message },
            LeaseScope::Export(id) => ExportError::ExportBusy { what: format!("export {id}"), message },
            LeaseScope::ClientToken => ExportError::ExportBusy { what: "the client token's export".into(), message },
        }
    }
}

impl std::fmt::Display for LeaseScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseScope::Shard(shard) => write!(f, "shard {shard}"),
            LeaseScope::Export(id) => write!(f, "export {id}"),
            LeaseScope::ClientToken => f.write_str("the client token"),
        }
    }
}

/// Renews a lease until dropped.
pub struct KeepAlive(tokio::task::JoinHandle<()>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::keys;

    #[test]
    fn this_process_is_running_and_a_dead_one_of_this_machine_has_ended() {
        let here = this_process();
        assert!(!has_ended(&here), "{here:?}");
        if here.boot_id.is_none() {
            return; // no /proc: only the TTL tells
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Process { pid, started: Some(1), ..here.clone() };
        assert!(has_ended(&dead));
        let reused = Process { started: here.started.map(|s| s + 1), ..here.clone() };
        assert!(has_ended(&reused), "the same pid, started at another time, is another process");
        let elsewhere = Process { host: format!("{}-elsewhere", here.host), ..dead.clone() };
        assert!(!has_ended(&elsewhere), "another machine's process cannot be judged from here");
        let rebooted = Process { boot_id: Some("another boot".into()), ..dead };
        assert!(!has_ended(&rebooted));
    }

    async fn directory() -> (tempfile::TempDir, Destination) {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(crate::io::destination::Directory::create(dir.path()).await.unwrap());
        (dir, destination)
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_holder_refuses_a_second_one_until_it_releases() {
        let (_dir, destination) = directory().await;
        let key = keys::export_lease_key("AWSDynamoDB/e");
        let first = Lease::acquire(&destination, key.clone(), LeaseScope::Export("e".into())).await.unwrap();
        let second = Lease::acquire(&destination, key.clone(), LeaseScope::Export("e".into())).await;
        let message = second.err().expect("refused").to_string();
        assert!(message.contains("export e is busy") && message.contains("holds its lease"), "{message}");
        first.check().await.unwrap();
        first.release().await;
        let third = Lease::acquire(&destination, key, LeaseScope::Export("e".into())).await.unwrap();
        third.check().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_taken_over_is_lost_to_its_old_holder() {
        let (_dir, destination) = directory().await;
        let key = keys::shard_lease_key("AWSDynamoDB/e", 1);
        let old = Lease::acquire(&destination, key.clone(), LeaseScope::Shard(1)).await.unwrap();
        // Its holder went silent: a record older than the TTL, of a process elsewhere.
        let silent = LeaseRecord {
            owner: old.record.owner.clone(),
            renewed_ms: crate::model::time::now_ms() - LEASE_TTL.as_millis() as u64 - 1000,
            process: Some(Process { host: "elsewhere".into(), ..this_process() }),
            task: None,
        };
        destination.put(&key, serde_json::to_vec(&silent).unwrap()).await.unwrap();
        let new = Lease::acquire(&destination, key.clone(), LeaseScope::Shard(1)).await.unwrap();
        let message = old.check().await.unwrap_err().to_string();
        assert!(message.contains("shard 1 is busy") && message.contains("took its lease over"), "{message}");
        assert!(old.is_lost());
        assert!(old.renew().await.is_err());
        new.check().await.unwrap();
        new.renew().await.unwrap();
        old.release().await; // not its own any more: left alone
        new.check().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_of_a_process_of_this_machine_that_ended_is_taken_over_at_once() {
        let (_dir, destination) = directory().await;
        let here = this_process();
        if here.boot_id.is_none() {
            return;
        }
        let key = keys::export_lease_key("AWSDynamoDB/e");
        let dead = LeaseRecord {
            owner: "killed".into(),
            renewed_ms: crate::model::time::now_ms(),
            process: Some(Process { started: here.started.map(|s| s + 1), ..here }),
            task: None,
        };
        destination.put(&key, serde_json::to_vec(&dead).unwrap()).await.unwrap();
        Lease::acquire(&destination, key.clone(), LeaseScope::Export("e".into())).await.unwrap();
        // A fresh lease of a live process elsewhere is respected.
        let live = LeaseRecord {
            owner: "alive".into(),
            renewed_ms: crate::model::time::now_ms(),
            process: Some(Process { host: "elsewhere".into(), ..this_process() }),
            task: None,
        };
        destination.put(&key, serde_json::to_vec(&live).unwrap()).await.unwrap();
        assert!(Lease::acquire(&destination, key.clone(), LeaseScope::ClientToken).await.is_err());
        assert!(
            Lease::create(&destination, key, LeaseScope::ClientToken).await.is_err(),
            "create needs no lease there"
        );
    }
}

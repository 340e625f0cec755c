//! A fan-out shard's lease: one live worker per shard.
//!
//! Workflow engines run a task twice (a retry after a timeout while the first attempt still
//! runs, a node thought lost). Two workers writing one shard would overwrite each other's data
//! files with other bytes, so a worker takes the shard's lease before it reads a page:
//! `<root>/_ddb-export/leases/<shard>.json` names it and when it last renewed the lease.
//!
//! - A lease renewed within [`LEASE_TTL`] by another worker refuses the shard
//!   ([`ExportError::ShardBusy`]); an older one (its worker is gone) is taken over.
//! - Taking it is a write, then a read back after [`SETTLE`]: of two workers that wrote at
//!   nearly the same time, only the one whose write landed last goes on. (S3's conditional
//!   writes would make this atomic; the S3 stand-in the tests use has none.)
//! - While the shard runs, the lease is renewed every [`RENEW_EVERY`], and checked before each
//!   checkpoint: a worker that finds it taken over stops without saving anything.
//! - It is deleted when the shard ends, either way.
//!
//! Times are the workers' clocks: they must agree to within a fraction of [`LEASE_TTL`] (NTP).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::destination::Destination;
use crate::error::ExportError;

/// How long a lease holds without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(90);
/// How often a running worker renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);
/// How long a worker waits after writing its lease before reading it back.
pub const SETTLE: Duration = Duration::from_secs(1);

/// `_ddb-export/leases/<shard>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseRecord {
    /// The worker: a random id per `run-shard`.
    owner: String,
    /// When the owner last wrote the lease (ms since the epoch, by its clock).
    renewed_ms: u64,
}

/// The folder of an export's leases.
pub fn leases_prefix(export_root: &str) -> String {
    format!("{export_root}/_ddb-export/leases/")
}

fn lease_key(export_root: &str, shard: u32) -> String {
    format!("{}{shard:07}.json", leases_prefix(export_root))
}

/// A lease this worker holds.
#[derive(Clone)]
pub struct ShardLease {
    destination: Destination,
    key: String,
    shard: u32,
    owner: String,
    /// Set once another worker is found to hold the lease.
    lost: Arc<AtomicBool>,
}

impl ShardLease {
    /// Takes shard `shard`'s lease, or refuses while another worker holds it.
    pub async fn acquire(destination: &Destination, export_root: &str, shard: u32) -> Result<Self, ExportError> {
        let key = lease_key(export_root, shard);
        let lease = Self {
            destination: destination.clone(),
            key,
            shard,
            owner: uuid::Uuid::new_v4().to_string(),
            lost: Arc::new(AtomicBool::new(false)),
        };
        if let Some(held) = lease.read().await? {
            lease.refuse_if_live(&held)?;
        }
        lease.write().await?;
        tokio::time::sleep(SETTLE).await;
        match lease.read().await? {
            Some(held) if held.owner == lease.owner => Ok(lease),
            Some(held) => Err(lease.busy(&held)),
            None => Err(ExportError::ShardBusy {
                shard,
                message: "its lease vanished as it was taken: another worker is finishing it".into(),
            }),
        }
    }

    /// Renews the lease every [`RENEW_EVERY`] until the returned guard is dropped; finding it
    /// taken over marks it lost and sets `stop`, which stops the shard.
    pub fn keep_alive(&self, stop: Arc<AtomicBool>) -> KeepAlive {
        let lease = self.clone();
        KeepAlive(tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                if lease.check().await.is_err() || lease.write().await.is_err() {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }))
    }

    /// Fails unless this worker still holds the lease (a read of it).
    pub async fn check(&self) -> Result<(), ExportError> {
        if self.lost.load(Ordering::Relaxed) {
            return Err(self.taken_over());
        }
        match self.read().await? {
            Some(held) if held.owner == self.owner => Ok(()),
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

    /// The error of a worker whose lease another took over.
    pub fn taken_over(&self) -> ExportError {
        ExportError::ShardBusy {
            shard: self.shard,
            message: format!(
                "another worker took its lease over (this one went {}s without renewing it); this one stopped \
                 without saving anything",
                LEASE_TTL.as_secs()
            ),
        }
    }

    /// Deletes the lease, if this worker still holds it.
    pub async fn release(self) {
        if matches!(self.read().await, Ok(Some(held)) if held.owner == self.owner)
            && let Err(e) = self.destination.delete(&self.key).await
        {
            tracing::warn!("could not release the lease {}: {e}", self.destination.locate(&self.key));
        }
    }

    async fn read(&self) -> Result<Option<LeaseRecord>, ExportError> {
        checkpoint::load(&self.destination, &self.key).await
    }

    async fn write(&self) -> Result<(), ExportError> {
        let record = LeaseRecord { owner: self.owner.clone(), renewed_ms: crate::export::now_ms() };
        checkpoint::save(&self.destination, &self.key, &record).await
    }

    fn refuse_if_live(&self, held: &LeaseRecord) -> Result<(), ExportError> {
        let age = crate::export::now_ms().saturating_sub(held.renewed_ms);
        if u128::from(age) < LEASE_TTL.as_millis() {
            return Err(self.busy(held));
        }
        tracing::warn!(
            "taking over the lease of shard {} from worker {}, silent for {}s",
            self.shard,
            held.owner,
            age / 1000
        );
        Ok(())
    }

    fn busy(&self, held: &LeaseRecord) -> ExportError {
        let age = crate::export::now_ms().saturating_sub(held.renewed_ms) / 1000;
        ExportError::ShardBusy {
            shard: self.shard,
            message: format!(
                "another worker ({}) holds its lease, renewed {age}s ago; run it again once that worker has \
                 ended (a finished shard is not read again), or after {}s without renewal",
                held.owner,
                LEASE_TTL.as_secs()
            ),
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

//! Leases taken, renewed and released under the rules of [`ddb_export_state_format::lease`],
//! the ones `ddb-export` keeps: a worker of either kind refuses a shard the other holds, and
//! takes over one whose holder went silent.
//!
//! A component cannot name its process (no pid a newcomer could check), so its lease carries
//! none. It may carry its caller's task name instead: a retry of the same task takes the lease
//! over at once; anything else waits for [`LEASE_TTL`] to pass.

use ddb_export_state_format::lease::{LEASE_TTL, LeaseRecord, RENEW_EVERY, SETTLE};

use crate::Error;
use crate::io::{Condition, Io, Store};

/// A lease this call holds.
pub struct Lease {
    key: String,
    record: LeaseRecord,
    /// The ETag of its last write (renewals are conditional on it).
    etag: String,
    /// When it was last written ([`Io::elapsed`], ms).
    written_ms: u128,
    /// What it guards, for messages: `shard 3 of export …`.
    scope: String,
}

impl Lease {
    fn new(key: String, scope: String, task: Option<&str>) -> Self {
        let owner = uuid::Uuid::new_v4().to_string();
        Self {
            key,
            record: LeaseRecord { owner, renewed_ms: 0, process: None, task: task.map(str::to_string) },
            etag: String::new(),
            written_ms: 0,
            scope,
        }
    }

    /// Takes the lease at `key`, or refuses (`execution-failed`: a retry later may get it)
    /// while a live holder other than an earlier attempt of `task` has it.
    pub fn acquire<I: Io>(store: &Store<'_, I>, key: String, scope: String, task: Option<&str>) -> Result<Self, Error> {
        let mut lease = Self::new(key, scope, task);
        let condition = match lease.read(store)? {
            Some((held, etag)) => {
                if held.holds(store.io.now_ms(), held.held_by_task(task)) {
                    return Err(lease.busy(store, &held));
                }
                Condition::Matches(etag)
            }
            None => Condition::Absent,
        };
        lease.take(store, &condition)?;
        Ok(lease)
    }

    /// Takes a lease no one can hold yet (a new export's, before anything names it), or
    /// refuses if one is there after all.
    pub fn create<I: Io>(store: &Store<'_, I>, key: String, scope: String) -> Result<Self, Error> {
        let mut lease = Self::new(key, scope, None);
        lease.take(store, &Condition::Absent)?;
        Ok(lease)
    }

    /// Writes the lease if `condition` holds, then reads it back after [`SETTLE`]: of two
    /// newcomers that wrote at nearly the same time, the one whose write landed last goes on.
    fn take<I: Io>(&mut self, store: &Store<'_, I>, condition: &Condition) -> Result<(), Error> {
        if !self.write(store, condition)? {
            return Err(match self.read(store)? {
                Some((held, _)) => self.busy(store, &held),
                None => self.vanished(),
            });
        }
        store.io.sleep(SETTLE);
        match self.read(store)? {
            Some((held, etag)) if held.owner == self.record.owner => {
                self.etag = etag;
                Ok(())
            }
            Some((held, _)) => Err(self.busy(store, &held)),
            None => Err(self.vanished()),
        }
    }

    /// Renews the lease when [`RENEW_EVERY`] has passed since it was last written; fails once
    /// another holder has it.
    pub fn renew_if_due<I: Io>(&mut self, store: &Store<'_, I>) -> Result<(), Error> {
        if store.io.elapsed().as_millis().saturating_sub(self.written_ms) < RENEW_EVERY.as_millis() {
            return Ok(());
        }
        let condition = Condition::Matches(self.etag.clone());
        if self.write(store, &condition)? { Ok(()) } else { Err(self.taken_over()) }
    }

    /// Fails unless this call still holds the lease (a read of it): before every checkpoint
    /// and before the manifests.
    pub fn check<I: Io>(&self, store: &Store<'_, I>) -> Result<(), Error> {
        match self.read(store)? {
            Some((held, _)) if held.owner == self.record.owner => Ok(()),
            _ => Err(self.taken_over()),
        }
    }

    /// Deletes the lease if this call still holds it. A failure is left to the lease's TTL.
    pub fn release<I: Io>(self, store: &Store<'_, I>) {
        if matches!(self.read(store), Ok(Some((held, _))) if held.owner == self.record.owner) {
            let _ = store.delete(&self.key);
        }
    }

    fn write<I: Io>(&mut self, store: &Store<'_, I>, condition: &Condition) -> Result<bool, Error> {
        let record = LeaseRecord { renewed_ms: store.io.now_ms(), ..self.record.clone() };
        match store.save(&self.key, &record, condition)? {
            Some(etag) => {
                self.etag = etag;
                self.written_ms = store.io.elapsed().as_millis();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn read<I: Io>(&self, store: &Store<'_, I>) -> Result<Option<(LeaseRecord, String)>, Error> {
        store.load(&self.key)
    }

    fn busy<I: Io>(&self, store: &Store<'_, I>, held: &LeaseRecord) -> Error {
        let age = held.age_ms(store.io.now_ms()) / 1000;
        let who = match (&held.process, &held.task) {
            (Some(process), _) => format!("{process} (lease {})", held.owner),
            (None, Some(task)) => format!("task {task:?} (lease {})", held.owner),
            (None, None) => format!("lease {}", held.owner),
        };
        Error::Transient(format!(
            "{}: another worker ({who}) holds its lease, renewed {age}s ago; try again once it has ended (a finished \
             shard is not read again), or after {}s without renewal",
            self.scope,
            LEASE_TTL.as_secs()
        ))
    }

    fn vanished(&self) -> Error {
        Error::Transient(format!("{}: its lease vanished as it was taken: another worker is at it", self.scope))
    }

    fn taken_over(&self) -> Error {
        Error::Transient(format!(
            "{}: another worker took its lease over (this call may have gone {}s without renewing it, or been \
             replaced by a retry of its task); this call stopped without saving anything more",
            self.scope,
            LEASE_TTL.as_secs()
        ))
    }
}

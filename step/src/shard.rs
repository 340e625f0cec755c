//! One bounded run of one shard of a planned export: the saved state read and checked, the
//! shard's lease taken, then scan → encode → store from its checkpoint, a checkpoint saved after
//! every data file, until the segment ends or the call's budget is spent.
//!
//! The rules are those of the host's `run-shard` (`host/src/modes/fanout`), on the same objects:
//! a shard is resumed from the Scan key after its last stored file, its encoder numbers files on
//! from there (a file an interrupted call was writing is written again under the same name), and
//! a checkpoint is saved only between files, after a check that this call still holds the lease.

use std::time::Duration;

use ddb_export_guest::encoder::ShardEncoder;
use ddb_export_guest::wit::{EncoderOptions, Output};
use ddb_export_model::{ManifestEntry, Shard, layout};
use ddb_export_state_format::export::{RunState, ShardCheckpoint};
use ddb_export_state_format::keys;

use crate::export::Planned;
use crate::io::{AwsError, Condition, Io, ScanPage, Store};
use crate::lease::Lease;
use crate::{Budget, Error, ShardProgress, ShardRequest, convert};

/// Attempts of one Scan page before a transient failure ends the call (the engine retries it).
const SCAN_ATTEMPTS: u32 = 5;
/// The first pause after a transient failure; doubled on each attempt.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// Runs `request`'s shard from its checkpoint until it is done or its budget is spent.
pub fn run(io: &impl Io, request: &ShardRequest) -> Result<ShardProgress, Error> {
    check_budget(&request.budget)?;
    let planned = Planned::open(io, &request.export_location, request.expected_bucket_owner.as_deref())?;
    let state = &planned.state;
    crate::plan::check_file_size(state.fingerprint.target_file_bytes)?;
    let Some(shard) = state.plan.shards.iter().find(|s| s.id == request.shard).copied() else {
        return Err(Error::PermanentRefused(format!(
            "export {} has shards 0 to {}, not {}",
            planned.at.export_id,
            state.plan.shards.len().saturating_sub(1),
            request.shard
        )));
    };
    if planned.is_complete()? {
        return Ok(ShardProgress {
            export_arn: state.snapshot.export_arn.clone(),
            shard: shard.id,
            done: true,
            item_count: None,
            data_files: None,
            data_files_this_call: 0,
            item_count_this_call: 0,
        });
    }
    if let Some(done) = planned.checkpoint(shard.id, &mut Default::default())?.filter(|c| c.done) {
        return Ok(progress_of(state, &done, 0, 0));
    }
    // One live worker per shard; the checkpoint is read again once the lease is held, as
    // another worker may have moved the shard on meanwhile.
    let store = &planned.store;
    let key = keys::shard_lease_key(&state.snapshot.keys.root, shard.id);
    let mut lease = Lease::acquire(store, key, planned.shard_scope(shard.id), request.task.as_deref())?;
    let outcome = match planned.checkpoint(shard.id, &mut Default::default()) {
        Ok(Some(done)) if done.done => Ok(progress_of(state, &done, 0, 0)),
        Ok(saved) => {
            let resume = saved.unwrap_or(ShardCheckpoint { shard: shard.id, ..ShardCheckpoint::default() });
            Run { store, state, shard, lease: &mut lease, budget: &request.budget }.go(resume)
        }
        Err(error) => Err(error),
    };
    lease.release(store);
    outcome
}

fn check_budget(budget: &Budget) -> Result<(), Error> {
    if budget.max_data_files == Some(0) || budget.max_millis == Some(0) {
        return Err(Error::PermanentRefused(
            "a budget of 0 data files or 0 milliseconds lets a call do nothing: give at least 1, or none for no bound"
                .into(),
        ));
    }
    Ok(())
}

fn progress_of(
    state: &RunState,
    checkpoint: &ShardCheckpoint,
    files_this_call: u32,
    items_this_call: u64,
) -> ShardProgress {
    ShardProgress {
        export_arn: state.snapshot.export_arn.clone(),
        shard: checkpoint.shard,
        done: checkpoint.done,
        item_count: Some(checkpoint.items),
        data_files: Some(checkpoint.files.len() as u32),
        data_files_this_call: files_this_call,
        item_count_this_call: items_this_call,
    }
}

/// A data file being written: its key, bytes so far and the items of the pages it holds.
struct OpenFile {
    key: String,
    body: Vec<u8>,
    items: u64,
}

/// One call's run of a shard, holding its lease.
struct Run<'a, I: Io> {
    store: &'a Store<'a, I>,
    state: &'a RunState,
    shard: Shard,
    lease: &'a mut Lease,
    budget: &'a Budget,
}

impl<I: Io> Run<'_, I> {
    fn go(self, resume: ShardCheckpoint) -> Result<ShardProgress, Error> {
        let started = self.store.io.elapsed();
        let snapshot = &self.state.snapshot;
        let checkpoint_key = keys::shard_key(&snapshot.keys.root, self.shard.id);
        // An upload `ddb-export run-shard` began is left to finalize to abort: this call
        // writes that file again, whole, under the same name.
        let mut progress = ShardCheckpoint { open_upload: None, ..resume };
        let options = EncoderOptions {
            shard_id: self.shard.id,
            target_file_bytes: self.state.fingerprint.target_file_bytes,
            compression_level: self.state.fingerprint.compression_level,
            first_sequence: progress.next_sequence,
        };
        let mut encoder = ShardEncoder::open(&convert::snapshot_for_encoder(snapshot), options).map_err(|e| {
            Error::PermanentRefused(format!(
                "the encoder refused export {}: {}",
                snapshot.export_id,
                convert::write_error_text(&e)
            ))
        })?;
        let mut start_key = progress.resume_key.as_ref().map(|key| key.to_string());
        let mut file: Option<OpenFile> = None;
        let (mut files_this_call, mut items_this_call) = (0u32, 0u64);
        loop {
            self.lease.renew_if_due(self.store)?;
            let page = self.scan(start_key.take())?;
            let next_key = page.last_evaluated_key.clone();
            let output = if page.count > 0 {
                encoder.encode_json_page(&page.items).map_err(|e| self.unreadable_page(&e))?
            } else {
                Vec::new()
            };
            let page_items = u64::from(page.count);
            drop(page);
            let mut stored = self.apply(output, page_items, &mut file, &mut progress)?;
            let Some(next_key) = next_key else {
                stored +=
                    self.apply(encoder.finish().map_err(|e| self.unreadable_page(&e))?, 0, &mut file, &mut progress)?;
                files_this_call += stored.files;
                items_this_call += stored.items;
                if file.is_some() {
                    return Err(self.bad_output("the encoder's last data file was never finished".into()));
                }
                progress.done = true;
                progress.resume_key = None;
                self.save(&checkpoint_key, &progress)?;
                return Ok(progress_of(self.state, &progress, files_this_call, items_this_call));
            };
            files_this_call += stored.files;
            items_this_call += stored.items;
            if stored.files > 0 && file.is_none() {
                // Between files, at a key the scan can resume from: the only place to stop.
                progress.resume_key = Some(serde_json::from_str(&next_key).map_err(|e| {
                    Error::Transient(format!("DynamoDB Scan returned a LastEvaluatedKey that is not JSON: {e}"))
                })?);
                self.save(&checkpoint_key, &progress)?;
                let spent_files = self.budget.max_data_files.is_some_and(|max| files_this_call >= max);
                let spent_time = self
                    .budget
                    .max_millis
                    .is_some_and(|max| (self.store.io.elapsed() - started).as_millis() >= u128::from(max));
                if spent_files || spent_time {
                    return Ok(progress_of(self.state, &progress, files_this_call, items_this_call));
                }
            }
            start_key = Some(next_key);
        }
    }

    /// One Scan page, transient failures retried with a growing pause.
    fn scan(&self, start_key: Option<String>) -> Result<ScanPage, Error> {
        let filter = self.state.fingerprint.scan_filter.as_ref();
        let request = crate::io::scan_request(&self.state.snapshot.table_name, &self.shard, start_key, None, filter);
        let mut pause = FIRST_PAUSE;
        for attempt in 1.. {
            match self.store.io.scan(&request) {
                Ok(page) => return Ok(page),
                Err(AwsError::Transient(_)) if attempt < SCAN_ATTEMPTS => {
                    self.store.io.sleep(pause);
                    pause *= 2;
                }
                Err(error) => {
                    let message = format!(
                        "DynamoDB Scan of table {} (segment {} of {}): {}",
                        self.state.snapshot.table_name,
                        self.shard.segment,
                        self.shard.total_segments,
                        crate::io::describe(&error)
                    );
                    return Err(match error {
                        AwsError::Transient(_) => Error::Transient(message),
                        AwsError::Refused(_) => Error::PermanentBadTable(message),
                    });
                }
            }
        }
        unreachable!("the loop returns by its last attempt")
    }

    /// Applies one batch of encoder output: stores each data file that finishes and records
    /// it in `progress`. `page_items` items went to the file open at its start, or to the one
    /// it starts.
    fn apply(
        &self,
        output: Vec<Output>,
        page_items: u64,
        file: &mut Option<OpenFile>,
        progress: &mut ShardCheckpoint,
    ) -> Result<Stored, Error> {
        let mut stored = Stored::default();
        let mut page_placed = false;
        if let Some(open) = file.as_mut() {
            open.items += page_items;
            page_placed = true;
        }
        for event in output {
            match event {
                Output::FileStarted(key) => {
                    if file.is_some() || page_placed && page_items > 0 {
                        return Err(self.bad_output(format!("data file {key:?} started while another was open")));
                    }
                    let snapshot = &self.state.snapshot;
                    let expected = layout::data_file_key(
                        &snapshot.keys.data_prefix,
                        &snapshot.export_id,
                        self.shard.id,
                        progress.next_sequence,
                        &snapshot.data_file_extension,
                    );
                    if key != expected {
                        return Err(self.bad_output(format!("data file {key:?} should be {expected:?}")));
                    }
                    *file = Some(OpenFile { key, body: Vec::new(), items: page_items });
                    page_placed = true;
                }
                Output::Bytes(bytes) => match file.as_mut() {
                    Some(open) => open.body.extend_from_slice(&bytes),
                    None => return Err(self.bad_output("bytes came with no data file open".into())),
                },
                Output::FileFinished(facts) => {
                    let Some(open) = file.take() else {
                        return Err(self.bad_output("a data file finished that never started".into()));
                    };
                    if facts.key != open.key
                        || facts.item_count != open.items
                        || facts.size_bytes != open.body.len() as u64
                    {
                        return Err(self.bad_output(format!(
                            "data file {:?}: the encoder says {} items in {} bytes, its pages held {} items in {} bytes",
                            open.key,
                            facts.item_count,
                            facts.size_bytes,
                            open.items,
                            open.body.len()
                        )));
                    }
                    let Some(etag) = self.store.put(&open.key, &open.body, &Condition::Always)? else {
                        return Err(Error::Transient(format!(
                            "S3 PutObject {} wrote nothing",
                            self.store.locate(&open.key)
                        )));
                    };
                    progress.items += open.items;
                    progress.next_sequence = progress.next_sequence.saturating_add(1);
                    progress.files.push(ManifestEntry {
                        data_file_s3_key: open.key,
                        item_count: open.items,
                        md5_checksum: facts.md5,
                        etag,
                        stamp: None,
                    });
                    stored.files += 1;
                    stored.items += open.items;
                }
            }
        }
        if !page_placed && page_items > 0 {
            return Err(self.bad_output(format!("{page_items} items were encoded with no data file open")));
        }
        Ok(stored)
    }

    /// Saves the checkpoint, once this call is known to hold the lease still.
    fn save(&self, key: &str, progress: &ShardCheckpoint) -> Result<(), Error> {
        self.lease.check(self.store)?;
        self.store.save(key, progress, &Condition::Always).map(drop)
    }

    fn unreadable_page(&self, error: &ddb_export_guest::wit::WriteError) -> Error {
        Error::PermanentBadTable(format!(
            "shard {} of export {}: a page of table {} cannot be encoded: {}",
            self.shard.id,
            self.state.snapshot.export_id,
            self.state.snapshot.table_name,
            convert::write_error_text(error)
        ))
    }

    fn bad_output(&self, message: String) -> Error {
        Error::Transient(format!(
            "shard {} of export {}: the encoder broke its contract: {message}",
            self.shard.id, self.state.snapshot.export_id
        ))
    }
}

/// What one batch of output stored.
#[derive(Default)]
struct Stored {
    files: u32,
    items: u64,
}

impl std::ops::AddAssign for Stored {
    fn add_assign(&mut self, other: Self) {
        self.files += other.files;
        self.items += other.items;
    }
}

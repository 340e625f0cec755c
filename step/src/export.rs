//! A planned export, opened by `run-shard` or `finalize`: its saved run state read and checked
//! (the rules of the host's `ddb-export run-shard`: same state version, same export, planned
//! for fan-out, a full export in the default component's format), and the bucket set up as
//! planned (owner, encryption).

use std::collections::HashSet;

use ddb_export_state_format::export::{RunState, STATE_VERSION, ShardCheckpoint};
use ddb_export_state_format::keys;

use crate::io::{Bucket, Io, Store};
use crate::location::ExportLocation;
use crate::{ENCODER_COMPONENT_SHA256, Error};

/// A planned export, its state read.
pub struct Planned<'a, I: Io> {
    /// The export's bucket, written to as planned.
    pub store: Store<'a, I>,
    pub at: ExportLocation,
    pub state: RunState,
}

impl<'a, I: Io> Planned<'a, I> {
    /// Opens the export at `location` (as `plan` gave it), sending `expected_owner` on every
    /// call until the plan's own is known.
    pub fn open(io: &'a I, location: &str, expected_owner: Option<&str>) -> Result<Self, Error> {
        let at = ExportLocation::parse(location)?;
        let bucket =
            Bucket { name: at.bucket.clone(), expected_owner: expected_owner.map(str::to_string), kms_key_id: None };
        let store = Store { io, bucket };
        let state = read(&store, &at)?;
        // Written as planned: SSE-KMS under the planned key, to the planned owner's bucket.
        let bucket = Bucket {
            kms_key_id: state.snapshot.s3_sse_kms_key_id.clone(),
            expected_owner: state.snapshot.s3_bucket_owner.clone(),
            ..store.bucket
        };
        Ok(Self { store: Store { io, bucket }, at, state })
    }

    /// Whether the export is complete: its summary is written.
    pub fn is_complete(&self) -> Result<bool, Error> {
        Ok(self.store.get(&self.state.snapshot.keys.manifest_summary)?.is_some())
    }

    /// Shard `shard`'s checkpoint, checked; `None` when it has none yet. `file_keys` collects
    /// the data files of the checkpoints read so far: one recorded by two is refused.
    pub fn checkpoint(&self, shard: u32, file_keys: &mut HashSet<String>) -> Result<Option<ShardCheckpoint>, Error> {
        let key = keys::shard_key(&self.state.snapshot.keys.root, shard);
        match self.store.get(&key)? {
            Some(object) => self.read_checkpoint(shard, &object.body, file_keys).map(Some),
            None => Ok(None),
        }
    }

    /// Shard `shard`'s checkpoint from its stored bytes, checked as [`Self::checkpoint`] does.
    pub fn read_checkpoint(
        &self,
        shard: u32,
        body: &[u8],
        file_keys: &mut HashSet<String>,
    ) -> Result<ShardCheckpoint, Error> {
        let key = keys::shard_key(&self.state.snapshot.keys.root, shard);
        let saved: ShardCheckpoint =
            serde_json::from_slice(body).map_err(|e| self.store.corrupt(&key, e.to_string()))?;
        if saved.shard != shard {
            return Err(self.store.corrupt(&key, format!("it holds the checkpoint of shard {}", saved.shard)));
        }
        saved.check(&self.state.snapshot, file_keys).map_err(|message| self.store.corrupt(&key, message))?;
        Ok(saved)
    }

    /// `shard 3 of export <id>`, for messages.
    pub fn shard_scope(&self, shard: u32) -> String {
        format!("shard {shard} of export {}", self.at.export_id)
    }
}

/// Reads the export's run state and checks that this component can run its steps.
fn read<I: Io>(store: &Store<'_, I>, at: &ExportLocation) -> Result<RunState, Error> {
    let run_key = keys::run_key(&at.root);
    let Some((state, _)) = store.load::<RunState>(&run_key)? else {
        return Err(Error::PermanentBadDestination(format!(
            "{} does not exist: was the export planned (by `plan` or `ddb-export plan`)?",
            store.locate(&run_key)
        )));
    };
    let corrupt = |message: String| store.corrupt(&run_key, message);
    if state.version != STATE_VERSION {
        return Err(corrupt(format!("it is of state version {}, this component reads {STATE_VERSION}", state.version)));
    }
    if state.snapshot.export_id != at.export_id || state.snapshot.keys.root != at.root {
        return Err(corrupt(format!(
            "it is the state of export {} at {}",
            state.snapshot.export_id, state.snapshot.keys.root
        )));
    }
    if state.snapshot.s3_bucket != at.bucket {
        return Err(corrupt(format!("it was planned for bucket {:?}", state.snapshot.s3_bucket)));
    }
    if let Some(owner) = &store.bucket.expected_owner
        && state.snapshot.s3_bucket_owner.as_ref() != Some(owner)
    {
        return Err(Error::PermanentRefused(format!(
            "export {} was planned with s3-bucket-owner {}, not {owner:?}",
            at.export_id,
            state.snapshot.s3_bucket_owner.as_deref().map_or("(none)".into(), |o| format!("{o:?}"))
        )));
    }
    let refused =
        |why: &str| Error::PermanentRefused(format!("export {} {why}; run it with `ddb-export` instead", at.export_id));
    if !state.fanout {
        return Err(refused("was started by `ddb-export export`, not planned for fan-out"));
    }
    let fingerprint = &state.fingerprint;
    if fingerprint.consistent || fingerprint.incremental.is_some() || state.snapshot.incremental.is_some() {
        return Err(refused("is consistent or incremental, which fan-out does not run"));
    }
    if fingerprint.encoder.is_some() || state.snapshot.custom_format.is_some() {
        return Err(refused("is written by an encoder plugin, which this component does not link"));
    }
    match ENCODER_COMPONENT_SHA256 {
        Some(ours) if ours == fingerprint.component => Ok(state),
        Some(ours) => Err(refused(&format!(
            "was planned with component {}; this step component writes the bytes of component {ours}",
            fingerprint.component
        ))),
        None => Err(refused("cannot be checked: this build of the step component does not know its encoder's digest")),
    }
}

//! `plan`: a full export fixed at its destination for fan-out, as `ddb-export plan` fixes it
//! (the same checks of the settings, the same identity from the default component's
//! `snapshot` and `shard-plan` code, the same objects: the client token's record, `_started`,
//! the run state), writing no data file.
//!
//! Idempotent by the client token: the same token and settings find the export they started
//! (its plan again, or `completed`); other settings are refused, naming each difference. A new
//! export is started under the token's lease, so two calls with one token never start two.

use ddb_export_guest::wit::{ExportRequest, PlanError, PlanRequest as GuestPlanRequest, SnapshotError};
use ddb_export_model::settings::{self, DEFAULT_COMPRESSION_LEVEL, DEFAULT_TARGET_FILE_BYTES};
use ddb_export_model::{ExportFormat, Field, ScanFilter, TableInfo, layout};
use ddb_export_state_format::export::{Fingerprint, RunState, STATE_VERSION, TokenRecord};
use ddb_export_state_format::keys;

use crate::io::{AwsError, Bucket, Condition, Io, Store};
use crate::lease::Lease;
use crate::{ENCODER_COMPONENT_SHA256, Error, ExportPlan, PlanRequest, convert};

/// Lanes a plan from the table's size is made for, when the request does not say.
pub const DEFAULT_PARALLELISM: u32 = 8;
/// The largest data file this component writes: each is one PutObject, held in its memory.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Most lanes a plan is made for (the host's limit too).
const MAX_PARALLELISM: u32 = 256;

/// Plans `request`'s export, or finds the one its client token started.
pub fn run(io: &impl Io, request: &PlanRequest) -> Result<ExportPlan, Error> {
    let asked = Asked::of(request)?;
    let (info, region) = describe(io, &request.table)?;
    if let Some(filter) = &asked.filter {
        check_filter(io, &info, filter)?;
    }
    let store = Store {
        io,
        bucket: Bucket {
            name: request.s3_bucket.clone(),
            expected_owner: request.s3_bucket_owner.clone(),
            kms_key_id: request.s3_sse_kms_key_id.clone(),
        },
    };
    store.check()?;
    let fingerprint = asked.fingerprint(&info, request);
    let token = &request.client_token;
    if let Some(found) = find(&store, token, &fingerprint, false)? {
        return Ok(found);
    }
    // Nothing yet: start it under the token's lease, once no one else has meanwhile.
    let scope = format!("the export of client token {token:?}");
    let lease = Lease::acquire(&store, keys::token_lease_key(token), scope, None)?;
    let planned = match find(&store, token, &fingerprint, true) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => start(&store, request, &asked, &info, &region, fingerprint),
        Err(error) => Err(error),
    };
    lease.release(&store);
    planned
}

/// The request's settings, checked, with their defaults.
struct Asked {
    format: ExportFormat,
    target_file_bytes: u64,
    compression_level: u8,
    parallelism: u32,
    filter: Option<ScanFilter>,
}

impl Asked {
    fn of(request: &PlanRequest) -> Result<Self, Error> {
        let refused =
            |(field, message): (Field, String)| Error::PermanentRefused(in_request_names(format!("{field} {message}")));
        settings::check_table(&request.table).map_err(refused)?;
        settings::check_client_token(&request.client_token).map_err(refused)?;
        if let Some(segments) = request.segments {
            settings::check_segments(segments).map_err(refused)?;
        }
        let parallelism = request.parallelism.unwrap_or(DEFAULT_PARALLELISM);
        if !(1..=MAX_PARALLELISM).contains(&parallelism) {
            return Err(refused((Field::Parallelism, format!("{parallelism} is not between 1 and {MAX_PARALLELISM}"))));
        }
        let target_file_bytes = request.target_file_bytes.unwrap_or(DEFAULT_TARGET_FILE_BYTES);
        check_file_size(target_file_bytes)?;
        let compression_level = request.compression_level.unwrap_or(DEFAULT_COMPRESSION_LEVEL);
        settings::check_compression_level(compression_level).map_err(refused)?;
        if let Some(owner) = &request.s3_bucket_owner {
            settings::check_bucket_owner(owner).map_err(refused)?;
        }
        if let Some(key) = &request.s3_sse_kms_key_id {
            settings::check_kms_key_id(key).map_err(refused)?;
        }
        if request.s3_bucket.is_empty() {
            return Err(Error::PermanentRefused("s3-bucket is empty".into()));
        }
        let filter = match &request.filter {
            Some(filter) => scan_filter(filter).map_err(refused)?,
            None => None,
        };
        let format = match request.export_format {
            crate::ExportFormat::DynamodbJson => ExportFormat::DynamodbJson,
            crate::ExportFormat::Ion => ExportFormat::Ion,
        };
        Ok(Self { format, target_file_bytes, compression_level, parallelism, filter })
    }

    /// The settings that decide the export's bytes, as `ddb-export plan` records them (with the
    /// default component's digest: this component writes its bytes).
    fn fingerprint(&self, info: &TableInfo, request: &PlanRequest) -> Fingerprint {
        Fingerprint {
            table_arn: info.table_arn.clone(),
            table_id: info.table_id.clone(),
            format: self.format,
            segments: request.segments,
            target_file_bytes: self.target_file_bytes,
            compression_level: self.compression_level,
            bucket: request.s3_bucket.clone(),
            prefix: request.s3_prefix.clone(),
            bucket_owner: request.s3_bucket_owner.clone(),
            kms_key_id: request.s3_sse_kms_key_id.clone(),
            component: ENCODER_COMPONENT_SHA256.unwrap_or_default().to_string(),
            incremental: None,
            consistent: false,
            scan_filter: self.filter.clone(),
            encoder: None,
        }
    }
}

/// A data file this component writes is one PutObject, held in its memory: between 1 byte and
/// [`MAX_FILE_BYTES`] (not 0, "one file per shard", which has no bound).
pub fn check_file_size(target_file_bytes: u64) -> Result<(), Error> {
    if target_file_bytes == 0 {
        return Err(Error::PermanentRefused(format!(
            "target-file-bytes 0 (one data file per shard) cannot be written by the step component, which holds a \
             data file in memory: give a size from 1 to {MAX_FILE_BYTES}"
        )));
    }
    settings::check_target_file_bytes(target_file_bytes, MAX_FILE_BYTES)
        .map_err(|(field, message)| Error::PermanentRefused(in_request_names(format!("{field} {message}"))))
}

/// The request's filter in the model's terms, its names and values checked.
fn scan_filter(filter: &crate::ScanFilter) -> Result<Option<ScanFilter>, (Field, String)> {
    let filter = ScanFilter::from_request_parts(
        filter.filter_expression.as_deref(),
        filter.projection_expression.as_deref(),
        &filter.expression_attribute_names,
        &filter.expression_attribute_values,
    )
    .map_err(|why| (Field::ExpressionValues, why))?;
    if let Some(filter) = &filter {
        // Each value's type is DynamoDB's to judge (`check_filter`'s Scan).
        settings::check_filter(filter, |_| Ok(()))?;
    }
    Ok(filter)
}

/// A library field's name (`` `ExportRequest::segments` ``) in a message, as this component's
/// request spells it (`segments`).
fn in_request_names(message: String) -> String {
    let name = |field: Field| match field {
        Field::Table => "table",
        Field::ClientToken => "client-token",
        Field::Parallelism => "parallelism",
        Field::Segments => "segments",
        Field::TargetFileBytes => "target-file-bytes",
        Field::CompressionLevel => "compression-level",
        Field::Format => "export-format",
        Field::S3BucketOwner => "s3-bucket-owner",
        Field::S3SseKmsKeyId => "s3-sse-kms-key-id",
        Field::Target => "s3-bucket and s3-prefix",
        Field::ScanFilter | Field::Filter | Field::Projection => "filter",
        Field::ExpressionNames => "filter's expression-attribute-names",
        Field::ExpressionValues => "filter's expression-attribute-values",
        _ => "",
    };
    Field::ALL.iter().fold(message, |message, &field| match name(field) {
        "" => message,
        spelled => message.replace(&field.to_string(), spelled),
    })
}

/// DescribeTable, as the state records it, and the region that answered.
fn describe(io: &impl Io, table: &str) -> Result<(TableInfo, String), Error> {
    let facts = io.describe_table(table).map_err(|error| {
        let message = format!("DynamoDB DescribeTable of table {table}: {}", crate::io::describe(&error));
        match error {
            AwsError::Transient(_) => Error::Transient(message),
            AwsError::Refused(_) => Error::PermanentBadTable(message),
        }
    })?;
    let region = facts.region.clone();
    let info = convert::table_info(facts);
    if info.key_attributes.is_empty() {
        return Err(Error::PermanentBadTable(format!("table {table}'s description has no key schema")));
    }
    if region.is_empty() {
        return Err(Error::PermanentBadTable(format!("table {table} was described with no region")));
    }
    Ok((info, region))
}

/// DynamoDB checks an expression only when it runs it: a Scan of one item checks the filter
/// before anything is written.
fn check_filter(io: &impl Io, info: &TableInfo, filter: &ScanFilter) -> Result<(), Error> {
    let whole = ddb_export_model::Shard { id: 0, segment: 0, total_segments: 1 };
    let request = crate::io::scan_request(&info.table_name, &whole, None, Some(1), Some(filter));
    match io.scan(&request) {
        Ok(_) => Ok(()),
        Err(AwsError::Refused(message)) => Err(Error::PermanentBadTable(format!(
            "DynamoDB refused the filter of table {}: {message}",
            info.table_name
        ))),
        Err(error @ AwsError::Transient(_)) => Err(Error::Transient(format!(
            "DynamoDB Scan checking the filter of table {}: {}",
            info.table_name,
            crate::io::describe(&error)
        ))),
    }
}

/// The export the client token started, if any (with `clear`, under the token's lease: what a
/// start killed before it saved its state left is cleared, and `None` returned).
fn find<I: Io>(
    store: &Store<'_, I>,
    token: &str,
    fingerprint: &Fingerprint,
    clear: bool,
) -> Result<Option<ExportPlan>, Error> {
    let token_key = keys::token_key(token);
    let Some((record, _)) = store.load::<TokenRecord>(&token_key)? else { return Ok(None) };
    if record.version != STATE_VERSION || !layout::is_export_id(&record.export_id) {
        return Err(store.corrupt(
            &token_key,
            format!("it is of state version {} for export {:?}", record.version, record.export_id),
        ));
    }
    let root = layout::export_root(record.prefix.as_deref(), &record.export_id);
    let run_key = keys::run_key(&root);
    let Some((state, _)) = store.load::<RunState>(&run_key)? else {
        if clear {
            // Killed before its state was saved: `_started` is all it can have written.
            store.delete(&layout::export_keys(record.prefix.as_deref(), &record.export_id, false).started)?;
        }
        return Ok(None);
    };
    let corrupt = |message: String| store.corrupt(&run_key, message);
    if state.version != STATE_VERSION {
        return Err(corrupt(format!("it is of state version {}, this component reads {STATE_VERSION}", state.version)));
    }
    if state.snapshot.export_id != record.export_id || state.snapshot.keys.root != root {
        return Err(corrupt(format!(
            "it is the state of export {} at {}",
            state.snapshot.export_id, state.snapshot.keys.root
        )));
    }
    if state.snapshot.client_token != token {
        return Err(corrupt("the client token's record names an export another token started".into()));
    }
    let differences = state.fingerprint.differences(fingerprint);
    if !differences.is_empty() {
        return Err(Error::PermanentRefused(in_request_names(format!(
            "client-token {token:?} started export {} with other settings: {}",
            record.export_id,
            differences.join("; ")
        ))));
    }
    if !state.fanout {
        return Err(Error::PermanentRefused(format!(
            "client-token {token:?} started export {} with `ddb-export export`, which resumes it (run the same command again)",
            record.export_id
        )));
    }
    let completed = store.get(&state.snapshot.keys.manifest_summary)?.is_some();
    Ok(Some(plan_of(store, &state, completed)))
}

/// What `plan` returns for `state`.
fn plan_of<I: Io>(store: &Store<'_, I>, state: &RunState, completed: bool) -> ExportPlan {
    let snapshot = &state.snapshot;
    ExportPlan {
        export_arn: snapshot.export_arn.clone(),
        export_id: snapshot.export_id.clone(),
        export_location: store.locate(&snapshot.keys.root),
        table_arn: snapshot.table_arn.clone(),
        s3_bucket_owner: snapshot.s3_bucket_owner.clone(),
        shards: state.plan.shards.iter().map(|s| s.id).collect(),
        completed,
    }
}

/// Starts a new export: its identity and plan from the default component's own code, recorded
/// at the destination before any data file (the token's record, `_started`, the run state),
/// under the new export's lease.
fn start<I: Io>(
    store: &Store<'_, I>,
    request: &PlanRequest,
    asked: &Asked,
    info: &TableInfo,
    region: &str,
    fingerprint: Fingerprint,
) -> Result<ExportPlan, Error> {
    let table = convert::table_description(info);
    let snapshot = ddb_export_guest::snapshot::create(
        table.clone(),
        ExportRequest {
            s3_bucket: request.s3_bucket.clone(),
            s3_prefix: request.s3_prefix.clone(),
            s3_bucket_owner: request.s3_bucket_owner.clone(),
            s3_sse_algorithm: match request.s3_sse_kms_key_id {
                Some(_) => ddb_export_guest::wit::SseAlgorithm::Kms,
                None => ddb_export_guest::wit::SseAlgorithm::Aes256,
            },
            s3_sse_kms_key_id: request.s3_sse_kms_key_id.clone(),
            export_format: match asked.format {
                ExportFormat::DynamodbJson => ddb_export_guest::wit::ExportFormat::DynamodbJson,
                ExportFormat::Ion => ddb_export_guest::wit::ExportFormat::Ion,
            },
            client_token: request.client_token.clone(),
            start_time_ms: store.io.now_ms(),
            region: region.to_string(),
            incremental: None,
            custom_format: None,
        },
    )
    .map_err(|error| Error::PermanentRefused(format!("the export cannot be planned: {}", snapshot_error(&error))))?;
    let plan = ddb_export_guest::plan::create(
        &table,
        &GuestPlanRequest { segments: request.segments, parallelism: asked.parallelism },
    )
    .map_err(|error| {
        Error::PermanentRefused(format!("the export's shards cannot be planned: {}", plan_error(&error)))
    })?;
    let state = RunState {
        version: STATE_VERSION,
        fingerprint,
        snapshot: convert::snapshot_from_guest(snapshot),
        plan: convert::plan_from_guest(plan),
        fanout: true,
        table_key: info.key_attributes.clone(),
        table_schema: info.schema.clone(),
    };
    let root = &state.snapshot.keys.root;
    let scope = format!("export {}", state.snapshot.export_id);
    let lease = Lease::create(store, keys::export_lease_key(root), scope)?;
    let recorded = record(store, &state, &request.client_token);
    lease.release(store);
    recorded?;
    Ok(plan_of(store, &state, false))
}

/// Records a new export before any data file: the token's record first (a start killed from
/// here on is found again by its token), then `_started`, then the run state.
fn record<I: Io>(store: &Store<'_, I>, state: &RunState, token: &str) -> Result<(), Error> {
    let record = TokenRecord {
        version: STATE_VERSION,
        export_id: state.snapshot.export_id.clone(),
        prefix: state.snapshot.s3_prefix.clone(),
    };
    store.save(&keys::token_key(token), &record, &Condition::Always)?;
    store.put(&state.snapshot.keys.started, &[], &Condition::Always)?;
    store.save(&keys::run_key(&state.snapshot.keys.root), state, &Condition::Always).map(drop)
}

fn snapshot_error(error: &SnapshotError) -> String {
    match error {
        SnapshotError::InvalidTable(message)
        | SnapshotError::InvalidRequest(message)
        | SnapshotError::Other(message) => message.clone(),
        SnapshotError::UnsupportedFormat(_) => "the component does not write that export format".into(),
    }
}

fn plan_error(error: &PlanError) -> String {
    match error {
        PlanError::InvalidRequest(message) | PlanError::Other(message) => message.clone(),
    }
}

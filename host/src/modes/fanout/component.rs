//! Fan-out's steps run by the step component (`wit/step`, built from `step/`) instead of this
//! host's own code: `plan`, `run-shard` and `finalize --in-component`, their DynamoDB and S3
//! calls carried out by this host ([`crate::pipeline::step_io`]). The same component runs under
//! other engines; running it here proves an export can pass between the two kinds of worker,
//! as both read and write the same state.

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::Target;
use crate::model::Field;
use crate::model::step::{StepFailure, StepFinalizeRequest, StepPlan, StepPlanRequest, StepShardRequest, StepSummary};
use crate::pipeline::offload;
use crate::pipeline::step_io::NativeStepIo;
use crate::runtime::step::{StepComponent, StepIo};
use crate::runtime::{CacheDir, ComponentError, GuestLimits};

use crate::lifecycle::ExportRequest;

use super::{ExportPlan, PlanLocation, ShardReport};

/// How the step component is run: its sandbox's limits and compile cache.
#[derive(Debug, Clone)]
pub struct StepRun {
    pub limits: GuestLimits,
    pub cache: CacheDir,
}

/// How much one `run-shard` call may do: data files stored, milliseconds spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepBudget {
    pub max_data_files: Option<u32>,
    pub max_millis: Option<u64>,
}

/// Plans an export in the step component (`plan --in-component`): the same request and plan
/// as [`super::plan`]'s, for the full exports the component writes (S3, no plugin; a client
/// token is made when none is given, as `plan` makes one).
pub async fn plan(aws: &AwsClients, how: &StepRun, request: &ExportRequest) -> Result<ExportPlan, ExportError> {
    request.validate()?;
    let refused = |field, message: &str| Err(ExportError::InvalidArgument { field, message: message.into() });
    if request.resume.is_some() {
        return refused(Field::Resume, "a planned export resumes by running its unfinished shards again");
    }
    if request.incremental.is_some() || request.consistent() {
        let field = if request.consistent() { Field::Consistent } else { Field::Incremental };
        return refused(field, "is not available for fan-out (plan/run-shard/finalize); run `ddb-export export`");
    }
    let Target::S3 { bucket, prefix } = &request.target else {
        return refused(Field::Target, "the step component reaches S3 only; plan a directory's export without it");
    };
    let asked = StepPlanRequest {
        table: request.table.clone(),
        s3_bucket: bucket.clone(),
        s3_prefix: prefix.clone(),
        s3_bucket_owner: request.s3.expected_owner.clone(),
        s3_sse_kms_key_id: request.s3.kms_key_id.clone(),
        format: request.format(),
        client_token: request.client_token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        segments: request.segments,
        parallelism: Some(request.parallelism),
        target_file_bytes: request.target_file_bytes,
        compression_level: request.compression_level,
        filter: request.scan_filter.clone(),
    };
    let plan: StepPlan = call(aws, how, move |component, io| component.plan(io, &asked)).await?;
    Ok(ExportPlan {
        plan_version: super::PLAN_VERSION,
        export_arn: plan.export_arn,
        export_id: plan.export_id,
        export_location: plan.export_location,
        table_arn: plan.table_arn,
        s3_bucket_owner: plan.s3_bucket_owner,
        s3_sse_kms_key_id: request.s3.kms_key_id.clone(),
        shards: plan.shards,
        export_status: if plan.completed { "COMPLETED" } else { "IN_PROGRESS" }.into(),
    })
}

/// Runs shard `shard` of the export at `at` in the step component, until it is done or
/// `budget` is spent (`run-shard --in-component`). The report's status is `COMPLETED` (done by
/// this call), `ALREADY_COMPLETED` (done before it) or `IN_PROGRESS` (run it again).
pub async fn run_shard(
    aws: &AwsClients,
    how: &StepRun,
    at: &PlanLocation,
    shard: u32,
    budget: StepBudget,
) -> Result<ShardReport, ExportError> {
    let request = StepShardRequest {
        export_location: s3_location(at)?,
        expected_bucket_owner: at.expected_owner.clone(),
        shard,
        max_data_files: budget.max_data_files,
        max_millis: budget.max_millis,
        task: None,
    };
    let progress = call(aws, how, move |component, io| component.run_shard(io, &request)).await?;
    let status = match (progress.done, progress.data_files_this_call) {
        (true, 0) => "ALREADY_COMPLETED",
        (true, _) => "COMPLETED",
        (false, _) => "IN_PROGRESS",
    };
    Ok(ShardReport {
        export_arn: progress.export_arn,
        shard: progress.shard,
        status: status.into(),
        item_count: progress.item_count,
        data_files: progress.data_files.map(|n| n as usize),
    })
}

/// Finalizes the export at `at` in the step component (`finalize --in-component`).
pub async fn finalize(aws: &AwsClients, how: &StepRun, at: &PlanLocation) -> Result<StepSummary, ExportError> {
    let request = StepFinalizeRequest {
        export_location: s3_location(at)?,
        expected_bucket_owner: at.expected_owner.clone(),
        task: None,
    };
    call(aws, how, move |component, io| component.finalize(io, &request)).await
}

/// The export's `s3://` location; a directory's export is refused (a component reaches S3
/// only).
fn s3_location(at: &PlanLocation) -> Result<String, ExportError> {
    let Target::S3 { bucket, prefix } = &at.target else {
        return Err(ExportError::InvalidArgument {
            field: Field::Plan,
            message: "the step component reaches S3 only; a directory's export runs without --in-component".into(),
        });
    };
    Ok(format!("s3://{bucket}/{}", crate::model::layout::export_root(prefix.as_deref(), &at.export_id)))
}

/// Loads the step component and makes one call on a blocking thread, its imports carried out
/// by this host's clients.
async fn call<R: Send + 'static>(
    aws: &AwsClients,
    how: &StepRun,
    run: impl FnOnce(&StepComponent, Box<dyn StepIo>) -> Result<Result<R, StepFailure>, ComponentError> + Send + 'static,
) -> Result<R, ExportError> {
    let io = Box::new(NativeStepIo::new(aws.clone(), tokio::runtime::Handle::current()));
    let how = how.clone();
    let answer = offload::blocking(move || {
        let component = StepComponent::load(how.limits, &how.cache)?;
        Ok(run(&component, io)?)
    })
    .await?;
    answer.map_err(|failure| ExportError::Step { kind: failure.case(), message: failure.to_string() })
}

//! The settings of an export found again: a request that names an export it started before
//! (by `resume` or by its client token) takes the settings it leaves out from that export's
//! saved state, so that `--resume ID` alone carries the export on as it began.

use std::borrow::Cow;

use super::*;
use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::Destination;
use crate::state::checkpoint::{self, Fingerprint, RunState, TokenRecord};
use crate::state::keys;

/// Where the export a request names is, as its id and its root, when it names one: the
/// `resume` id, or the export its client token's record names (`None` until one is recorded).
pub(crate) async fn locate(
    destination: &Destination,
    request: &ExportRequest,
) -> Result<Option<(String, String)>, ExportError> {
    let (export_id, export_prefix) = match (&request.resume, &request.client_token) {
        (Some(resume), _) => {
            let id = resume_export_id(resume)
                .map_err(|message| ExportError::InvalidArgument { field: crate::model::Field::Resume, message })?;
            (id.to_string(), destination.prefix())
        }
        (None, Some(token)) => {
            let key = keys::token_key(token);
            match checkpoint::load::<TokenRecord>(destination, &key).await? {
                Some(record) => {
                    resume_export_id(&record.export_id)
                        .map_err(|message| ExportError::CorruptState { location: destination.locate(&key), message })?;
                    (record.export_id, record.prefix)
                }
                None => return Ok(None),
            }
        }
        (None, None) => return Ok(None),
    };
    let root = crate::model::layout::export_root(export_prefix.as_deref(), &export_id);
    Ok(Some((export_id, root)))
}

/// `request` as it is when it names no export it started before; else with the settings it
/// leaves out taken from that export ([`with_saved_settings`]), checked again.
pub(crate) async fn resolve_settings<'r>(
    aws: &AwsClients,
    request: &'r ExportRequest,
) -> Result<Cow<'r, ExportRequest>, ExportError> {
    if request.resume.is_none() && request.client_token.is_none() {
        return Ok(Cow::Borrowed(request));
    }
    let destination = Destination::open(&request.target, &aws.s3, &request.s3).await?;
    let resolved = with_saved_settings(&destination, request).await?;
    resolved.validate()?;
    Ok(Cow::Owned(resolved))
}

/// `request` with each setting it leaves out taken from the export it names, when that
/// export has saved state at `destination`; else `request` as it is. A setting it gives is
/// kept: the claim compares it with the saved one and refuses a difference, naming it.
pub(crate) async fn with_saved_settings(
    destination: &Destination,
    request: &ExportRequest,
) -> Result<ExportRequest, ExportError> {
    let Some((_, root)) = locate(destination, request).await? else { return Ok(request.clone()) };
    // Unreadable state is reported by the claim, which names what is wrong with it.
    match checkpoint::load::<RunState>(destination, &keys::run_key(&root)).await {
        Ok(Some(state)) => Ok(fill_in(request, &state.fingerprint)),
        Ok(None) | Err(ExportError::CorruptState { .. }) => Ok(request.clone()),
        Err(error) => Err(error),
    }
}

/// `request` with each setting it leaves out (`None`) set to `saved`'s.
pub(crate) fn fill_in(request: &ExportRequest, saved: &Fingerprint) -> ExportRequest {
    let mut filled = request.clone();
    filled.format.get_or_insert(saved.format);
    if filled.segments.is_none() {
        filled.segments = saved.segments;
    }
    if filled.s3.expected_owner.is_none() {
        filled.s3.expected_owner.clone_from(&saved.bucket_owner);
    }
    if filled.s3.kms_key_id.is_none() {
        filled.s3.kms_key_id.clone_from(&saved.kms_key_id);
    }
    filled.target_file_bytes.get_or_insert(saved.target_file_bytes);
    filled.compression_level.get_or_insert(saved.compression_level);
    if filled.incremental.is_none() {
        filled.incremental = saved.incremental;
    }
    filled.consistent.get_or_insert(saved.consistent);
    if filled.scan_filter.is_none() {
        filled.scan_filter.clone_from(&saved.scan_filter);
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::destination::Target;
    use crate::model::{ExportFormat, ExportViewType, IncrementalWindow};

    fn saved() -> Fingerprint {
        Fingerprint {
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders".into(),
            table_id: None,
            format: ExportFormat::Ion,
            segments: Some(4),
            target_file_bytes: 1000,
            compression_level: 1,
            bucket: "b".into(),
            prefix: None,
            bucket_owner: Some("123456789012".into()),
            kms_key_id: None,
            component: "c".into(),
            incremental: Some(IncrementalWindow { from_ms: 1, to_ms: None, view: ExportViewType::NewImage }),
            consistent: false,
            scan_filter: None,
            encoder: None,
        }
    }

    #[test]
    fn a_setting_left_out_is_the_saved_one_and_one_given_is_kept() {
        let request = ExportRequest::new("orders", Target::S3 { bucket: "b".into(), prefix: None });
        let filled = fill_in(&request, &saved());
        assert_eq!(filled.format, Some(ExportFormat::Ion));
        assert_eq!(filled.segments, Some(4));
        assert_eq!(filled.target_file_bytes, Some(1000));
        assert_eq!(filled.compression_level, Some(1));
        assert_eq!(filled.s3.expected_owner.as_deref(), Some("123456789012"));
        assert_eq!(filled.incremental, saved().incremental);
        assert_eq!(filled.consistent, Some(false));

        let given = ExportRequest { compression_level: Some(9), segments: Some(2), ..request };
        let filled = fill_in(&given, &saved());
        assert_eq!((filled.compression_level, filled.segments), (Some(9), Some(2)), "given settings stay");
    }
}

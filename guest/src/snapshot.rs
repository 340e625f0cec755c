//! Step 1: an export's identity and keys.

use crate::bindings::exports::ddb_export::core::snapshot::Error;
use crate::ids;
use crate::wit::{
    CustomFormat, ExportFormat, ExportKeys, ExportRequest, ExportSnapshot, SseAlgorithm, TableDescription,
};

/// Fixes the export's id, ARN, times and keys. Deterministic in its arguments.
pub fn create(table: TableDescription, request: ExportRequest) -> Result<ExportSnapshot, Error> {
    validate(&table, &request)?;
    let table_arn = ids::table_arn(&table.table_arn, &table.table_name, &request.region);
    let table_id = ids::table_id(table.table_id.as_deref(), &table_arn);
    let export_id = ids::export_id(request.start_time_ms, &request.client_token, &table_arn);
    let layout = ddb_export_data_files::layout::export_keys(
        request.s3_prefix.as_deref(),
        &export_id,
        request.incremental.is_some(),
    );
    let keys = ExportKeys {
        root: layout.root,
        started: layout.started,
        data_prefix: layout.data_prefix,
        manifest_files: layout.manifest_files,
        manifest_files_md5: layout.manifest_files_md5,
        manifest_summary: layout.manifest_summary,
        manifest_summary_md5: layout.manifest_summary_md5,
    };
    Ok(ExportSnapshot {
        export_arn: format!("{table_arn}/export/{export_id}"),
        export_id,
        table_arn,
        table_id,
        table_name: table.table_name,
        start_time_ms: request.start_time_ms,
        export_time_ms: request.start_time_ms,
        s3_bucket: request.s3_bucket,
        s3_prefix: request.s3_prefix,
        s3_bucket_owner: request.s3_bucket_owner,
        s3_sse_algorithm: request.s3_sse_algorithm,
        s3_sse_kms_key_id: request.s3_sse_kms_key_id,
        export_format: request.export_format,
        client_token: request.client_token,
        keys,
        data_file_extension: match (&request.custom_format, request.export_format) {
            (Some(custom), _) => custom.file_extension.clone(),
            (None, ExportFormat::DynamodbJson) => ddb_export_data_files::layout::JSON_EXTENSION.to_string(),
            (None, ExportFormat::Ion) => ddb_export_data_files::layout::ION_EXTENSION.to_string(),
        },
        incremental: request.incremental,
        custom_format: request.custom_format,
    })
}

fn validate(table: &TableDescription, request: &ExportRequest) -> Result<(), Error> {
    if table.table_name.is_empty() {
        return Err(Error::InvalidTable("the table description has an empty table name".into()));
    }
    if request.s3_bucket.is_empty() {
        return Err(Error::InvalidRequest("s3-bucket is empty".into()));
    }
    if let Some(prefix) = &request.s3_prefix
        && (prefix.is_empty() || prefix.starts_with('/') || prefix.ends_with('/'))
    {
        return Err(Error::InvalidRequest(format!(
            "s3-prefix {prefix:?} must be non-empty and must not start or end with '/'"
        )));
    }
    match (request.s3_sse_algorithm, &request.s3_sse_kms_key_id) {
        (SseAlgorithm::Aes256, Some(_)) => {
            return Err(Error::InvalidRequest("s3-sse-kms-key-id is only allowed with the kms algorithm".into()));
        }
        (SseAlgorithm::Kms, None) => {
            return Err(Error::InvalidRequest("the kms algorithm needs s3-sse-kms-key-id".into()));
        }
        _ => {}
    }
    if request.client_token.is_empty() {
        return Err(Error::InvalidRequest("client-token is empty".into()));
    }
    if let Some(spec) = &request.incremental
        && spec.export_from_time_ms >= spec.export_to_time_ms
    {
        return Err(Error::InvalidRequest(format!(
            "the incremental window [{}, {}) ms is empty: its start must be before its end",
            spec.export_from_time_ms, spec.export_to_time_ms
        )));
    }
    if let Some(custom) = &request.custom_format {
        if request.incremental.is_some() {
            return Err(Error::InvalidRequest("a custom-format is only for a full export".into()));
        }
        check_custom_format(custom).map_err(Error::InvalidRequest)?;
    }
    Ok(())
}

/// The rules `custom-format`'s fields follow (`wit/types.wit`): the extension goes into every
/// data file's key, the output format into the summary.
pub fn check_custom_format(custom: &CustomFormat) -> Result<(), String> {
    ddb_export_data_files::check_output_format(&custom.output_format)
        .and_then(|()| ddb_export_data_files::check_file_extension(&custom.file_extension))
        .map_err(|e| format!("custom-format: {e}"))
}

#[cfg(test)]
pub(crate) mod tests {
    //! Fixtures shared by the crate's unit tests.

    use super::*;
    use crate::wit::Billing;

    pub(crate) fn table() -> TableDescription {
        TableDescription {
            table_name: "orders".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders".into(),
            table_id: None,
            item_count: 0,
            table_size_bytes: 0,
            billing: Billing::OnDemand,
        }
    }

    pub(crate) fn request() -> ExportRequest {
        ExportRequest {
            s3_bucket: "bucket".into(),
            s3_prefix: Some("backups/daily".into()),
            s3_bucket_owner: None,
            s3_sse_algorithm: SseAlgorithm::Aes256,
            s3_sse_kms_key_id: None,
            export_format: ExportFormat::DynamodbJson,
            client_token: "token".into(),
            start_time_ms: 1_693_467_621_041,
            region: "us-east-1".into(),
            incremental: None,
            custom_format: None,
        }
    }

    #[test]
    fn keys_follow_the_aws_layout() {
        let snap = create(table(), request()).unwrap();
        let root = format!("backups/daily/AWSDynamoDB/{}", snap.export_id);
        assert_eq!(snap.keys.root, root);
        assert_eq!(snap.keys.started, format!("{root}/_started"));
        assert_eq!(snap.keys.data_prefix, format!("{root}/data/"));
        assert_eq!(snap.keys.manifest_summary, format!("{root}/manifest-summary.json"));
        assert_eq!(snap.keys.manifest_files_md5, format!("{root}/manifest-files.md5"));
        assert_eq!(snap.export_arn, format!("{}/export/{}", snap.table_arn, snap.export_id));
        assert_eq!(snap.table_id.len(), 36);
    }

    #[test]
    fn a_custom_format_names_the_extension_and_must_be_well_formed() {
        let custom = |output_format: &str, file_extension: &str| ExportRequest {
            custom_format: Some(CustomFormat {
                output_format: output_format.into(),
                file_extension: file_extension.into(),
            }),
            ..request()
        };
        let snapshot = create(table(), custom("CSV", "csv.gz")).unwrap();
        assert_eq!(snapshot.data_file_extension, "csv.gz");
        assert_eq!(snapshot.custom_format.unwrap().output_format, "CSV");
        for (format, extension) in [("csv", "csv"), ("", "csv"), ("CSV", ".csv"), ("CSV", "csv/x"), ("CSV", "")] {
            let error = create(table(), custom(format, extension)).unwrap_err();
            assert!(matches!(error, Error::InvalidRequest(_)), "{format} {extension}: {error:?}");
        }
    }

    #[test]
    fn the_data_file_extension_follows_the_format() {
        assert_eq!(create(table(), request()).unwrap().data_file_extension, "json.gz");
        let ion = create(table(), ExportRequest { export_format: ExportFormat::Ion, ..request() }).unwrap();
        assert_eq!(ion.data_file_extension, "ion.gz");
        assert_eq!(ion.export_format, ExportFormat::Ion);
    }

    #[test]
    fn an_incremental_export_writes_its_data_to_the_shared_folder() {
        let spec = crate::wit::IncrementalExportSpecification {
            export_from_time_ms: 1,
            export_to_time_ms: 2,
            export_view_type: crate::wit::ExportViewType::NewImage,
        };
        let snap = create(table(), ExportRequest { incremental: Some(spec), ..request() }).unwrap();
        assert_eq!(snap.keys.data_prefix, "backups/daily/AWSDynamoDB/data/");
        assert_eq!(snap.keys.root, format!("backups/daily/AWSDynamoDB/{}", snap.export_id));
        assert!(snap.incremental.is_some_and(|s| (s.export_from_time_ms, s.export_to_time_ms) == (1, 2)));
        let root = create(table(), ExportRequest { incremental: Some(spec), s3_prefix: None, ..request() }).unwrap();
        assert_eq!(root.keys.data_prefix, "AWSDynamoDB/data/");
        let empty = crate::wit::IncrementalExportSpecification { export_to_time_ms: 1, ..spec };
        assert!(matches!(
            create(table(), ExportRequest { incremental: Some(empty), ..request() }),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn no_prefix_writes_at_the_root() {
        let snap = create(table(), ExportRequest { s3_prefix: None, ..request() }).unwrap();
        assert!(snap.keys.root.starts_with("AWSDynamoDB/"));
    }

    #[test]
    fn refuses_bad_requests() {
        let bad = [
            ExportRequest { s3_bucket: String::new(), ..request() },
            ExportRequest { s3_prefix: Some("/x".into()), ..request() },
            ExportRequest { s3_prefix: Some("x/".into()), ..request() },
            ExportRequest { s3_sse_algorithm: SseAlgorithm::Kms, ..request() },
            ExportRequest { s3_sse_kms_key_id: Some("k".into()), ..request() },
            ExportRequest { client_token: String::new(), ..request() },
        ];
        for request in bad {
            assert!(matches!(create(table(), request), Err(Error::InvalidRequest(_))));
        }
    }
}

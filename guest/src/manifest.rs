//! Step 3b: `manifest-files.json`, `manifest-summary.json` and their `.md5` files.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde::Serialize;

use crate::bindings::exports::ddb_export::core::write::Error;
use crate::wit::{ExportFormat, ExportSnapshot, ExportTotals, ExportViewType, ManifestEntry, Object, SseAlgorithm};
use ddb_export_data_files::summary::{
    FULL_EXPORT_VERSION, INCREMENTAL_EXPORT, INCREMENTAL_EXPORT_VERSION, ManifestSummary,
};

/// One line of `manifest-files.json`; field order is AWS's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileLine<'a> {
    item_count: u64,
    md5_checksum: &'a str,
    etag: &'a str,
    data_file_s3_key: &'a str,
}

/// The four manifest objects, in the order they must be written: the summary last, after its
/// `.md5`, so that a summary is never there unless everything else is.
pub fn build(snapshot: &ExportSnapshot, files: &[ManifestEntry], totals: &ExportTotals) -> Result<Vec<Object>, Error> {
    check(snapshot, files, totals)?;
    let mut listing = Vec::new();
    for entry in files {
        let line = FileLine {
            item_count: entry.item_count,
            md5_checksum: &entry.md5_checksum,
            etag: &entry.etag,
            data_file_s3_key: &entry.data_file_s3_key,
        };
        serde_json::to_writer(&mut listing, &line).map_err(|e| Error::Other(e.to_string()))?;
        listing.push(b'\n');
    }
    let s3_sse_algorithm = match snapshot.s3_sse_algorithm {
        SseAlgorithm::Aes256 => "AES256",
        SseAlgorithm::Kms => "KMS",
    };
    let output_format = match (&snapshot.custom_format, snapshot.export_format) {
        (Some(custom), _) => custom.output_format.as_str(),
        (None, ExportFormat::DynamodbJson) => "DYNAMODB_JSON",
        (None, ExportFormat::Ion) => "ION",
    };
    let time = ddb_export_data_files::summary::timestamp;
    let mut summary = ManifestSummary {
        version: Some(FULL_EXPORT_VERSION.into()),
        export_arn: snapshot.export_arn.clone(),
        start_time: Some(time(snapshot.start_time_ms)),
        end_time: Some(time(totals.end_time_ms)),
        table_arn: Some(snapshot.table_arn.clone()),
        table_id: Some(snapshot.table_id.clone()),
        export_time: Some(time(snapshot.export_time_ms)),
        s3_bucket: Some(snapshot.s3_bucket.clone()),
        s3_prefix: snapshot.s3_prefix.clone(),
        s3_sse_algorithm: Some(s3_sse_algorithm.into()),
        s3_sse_kms_key_id: snapshot.s3_sse_kms_key_id.clone(),
        manifest_files_s3_key: snapshot.keys.manifest_files.clone(),
        billed_size_bytes: Some(totals.billed_size_bytes),
        item_count: totals.item_count,
        output_format: output_format.into(),
        output_view: None,
        export_type: None,
        export_from_time: None,
        export_to_time: None,
    };
    if let Some(spec) = &snapshot.incremental {
        summary = ManifestSummary {
            version: Some(INCREMENTAL_EXPORT_VERSION.into()),
            export_time: None,
            export_from_time: Some(time(spec.export_from_time_ms)),
            export_to_time: Some(time(spec.export_to_time_ms)),
            output_view: Some(
                match spec.export_view_type {
                    ExportViewType::NewImage => "NEW_IMAGE",
                    ExportViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
                }
                .into(),
            ),
            export_type: Some(INCREMENTAL_EXPORT.into()),
            ..summary
        };
    }
    let summary = summary.to_bytes();
    let keys = &snapshot.keys;
    let listing_md5 = md5_base64(&listing);
    let summary_md5 = md5_base64(&summary);
    Ok(vec![
        Object { key: keys.manifest_files.clone(), body: listing },
        Object { key: keys.manifest_files_md5.clone(), body: listing_md5 },
        Object { key: keys.manifest_summary_md5.clone(), body: summary_md5 },
        Object { key: keys.manifest_summary.clone(), body: summary },
    ])
}

fn md5_base64(bytes: &[u8]) -> Vec<u8> {
    STANDARD.encode(Md5::digest(bytes)).into_bytes()
}

/// Refuses entries that cannot belong to this export.
fn check(snapshot: &ExportSnapshot, files: &[ManifestEntry], totals: &ExportTotals) -> Result<(), Error> {
    let mut sum = 0u64;
    for entry in files {
        if !entry.data_file_s3_key.starts_with(&snapshot.keys.data_prefix) {
            return Err(Error::Other(format!(
                "data file {:?} is not under this export's data prefix {:?}",
                entry.data_file_s3_key, snapshot.keys.data_prefix
            )));
        }
        sum = sum.saturating_add(entry.item_count);
    }
    if sum != totals.item_count {
        return Err(Error::Other(format!("the data files hold {sum} items but the totals say {}", totals.item_count)));
    }
    if totals.end_time_ms < snapshot.start_time_ms {
        return Err(Error::Other("the export cannot end before it started".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot;
    use crate::wit::{ExportRequest, TableDescription};

    fn snapshot() -> ExportSnapshot {
        let table = TableDescription {
            table_id: Some("3f9c1a2e-0000-4000-8000-000000000001".into()),
            ..snapshot::tests::table()
        };
        let request = ExportRequest { s3_prefix: Some("p".into()), ..snapshot::tests::request() };
        snapshot::create(table, request).unwrap()
    }

    #[test]
    fn writes_aws_key_order_and_md5_files() {
        let snap = snapshot();
        let entry = ManifestEntry {
            data_file_s3_key: format!("{}abc.json.gz", snap.keys.data_prefix),
            item_count: 2,
            md5_checksum: "bWQ1".into(),
            etag: "e".into(),
        };
        let totals = ExportTotals { end_time_ms: 1_693_467_622_000, item_count: 2, billed_size_bytes: 0 };
        let objects = build(&snap, std::slice::from_ref(&entry), &totals).unwrap();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                &snap.keys.manifest_files,
                &snap.keys.manifest_files_md5,
                &snap.keys.manifest_summary_md5,
                &snap.keys.manifest_summary
            ]
        );
        let listing = String::from_utf8(objects[0].body.clone()).unwrap();
        assert_eq!(
            listing,
            format!(
                "{{\"itemCount\":2,\"md5Checksum\":\"bWQ1\",\"etag\":\"e\",\"dataFileS3Key\":\"{}\"}}\n",
                entry.data_file_s3_key
            )
        );
        assert_eq!(objects[1].body, md5_base64(listing.as_bytes()));
        let summary = String::from_utf8(objects[3].body.clone()).unwrap();
        let expected = format!(
            concat!(
                r#"{{"version":"2020-06-30","exportArn":"{arn}","startTime":"2023-08-31T07:40:21.041Z","#,
                r#""endTime":"2023-08-31T07:40:22.000Z","tableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders","#,
                r#""tableId":"3f9c1a2e-0000-4000-8000-000000000001","exportTime":"2023-08-31T07:40:21.041Z","#,
                r#""s3Bucket":"bucket","s3Prefix":"p","s3SseAlgorithm":"AES256","s3SseKmsKeyId":null,"#,
                r#""manifestFilesS3Key":"{files}","billedSizeBytes":0,"itemCount":2,"outputFormat":"DYNAMODB_JSON"}}"#
            ),
            arn = snap.export_arn,
            files = snap.keys.manifest_files
        );
        assert_eq!(summary, expected);
        assert_eq!(objects[2].body, md5_base64(summary.as_bytes()));
    }

    #[test]
    fn an_ion_or_plugin_export_says_so_in_its_summary() {
        let custom = crate::wit::CustomFormat { output_format: "CSV".into(), file_extension: "csv.gz".into() };
        let request = ExportRequest { custom_format: Some(custom), ..snapshot::tests::request() };
        let snap = snapshot::create(snapshot::tests::table(), request).unwrap();
        let totals = ExportTotals { end_time_ms: snap.start_time_ms, item_count: 0, billed_size_bytes: 0 };
        let summary = String::from_utf8(build(&snap, &[], &totals).unwrap()[3].body.clone()).unwrap();
        assert!(summary.ends_with(r#","itemCount":0,"outputFormat":"CSV"}"#), "{summary}");

        let request = ExportRequest { export_format: ExportFormat::Ion, ..snapshot::tests::request() };
        let snap = snapshot::create(snapshot::tests::table(), request).unwrap();
        let entry = ManifestEntry {
            data_file_s3_key: format!("{}abc.ion.gz", snap.keys.data_prefix),
            item_count: 1,
            md5_checksum: String::new(),
            etag: String::new(),
        };
        let totals = ExportTotals { end_time_ms: snap.start_time_ms, item_count: 1, billed_size_bytes: 0 };
        let objects = build(&snap, &[entry], &totals).unwrap();
        let summary = String::from_utf8(objects[3].body.clone()).unwrap();
        assert!(summary.ends_with(r#","itemCount":1,"outputFormat":"ION"}"#), "{summary}");
    }

    #[test]
    fn an_incremental_export_has_the_incremental_summary() {
        let spec = crate::wit::IncrementalExportSpecification {
            export_from_time_ms: 1_693_400_000_000,
            export_to_time_ms: 1_693_467_000_000,
            export_view_type: ExportViewType::NewAndOldImages,
        };
        let request = ExportRequest { incremental: Some(spec), ..snapshot::tests::request() };
        let snap = snapshot::create(snapshot::tests::table(), request).unwrap();
        let entry = ManifestEntry {
            data_file_s3_key: format!("{}abc.json.gz", snap.keys.data_prefix),
            item_count: 1,
            md5_checksum: "bWQ1".into(),
            etag: "e".into(),
        };
        assert!(entry.data_file_s3_key.starts_with("backups/daily/AWSDynamoDB/data/"));
        let totals = ExportTotals { end_time_ms: 1_693_467_622_000, item_count: 1, billed_size_bytes: 0 };
        let objects = build(&snap, &[entry], &totals).unwrap();
        let summary = String::from_utf8(objects[3].body.clone()).unwrap();
        let expected = format!(
            concat!(
                r#"{{"version":"2023-08-01","exportArn":"{arn}","startTime":"2023-08-31T07:40:21.041Z","#,
                r#""endTime":"2023-08-31T07:40:22.000Z","tableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders","#,
                r#""tableId":"{id}","exportFromTime":"2023-08-30T12:53:20.000Z","exportToTime":"2023-08-31T07:30:00.000Z","#,
                r#""s3Bucket":"bucket","s3Prefix":"backups/daily","s3SseAlgorithm":"AES256","s3SseKmsKeyId":null,"#,
                r#""manifestFilesS3Key":"{files}","billedSizeBytes":0,"itemCount":1,"outputFormat":"DYNAMODB_JSON","#,
                r#""outputView":"NEW_AND_OLD_IMAGES","exportType":"INCREMENTAL_EXPORT"}}"#
            ),
            arn = snap.export_arn,
            id = snap.table_id,
            files = snap.keys.manifest_files
        );
        assert_eq!(summary, expected);
        assert_eq!(objects[2].body, md5_base64(summary.as_bytes()));
    }

    #[test]
    fn refuses_entries_that_do_not_add_up_or_belong_elsewhere() {
        let snap = snapshot();
        let entry = ManifestEntry {
            data_file_s3_key: format!("{}a.json.gz", snap.keys.data_prefix),
            item_count: 2,
            md5_checksum: String::new(),
            etag: String::new(),
        };
        let totals = ExportTotals { end_time_ms: snap.start_time_ms, item_count: 3, billed_size_bytes: 0 };
        assert!(build(&snap, std::slice::from_ref(&entry), &totals).is_err());
        let stray = ManifestEntry { data_file_s3_key: "elsewhere/a.json.gz".into(), ..entry };
        let totals = ExportTotals { item_count: 2, ..totals };
        assert!(build(&snap, &[stray], &totals).is_err());
    }
}

//! Checks of what a component hands back. A component is code we did not necessarily write
//! (`--component`): nothing it returns reaches storage unchecked.

use std::collections::{HashMap, HashSet};

use ddb_export_model::layout::{self, ExportKeys};
use ddb_export_model::summary::{self, ManifestSummary};
use ddb_export_model::{
    CustomFormat, ExportFormat, ExportTotals, ManifestEntry, ShardPlan, Snapshot, SnapshotRequest, StoredObject,
    TableInfo, checksum,
};

/// Most segments an export may have.
const MAX_SEGMENTS: usize = ddb_export_model::MAX_SEGMENTS as usize;

/// The snapshot must echo the request, and its keys must follow AWS's layout under the prefix.
pub fn snapshot(table: &TableInfo, request: &SnapshotRequest, s: &Snapshot) -> Result<(), String> {
    let echoes = [
        ("s3-bucket", s.s3_bucket == request.s3_bucket),
        ("s3-prefix", s.s3_prefix == request.s3_prefix),
        ("s3-bucket-owner", s.s3_bucket_owner == request.s3_bucket_owner),
        ("s3-sse-algorithm", s.s3_sse_algorithm == request.s3_sse_algorithm),
        ("s3-sse-kms-key-id", s.s3_sse_kms_key_id == request.s3_sse_kms_key_id),
        ("export-format", s.export_format == request.export_format),
        ("client-token", s.client_token == request.client_token),
        ("start-time-ms", s.start_time_ms == request.start_time_ms),
        ("table-name", s.table_name == table.table_name),
        ("incremental", s.incremental == request.incremental),
        ("custom-format", s.custom_format == request.custom_format),
    ];
    if let Some((field, _)) = echoes.iter().find(|(_, same)| !same) {
        return Err(format!("the snapshot's {field} differs from the request's"));
    }
    if !layout::is_export_id(&s.export_id) || s.export_id[..14] != format!("{:014}", s.start_time_ms) {
        return Err(format!("export id {:?} is not `<start time: 14 digits>-<8 lowercase hex>`", s.export_id));
    }
    if !(s.start_time_ms..=s.start_time_ms + MAX_EXPORT_TIME_LAG_MS).contains(&s.export_time_ms) {
        return Err(format!(
            "export time {} is not within a day after the start {}",
            s.export_time_ms, s.start_time_ms
        ));
    }
    if !is_table_arn(&s.table_arn, &s.table_name) {
        return Err(format!(
            "table ARN {:?} is not arn:<partition>:dynamodb:<region>:<account>:table/<name>",
            s.table_arn
        ));
    }
    if !is_uuid(&s.table_id) {
        return Err(format!("table id {:?} is not a UUID", s.table_id));
    }
    if s.export_arn != format!("{}/export/{}", s.table_arn, s.export_id) {
        return Err(format!("export ARN {:?} is not `<table-arn>/export/<export-id>`", s.export_arn));
    }
    let want = layout::export_keys(s.s3_prefix.as_deref(), &s.export_id, s.incremental.is_some());
    let k = &s.keys;
    let ExportKeys {
        root,
        started,
        data_prefix,
        manifest_files,
        manifest_files_md5,
        manifest_summary,
        manifest_summary_md5,
    } = &want;
    let expected = [
        (&k.root, root),
        (&k.started, started),
        (&k.data_prefix, data_prefix),
        (&k.manifest_files, manifest_files),
        (&k.manifest_files_md5, manifest_files_md5),
        (&k.manifest_summary, manifest_summary),
        (&k.manifest_summary_md5, manifest_summary_md5),
    ];
    if let Some((got, want)) = expected.iter().find(|(got, want)| got != want) {
        return Err(format!("key {got:?} should be {want:?}"));
    }
    let expected_extension = match (&s.custom_format, s.export_format) {
        (Some(custom), _) => custom.file_extension.as_str(),
        (None, ExportFormat::DynamodbJson) => layout::JSON_EXTENSION,
        (None, ExportFormat::Ion) => layout::ION_EXTENSION,
    };
    if s.data_file_extension != expected_extension {
        return Err(format!("data file extension {:?} should be {expected_extension:?}", s.data_file_extension));
    }
    Ok(())
}

/// A plugin's format must be usable in every data file's key and in the summary.
pub fn custom_format(custom: &CustomFormat) -> Result<(), String> {
    ddb_export_data_files::check_output_format(&custom.output_format)?;
    ddb_export_data_files::check_file_extension(&custom.file_extension)
}

/// How far after the start an export's point in time may be (a consistent snapshot's cut).
const MAX_EXPORT_TIME_LAG_MS: u64 = 24 * 60 * 60 * 1000;

fn is_table_arn(arn: &str, table_name: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "dynamodb", region, account, resource]
        if !partition.is_empty() && !region.is_empty()
            && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("table/") == Some(table_name))
}

/// A data file's key: `<data-prefix><26 characters of [a-z2-7]>.<extension>`.
pub fn data_file_key(snapshot: &Snapshot, key: &str) -> Result<(), String> {
    layout::check_data_file_key(&snapshot.keys.data_prefix, &snapshot.data_file_extension, key)
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The plan must cover segments `0..total` exactly once, with dense ids, and honour an
/// explicit segment count.
pub fn plan(plan: &ShardPlan, requested: Option<u32>) -> Result<(), String> {
    let count = plan.shards.len();
    if count == 0 || count > MAX_SEGMENTS {
        return Err(format!("the plan has {count} shards; it must have 1 to {MAX_SEGMENTS}"));
    }
    if let Some(requested) = requested
        && count != requested as usize
    {
        return Err(format!("{requested} segments were requested but the plan has {count}"));
    }
    let mut seen = vec![false; count];
    for (position, shard) in plan.shards.iter().enumerate() {
        if shard.id as usize != position {
            return Err(format!("shard at position {position} has id {}", shard.id));
        }
        if shard.total_segments as usize != count {
            return Err(format!(
                "shard {} says {} total segments in a plan of {count}",
                shard.id, shard.total_segments
            ));
        }
        let segment = shard.segment as usize;
        if segment >= count || std::mem::replace(&mut seen[segment], true) {
            return Err(format!("segment {segment} is out of range or planned twice"));
        }
    }
    Ok(())
}

/// The manifests must be the four expected objects, in order, and say what the host stored.
pub fn manifests(
    snapshot: &Snapshot,
    files: &[ManifestEntry],
    totals: &ExportTotals,
    objects: &[StoredObject],
) -> Result<(), String> {
    let k = &snapshot.keys;
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let expected = [&k.manifest_files, &k.manifest_files_md5, &k.manifest_summary_md5, &k.manifest_summary];
    if keys != expected {
        return Err(format!("expected the objects {expected:?} in that order, got {keys:?}"));
    }
    let listing = std::str::from_utf8(&objects[0].body).map_err(|_| "manifest-files.json is not UTF-8".to_string())?;
    let stored: HashMap<&str, &ManifestEntry> = files.iter().map(|f| (f.data_file_s3_key.as_str(), f)).collect();
    let mut listed = HashSet::new();
    for line in listing.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("manifest-files.json has a line that is not JSON: {e}"))?;
        let key = value["dataFileS3Key"].as_str().ok_or("a manifest-files.json line has no dataFileS3Key")?;
        let entry =
            stored.get(key).ok_or_else(|| format!("manifest-files.json lists {key:?}, which was not stored"))?;
        if value["itemCount"].as_u64() != Some(entry.item_count)
            || value["md5Checksum"].as_str() != Some(entry.md5_checksum.as_str())
            || value["etag"].as_str() != Some(entry.etag.as_str())
        {
            return Err(format!("manifest-files.json misstates the facts of {key:?}"));
        }
        listed.insert(key.to_string());
    }
    if listed.len() != files.len() || listing.lines().count() != files.len() {
        return Err(format!(
            "manifest-files.json lists {} files, but {} were stored",
            listing.lines().count(),
            files.len()
        ));
    }
    let summary = ManifestSummary::parse(&objects[3].body).map_err(|e| format!("manifest-summary.json: {e}"))?;
    let claims = [
        ("itemCount", summary.item_count == totals.item_count),
        ("exportArn", summary.export_arn == snapshot.export_arn),
        ("manifestFilesS3Key", summary.manifest_files_s3_key == k.manifest_files),
        ("s3Bucket", summary.s3_bucket.as_deref() == Some(snapshot.s3_bucket.as_str())),
        ("outputFormat", summary.output_format == snapshot.output_format()),
    ];
    if let Some((field, _)) = claims.iter().find(|(_, ok)| !ok) {
        return Err(format!("manifest-summary.json has a wrong {field}"));
    }
    let kind = match &snapshot.incremental {
        None => [
            ("version", summary.version.as_deref() == Some(summary::FULL_EXPORT_VERSION)),
            ("exportType", summary.export_type.is_none()),
            ("exportTime", summary.export_time.is_some()),
            ("outputView", summary.output_view.is_none()),
        ],
        Some(spec) => [
            ("version", summary.version.as_deref() == Some(summary::INCREMENTAL_EXPORT_VERSION)),
            ("exportType", summary.export_type.as_deref() == Some(summary::INCREMENTAL_EXPORT)),
            (
                "exportFromTime or exportToTime",
                summary.export_time.is_none()
                    && summary.export_from_time == Some(summary::timestamp(spec.export_from_time_ms))
                    && summary.export_to_time == Some(summary::timestamp(spec.export_to_time_ms)),
            ),
            ("outputView", summary.output_view.as_deref() == Some(spec.export_view_type.aws_name())),
        ],
    };
    if let Some((field, _)) = kind.iter().find(|(_, ok)| !ok) {
        let export = if snapshot.incremental.is_some() { "an incremental" } else { "a full" };
        return Err(format!("manifest-summary.json has a wrong {field} for {export} export"));
    }
    for (body, md5) in [(&objects[0].body, &objects[1].body), (&objects[3].body, &objects[2].body)] {
        if *md5 != checksum::md5_base64(body).into_bytes() {
            return Err("a .md5 file does not hold the base64 MD5 of its manifest".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ddb_export_model::{Billing, ExportViewType, IncrementalSpec, Shard, SseAlgorithm};

    const START: u64 = 1_693_467_621_041;
    const ID: &str = "01693467621041-a1b2c3d4";

    fn table() -> TableInfo {
        TableInfo {
            table_name: "orders".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders".into(),
            table_id: Some("12345678-1234-1234-1234-123456789012".into()),
            item_count: 0,
            table_size_bytes: 0,
            billing: Billing::OnDemand,
            key_attributes: vec!["pk".into()],
            stream: None,
            schema: None,
        }
    }

    fn request() -> SnapshotRequest {
        SnapshotRequest {
            s3_bucket: "bucket".into(),
            s3_prefix: Some("p".into()),
            s3_bucket_owner: None,
            s3_sse_algorithm: SseAlgorithm::Aes256,
            s3_sse_kms_key_id: None,
            export_format: ExportFormat::DynamodbJson,
            client_token: "token".into(),
            start_time_ms: START,
            region: "us-east-1".into(),
            incremental: None,
            custom_format: None,
        }
    }

    fn snapshot() -> Snapshot {
        let keys = layout::export_keys(Some("p"), ID, false);
        let table = table();
        Snapshot {
            export_id: ID.into(),
            export_arn: format!("{}/export/{ID}", table.table_arn),
            table_arn: table.table_arn,
            table_id: table.table_id.unwrap_or_default(),
            table_name: table.table_name,
            start_time_ms: START,
            export_time_ms: START,
            s3_bucket: "bucket".into(),
            s3_prefix: Some("p".into()),
            s3_bucket_owner: None,
            s3_sse_algorithm: SseAlgorithm::Aes256,
            s3_sse_kms_key_id: None,
            export_format: ExportFormat::DynamodbJson,
            client_token: "token".into(),
            keys,
            data_file_extension: "json.gz".into(),
            incremental: None,
            custom_format: None,
        }
    }

    #[test]
    fn a_snapshot_must_echo_the_request_and_follow_the_layout() {
        assert_eq!(snapshot_of(&snapshot()), Ok(()));
        let wrong: [(Snapshot, &str); 8] = [
            (Snapshot { s3_bucket: "other".into(), ..snapshot() }, "s3-bucket differs"),
            (Snapshot { client_token: "other".into(), ..snapshot() }, "client-token differs"),
            (Snapshot { export_id: "01693467621041-A1B2C3D4".into(), ..snapshot() }, "is not `<start time"),
            (Snapshot { export_time_ms: START + 25 * 60 * 60 * 1000, ..snapshot() }, "within a day"),
            (Snapshot { table_id: "not-a-uuid".into(), ..snapshot() }, "is not a UUID"),
            (Snapshot { export_arn: "arn:x".into(), ..snapshot() }, "export ARN"),
            (Snapshot { data_file_extension: "ion.gz".into(), ..snapshot() }, "extension"),
            (
                Snapshot {
                    keys: ddb_export_model::ExportKeys { started: "p/AWSDynamoDB/_started".into(), ..snapshot().keys },
                    ..snapshot()
                },
                "should be",
            ),
        ];
        for (s, words) in wrong {
            let refused = snapshot_of(&s);
            assert!(refused.as_ref().is_err_and(|m| m.contains(words)), "{words}: {refused:?}");
        }
        // An incremental export's data files are in the folder every one under the prefix shares.
        let spec = IncrementalSpec {
            export_from_time_ms: START - 1000,
            export_to_time_ms: START,
            export_view_type: ExportViewType::NewImage,
        };
        let incremental_request = SnapshotRequest { incremental: Some(spec), ..request() };
        let mut incremental = Snapshot { incremental: Some(spec), ..snapshot() };
        assert!(snapshot_fn(&incremental_request, &incremental).is_err(), "its own data/ is wrong");
        incremental.keys.data_prefix = "p/AWSDynamoDB/data/".into();
        assert_eq!(snapshot_fn(&incremental_request, &incremental), Ok(()));
    }

    fn snapshot_of(s: &Snapshot) -> Result<(), String> {
        snapshot_fn(&request(), s)
    }

    fn snapshot_fn(request: &SnapshotRequest, s: &Snapshot) -> Result<(), String> {
        super::snapshot(&table(), request, s)
    }

    #[test]
    fn a_data_file_key_is_its_folder_26_base32_characters_and_the_extension() {
        let s = snapshot();
        let good = format!("{}{}.json.gz", s.keys.data_prefix, "a".repeat(26));
        assert_eq!(data_file_key(&s, &good), Ok(()));
        for bad in [
            format!("{}{}.json.gz", s.keys.data_prefix, "a".repeat(25)),
            format!("{}{}.json.gz", s.keys.data_prefix, "A".repeat(26)),
            format!("{}{}.ion.gz", s.keys.data_prefix, "a".repeat(26)),
            format!("elsewhere/{}.json.gz", "a".repeat(26)),
        ] {
            assert!(data_file_key(&s, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plan_covers_each_segment_once() {
        let plan_of = |shards: Vec<(u32, u32, u32)>| ShardPlan {
            shards: shards
                .into_iter()
                .map(|(id, segment, total_segments)| Shard { id, segment, total_segments })
                .collect(),
            rationale: String::new(),
        };
        assert_eq!(plan(&plan_of(vec![(0, 1, 2), (1, 0, 2)]), None), Ok(()));
        assert_eq!(plan(&plan_of(vec![(0, 0, 2), (1, 1, 2)]), Some(2)), Ok(()));
        let wrong = [
            (plan_of(vec![]), None, "0 shards"),
            (plan_of(vec![(0, 0, 2), (1, 1, 2)]), Some(3), "3 segments were requested"),
            (plan_of(vec![(1, 0, 2), (0, 1, 2)]), None, "has id 1"),
            (plan_of(vec![(0, 0, 2), (1, 1, 3)]), None, "total segments"),
            (plan_of(vec![(0, 0, 2), (1, 0, 2)]), None, "planned twice"),
        ];
        for (p, requested, words) in wrong {
            let refused = plan(&p, requested);
            assert!(refused.as_ref().is_err_and(|m| m.contains(words)), "{words}: {refused:?}");
        }
    }

    fn manifest_objects(s: &Snapshot, files: &[ManifestEntry], summary: &ManifestSummary) -> Vec<StoredObject> {
        let listing: String = files
            .iter()
            .map(|f| {
                format!(
                    "{{\"itemCount\":{},\"md5Checksum\":\"{}\",\"etag\":\"{}\",\"dataFileS3Key\":\"{}\"}}\n",
                    f.item_count, f.md5_checksum, f.etag, f.data_file_s3_key
                )
            })
            .collect();
        let summary = summary.to_bytes();
        let k = &s.keys;
        vec![
            StoredObject { key: k.manifest_files.clone(), body: listing.clone().into_bytes() },
            StoredObject {
                key: k.manifest_files_md5.clone(),
                body: checksum::md5_base64(listing.as_bytes()).into_bytes(),
            },
            StoredObject { key: k.manifest_summary_md5.clone(), body: checksum::md5_base64(&summary).into_bytes() },
            StoredObject { key: k.manifest_summary.clone(), body: summary },
        ]
    }

    fn summary_of(s: &Snapshot, items: u64) -> ManifestSummary {
        ManifestSummary {
            version: Some(summary::FULL_EXPORT_VERSION.into()),
            export_arn: s.export_arn.clone(),
            start_time: Some(summary::timestamp(START)),
            end_time: Some(summary::timestamp(START + 1)),
            table_arn: Some(s.table_arn.clone()),
            table_id: Some(s.table_id.clone()),
            export_time: Some(summary::timestamp(START)),
            export_from_time: None,
            export_to_time: None,
            s3_bucket: Some(s.s3_bucket.clone()),
            s3_prefix: s.s3_prefix.clone(),
            s3_sse_algorithm: Some("AES256".into()),
            s3_sse_kms_key_id: None,
            manifest_files_s3_key: s.keys.manifest_files.clone(),
            billed_size_bytes: Some(0),
            item_count: items,
            output_format: "DYNAMODB_JSON".into(),
            output_view: None,
            export_type: None,
        }
    }

    #[test]
    fn the_manifests_must_say_what_was_stored() {
        let s = snapshot();
        let file = ManifestEntry {
            data_file_s3_key: format!("{}{}.json.gz", s.keys.data_prefix, "a".repeat(26)),
            item_count: 3,
            md5_checksum: "bWQ1".into(),
            etag: "e".into(),
            stamp: None,
        };
        let files = [file.clone()];
        let totals = ExportTotals { end_time_ms: START + 1, item_count: 3, billed_size_bytes: 0 };
        let good = manifest_objects(&s, &files, &summary_of(&s, 3));
        assert_eq!(manifests(&s, &files, &totals, &good), Ok(()));

        let refused = |objects: &[StoredObject]| manifests(&s, &files, &totals, objects).unwrap_err();
        assert!(refused(&good[..3]).contains("in that order"));
        let lying = manifest_objects(&s, &[ManifestEntry { item_count: 4, ..file.clone() }], &summary_of(&s, 3));
        assert!(refused(&lying).contains("misstates"));
        let unstored =
            manifest_objects(&s, &[ManifestEntry { data_file_s3_key: "x".into(), ..file.clone() }], &summary_of(&s, 3));
        assert!(refused(&unstored).contains("which was not stored"));
        assert!(refused(&manifest_objects(&s, &files, &summary_of(&s, 4))).contains("wrong itemCount"));
        let incremental =
            ManifestSummary { export_type: Some(summary::INCREMENTAL_EXPORT.into()), ..summary_of(&s, 3) };
        assert!(refused(&manifest_objects(&s, &files, &incremental)).contains("wrong exportType for a full export"));
        let mut bad_md5 = good.clone();
        bad_md5[1].body = b"AAAA".to_vec();
        assert!(refused(&bad_md5).contains(".md5 file"));
    }
}

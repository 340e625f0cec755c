//! Conversions between the host's model and the generated WIT types.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::bindings::{shard_plan, snapshot, types, write};
use crate::model::{
    Billing, DataFileFacts, EncoderEvent, EncoderOptions, ExportFormat, ExportKeys, ExportTotals, ManifestEntry, Shard,
    ShardPlan, Snapshot, SnapshotRequest, SseAlgorithm, StoredObject, TableInfo,
};

/// An item the host cannot hand to a component.
#[derive(Debug, thiserror::Error)]
#[error("attribute {path}: {reason}")]
pub struct UnsupportedItem {
    pub path: String,
    pub reason: String,
}

/// Flattens a DynamoDB item into the node arena of `types.item`: each node is pushed before its
/// children, so every child's index is greater than its parent's, as the WIT requires.
pub fn item(attributes: HashMap<String, AttributeValue>) -> Result<types::Item, UnsupportedItem> {
    let mut nodes = Vec::with_capacity(attributes.len());
    let mut attrs = Vec::with_capacity(attributes.len());
    for (name, value) in attributes {
        let index = push(&mut nodes, value, &name)?;
        attrs.push((name, index));
    }
    Ok(types::Item { attrs, nodes })
}

fn push(nodes: &mut Vec<types::AttrNode>, value: AttributeValue, path: &str) -> Result<u32, UnsupportedItem> {
    use types::AttrNode;
    let index = u32::try_from(nodes.len())
        .map_err(|_| UnsupportedItem { path: path.to_string(), reason: "too many nested values".into() })?;
    let node = match value {
        AttributeValue::S(s) => AttrNode::S(s),
        AttributeValue::N(n) => AttrNode::N(n),
        AttributeValue::B(b) => AttrNode::B(b.into_inner()),
        AttributeValue::Bool(b) => AttrNode::Bool(b),
        AttributeValue::Null(_) => AttrNode::Null,
        AttributeValue::Ss(set) => AttrNode::Ss(set),
        AttributeValue::Ns(set) => AttrNode::Ns(set),
        AttributeValue::Bs(set) => AttrNode::Bs(set.into_iter().map(|b| b.into_inner()).collect()),
        AttributeValue::L(values) => {
            nodes.push(AttrNode::Null); // placeholder until the children have indices
            let mut children = Vec::with_capacity(values.len());
            for (position, value) in values.into_iter().enumerate() {
                children.push(push(nodes, value, &format!("{path}[{position}]"))?);
            }
            nodes[index as usize] = AttrNode::L(children);
            return Ok(index);
        }
        AttributeValue::M(map) => {
            nodes.push(AttrNode::Null);
            let mut entries = Vec::with_capacity(map.len());
            for (name, value) in map {
                let child = push(nodes, value, &format!("{path}.{name}"))?;
                entries.push((name, child));
            }
            nodes[index as usize] = AttrNode::M(entries);
            return Ok(index);
        }
        other => {
            return Err(UnsupportedItem {
                path: path.to_string(),
                reason: format!("an AttributeValue type this version does not know ({other:?})"),
            });
        }
    };
    nodes.push(node);
    Ok(index)
}

pub fn table(info: &TableInfo) -> types::TableDescription {
    types::TableDescription {
        table_name: info.table_name.clone(),
        table_arn: info.table_arn.clone(),
        table_id: info.table_id.clone(),
        item_count: info.item_count,
        table_size_bytes: info.table_size_bytes,
        billing: match info.billing {
            Billing::OnDemand => types::Billing::OnDemand,
            Billing::Provisioned(rcu) => types::Billing::Provisioned(rcu),
        },
    }
}

fn format_to_wit(format: ExportFormat) -> types::ExportFormat {
    match format {
        ExportFormat::DynamodbJson => types::ExportFormat::DynamodbJson,
        ExportFormat::Ion => types::ExportFormat::Ion,
    }
}

fn format_from_wit(format: types::ExportFormat) -> ExportFormat {
    match format {
        types::ExportFormat::DynamodbJson => ExportFormat::DynamodbJson,
        types::ExportFormat::Ion => ExportFormat::Ion,
    }
}

fn sse_to_wit(sse: SseAlgorithm) -> types::SseAlgorithm {
    match sse {
        SseAlgorithm::Aes256 => types::SseAlgorithm::Aes256,
        SseAlgorithm::Kms => types::SseAlgorithm::Kms,
    }
}

fn sse_from_wit(sse: types::SseAlgorithm) -> SseAlgorithm {
    match sse {
        types::SseAlgorithm::Aes256 => SseAlgorithm::Aes256,
        types::SseAlgorithm::Kms => SseAlgorithm::Kms,
    }
}

pub fn snapshot_request(request: &SnapshotRequest) -> snapshot::ExportRequest {
    snapshot::ExportRequest {
        s3_bucket: request.s3_bucket.clone(),
        s3_prefix: request.s3_prefix.clone(),
        s3_bucket_owner: request.s3_bucket_owner.clone(),
        s3_sse_algorithm: sse_to_wit(request.s3_sse_algorithm),
        s3_sse_kms_key_id: request.s3_sse_kms_key_id.clone(),
        export_format: format_to_wit(request.export_format),
        client_token: request.client_token.clone(),
        start_time_ms: request.start_time_ms,
        region: request.region.clone(),
    }
}

pub fn snapshot_from_wit(s: snapshot::ExportSnapshot) -> Snapshot {
    Snapshot {
        export_id: s.export_id,
        export_arn: s.export_arn,
        table_arn: s.table_arn,
        table_id: s.table_id,
        table_name: s.table_name,
        start_time_ms: s.start_time_ms,
        export_time_ms: s.export_time_ms,
        s3_bucket: s.s3_bucket,
        s3_prefix: s.s3_prefix,
        s3_bucket_owner: s.s3_bucket_owner,
        s3_sse_algorithm: sse_from_wit(s.s3_sse_algorithm),
        s3_sse_kms_key_id: s.s3_sse_kms_key_id,
        export_format: format_from_wit(s.export_format),
        client_token: s.client_token,
        keys: ExportKeys {
            root: s.keys.root,
            started: s.keys.started,
            data_prefix: s.keys.data_prefix,
            manifest_files: s.keys.manifest_files,
            manifest_files_md5: s.keys.manifest_files_md5,
            manifest_summary: s.keys.manifest_summary,
            manifest_summary_md5: s.keys.manifest_summary_md5,
        },
        data_file_extension: s.data_file_extension,
    }
}

pub fn snapshot_to_wit(s: &Snapshot) -> snapshot::ExportSnapshot {
    snapshot::ExportSnapshot {
        export_id: s.export_id.clone(),
        export_arn: s.export_arn.clone(),
        table_arn: s.table_arn.clone(),
        table_id: s.table_id.clone(),
        table_name: s.table_name.clone(),
        start_time_ms: s.start_time_ms,
        export_time_ms: s.export_time_ms,
        s3_bucket: s.s3_bucket.clone(),
        s3_prefix: s.s3_prefix.clone(),
        s3_bucket_owner: s.s3_bucket_owner.clone(),
        s3_sse_algorithm: sse_to_wit(s.s3_sse_algorithm),
        s3_sse_kms_key_id: s.s3_sse_kms_key_id.clone(),
        export_format: format_to_wit(s.export_format),
        client_token: s.client_token.clone(),
        keys: snapshot::ExportKeys {
            root: s.keys.root.clone(),
            started: s.keys.started.clone(),
            data_prefix: s.keys.data_prefix.clone(),
            manifest_files: s.keys.manifest_files.clone(),
            manifest_files_md5: s.keys.manifest_files_md5.clone(),
            manifest_summary: s.keys.manifest_summary.clone(),
            manifest_summary_md5: s.keys.manifest_summary_md5.clone(),
        },
        data_file_extension: s.data_file_extension.clone(),
    }
}

pub fn plan_from_wit(plan: shard_plan::Plan) -> ShardPlan {
    ShardPlan {
        shards: plan
            .shards
            .into_iter()
            .map(|s| Shard { id: s.id, segment: s.segment, total_segments: s.total_segments })
            .collect(),
        rationale: plan.rationale,
    }
}

pub fn encoder_options(options: &EncoderOptions) -> write::EncoderOptions {
    write::EncoderOptions {
        shard_id: options.shard_id,
        target_file_bytes: options.target_file_bytes,
        compression_level: options.compression_level,
    }
}

pub fn events_from_wit(output: Vec<write::Output>) -> Vec<EncoderEvent> {
    output
        .into_iter()
        .map(|event| match event {
            write::Output::FileStarted(key) => EncoderEvent::FileStarted(key),
            write::Output::Bytes(bytes) => EncoderEvent::Bytes(bytes),
            write::Output::FileFinished(f) => EncoderEvent::FileFinished(DataFileFacts {
                key: f.key,
                item_count: f.item_count,
                md5: f.md5,
                size_bytes: f.size_bytes,
            }),
        })
        .collect()
}

pub fn manifest_entry(entry: &ManifestEntry) -> write::ManifestEntry {
    write::ManifestEntry {
        data_file_s3_key: entry.data_file_s3_key.clone(),
        item_count: entry.item_count,
        md5_checksum: entry.md5_checksum.clone(),
        etag: entry.etag.clone(),
    }
}

pub fn totals(totals: &ExportTotals) -> write::ExportTotals {
    write::ExportTotals {
        end_time_ms: totals.end_time_ms,
        item_count: totals.item_count,
        billed_size_bytes: totals.billed_size_bytes,
    }
}

pub fn object_from_wit(object: write::Object) -> StoredObject {
    StoredObject { key: object.key, body: object.body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use types::AttrNode;

    #[test]
    fn children_follow_their_parent_and_every_node_is_used_once() {
        let nested = AttributeValue::M(HashMap::from([(
            "l".to_string(),
            AttributeValue::L(vec![AttributeValue::N("1".into()), AttributeValue::B(Blob::new(vec![0u8, 255]))]),
        )]));
        let item =
            item(HashMap::from([("m".to_string(), nested), ("s".to_string(), AttributeValue::S("x".into()))])).unwrap();
        assert_eq!(item.nodes.len(), 5);
        let mut referenced = vec![0; item.nodes.len()];
        for (_, root) in &item.attrs {
            referenced[*root as usize] += 1;
        }
        for (index, node) in item.nodes.iter().enumerate() {
            let children: Vec<u32> = match node {
                AttrNode::L(c) => c.clone(),
                AttrNode::M(e) => e.iter().map(|(_, c)| *c).collect(),
                _ => vec![],
            };
            for child in children {
                assert!(child as usize > index);
                referenced[child as usize] += 1;
            }
        }
        assert!(referenced.iter().all(|&n| n == 1), "{referenced:?}");
    }
}

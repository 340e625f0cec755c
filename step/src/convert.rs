//! Between the model the state formats keep (`ddb_export_model`) and the types of the default
//! component's code this component links (its WIT types, `ddb_export_guest::wit`), and from
//! the `dynamodb` import's table facts to the model's [`model::TableInfo`].

use ddb_export_guest::wit::{
    Billing as GuestBilling, ExportFormat, ExportKeys, ExportSnapshot, Plan, SseAlgorithm, TableDescription,
};
use ddb_export_model as model;

use crate::bindings::ddb_export::step::dynamodb::{Billing, KeyAttribute, KeyType};
use crate::io::TableFacts;

/// The snapshot of a full export in the default component's types (the caller has refused an
/// incremental export and a plugin's format, which this component does not write).
pub fn snapshot_for_encoder(snapshot: &model::Snapshot) -> ExportSnapshot {
    let keys = &snapshot.keys;
    ExportSnapshot {
        export_id: snapshot.export_id.clone(),
        export_arn: snapshot.export_arn.clone(),
        table_arn: snapshot.table_arn.clone(),
        table_id: snapshot.table_id.clone(),
        table_name: snapshot.table_name.clone(),
        start_time_ms: snapshot.start_time_ms,
        export_time_ms: snapshot.export_time_ms,
        s3_bucket: snapshot.s3_bucket.clone(),
        s3_prefix: snapshot.s3_prefix.clone(),
        s3_bucket_owner: snapshot.s3_bucket_owner.clone(),
        s3_sse_algorithm: match snapshot.s3_sse_algorithm {
            model::SseAlgorithm::Aes256 => SseAlgorithm::Aes256,
            model::SseAlgorithm::Kms => SseAlgorithm::Kms,
        },
        s3_sse_kms_key_id: snapshot.s3_sse_kms_key_id.clone(),
        export_format: match snapshot.export_format {
            model::ExportFormat::DynamodbJson => ExportFormat::DynamodbJson,
            model::ExportFormat::Ion => ExportFormat::Ion,
        },
        client_token: snapshot.client_token.clone(),
        keys: ExportKeys {
            root: keys.root.clone(),
            started: keys.started.clone(),
            data_prefix: keys.data_prefix.clone(),
            manifest_files: keys.manifest_files.clone(),
            manifest_files_md5: keys.manifest_files_md5.clone(),
            manifest_summary: keys.manifest_summary.clone(),
            manifest_summary_md5: keys.manifest_summary_md5.clone(),
        },
        data_file_extension: snapshot.data_file_extension.clone(),
        incremental: None,
        custom_format: None,
    }
}

/// A full export's snapshot, as the default component's `snapshot` step fixed it.
pub fn snapshot_from_guest(snapshot: ExportSnapshot) -> model::Snapshot {
    let keys = snapshot.keys;
    model::Snapshot {
        export_id: snapshot.export_id,
        export_arn: snapshot.export_arn,
        table_arn: snapshot.table_arn,
        table_id: snapshot.table_id,
        table_name: snapshot.table_name,
        start_time_ms: snapshot.start_time_ms,
        export_time_ms: snapshot.export_time_ms,
        s3_bucket: snapshot.s3_bucket,
        s3_prefix: snapshot.s3_prefix,
        s3_bucket_owner: snapshot.s3_bucket_owner,
        s3_sse_algorithm: match snapshot.s3_sse_algorithm {
            SseAlgorithm::Aes256 => model::SseAlgorithm::Aes256,
            SseAlgorithm::Kms => model::SseAlgorithm::Kms,
        },
        s3_sse_kms_key_id: snapshot.s3_sse_kms_key_id,
        export_format: match snapshot.export_format {
            ExportFormat::DynamodbJson => model::ExportFormat::DynamodbJson,
            ExportFormat::Ion => model::ExportFormat::Ion,
        },
        client_token: snapshot.client_token,
        keys: model::ExportKeys {
            root: keys.root,
            started: keys.started,
            data_prefix: keys.data_prefix,
            manifest_files: keys.manifest_files,
            manifest_files_md5: keys.manifest_files_md5,
            manifest_summary: keys.manifest_summary,
            manifest_summary_md5: keys.manifest_summary_md5,
        },
        data_file_extension: snapshot.data_file_extension,
        incremental: None,
        custom_format: None,
    }
}

/// The shard plan the default component's `shard-plan` step made.
pub fn plan_from_guest(plan: Plan) -> model::ShardPlan {
    model::ShardPlan {
        shards: plan
            .shards
            .into_iter()
            .map(|s| model::Shard { id: s.id, segment: s.segment, total_segments: s.total_segments })
            .collect(),
        rationale: plan.rationale,
    }
}

/// What DescribeTable said, as the state records it (a schema only when every key attribute's
/// type is known, as the host's own DescribeTable gives it).
pub fn table_info(facts: TableFacts) -> model::TableInfo {
    let typed = |key: &[KeyAttribute]| -> Option<Vec<model::KeyAttribute>> {
        key.iter()
            .map(|k| Some(model::KeyAttribute { name: k.name.clone(), key_type: Some(key_type(k.attribute_type?)) }))
            .collect()
    };
    let indexes: Option<Vec<model::IndexSchema>> = facts
        .indexes
        .iter()
        .map(|index| {
            Some(model::IndexSchema {
                name: index.name.clone(),
                global: index.global,
                key: typed(&index.key)?,
                projection: index.projection.clone(),
                non_key_attributes: index.non_key_attributes.clone(),
            })
        })
        .collect();
    let schema = match (typed(&facts.key), indexes) {
        (Some(key), Some(indexes)) if !key.is_empty() => Some(model::TableSchema {
            key,
            billing: match facts.billing {
                Billing::OnDemand => model::SchemaBilling::OnDemand,
                Billing::Provisioned(c) => {
                    model::SchemaBilling::Provisioned { read_capacity_units: c.read, write_capacity_units: c.write }
                }
            },
            indexes,
        }),
        _ => None,
    };
    model::TableInfo {
        table_name: facts.table_name,
        table_arn: facts.table_arn,
        table_id: facts.table_id,
        item_count: facts.item_count,
        table_size_bytes: facts.size_bytes,
        billing: match facts.billing {
            Billing::Provisioned(c) if c.read > 0 => model::Billing::Provisioned(c.read),
            _ => model::Billing::OnDemand,
        },
        key_attributes: facts.key.into_iter().map(|k| k.name).collect(),
        stream: None,
        schema,
    }
}

fn key_type(key_type: KeyType) -> model::KeyType {
    match key_type {
        KeyType::S => model::KeyType::S,
        KeyType::N => model::KeyType::N,
        KeyType::B => model::KeyType::B,
    }
}

/// The table as the default component's steps take it.
pub fn table_description(info: &model::TableInfo) -> TableDescription {
    TableDescription {
        table_name: info.table_name.clone(),
        table_arn: info.table_arn.clone(),
        table_id: info.table_id.clone(),
        item_count: info.item_count,
        table_size_bytes: info.table_size_bytes,
        billing: match info.billing {
            model::Billing::OnDemand => GuestBilling::OnDemand,
            model::Billing::Provisioned(rcu) => GuestBilling::Provisioned(rcu),
        },
    }
}

/// The default component's write error in words (its generated `Debug` is not for users).
pub fn write_error_text(error: &ddb_export_guest::wit::WriteError) -> String {
    use ddb_export_guest::wit::WriteError;
    match error {
        WriteError::InvalidPage(message) => message.clone(),
        WriteError::InvalidOptions(message) => format!("its options: {message}"),
        WriteError::Finished => "the encoder was used after it finished".into(),
        WriteError::Other(message) => message.clone(),
    }
}

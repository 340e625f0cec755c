//! A table's description (DescribeTable, through the SDK) as the model's [`TableInfo`]: its
//! key, billing, stream and, when DescribeTable reported every type, its schema.

use aws_sdk_dynamodb::types::{BillingMode, KeySchemaElement, Projection, TableDescription};
use ddb_export_model::{
    Billing, IndexSchema, KeyAttribute, KeyType, SchemaBilling, StreamInfo, TableInfo, TableSchema,
};

/// The description of the table the caller named `name_or_arn`; `Err` says what it lacks.
pub fn table_info(table: TableDescription, name_or_arn: &str) -> Result<TableInfo, String> {
    let on_demand = table
        .billing_mode_summary
        .as_ref()
        .and_then(|s| s.billing_mode.as_ref())
        .is_some_and(|mode| *mode == BillingMode::PayPerRequest);
    let provisioned_rcu = table.provisioned_throughput.as_ref().and_then(|t| t.read_capacity_units).unwrap_or(0);
    let billing = if on_demand || provisioned_rcu <= 0 {
        Billing::OnDemand
    } else {
        Billing::Provisioned(provisioned_rcu as u64)
    };
    let schema = schema_of(&table);
    let table_name = table.table_name.unwrap_or_else(|| name_or_arn.to_string());
    let mut schema_keys = table.key_schema.unwrap_or_default();
    // HASH first, then RANGE.
    schema_keys.sort_by_key(|k| k.key_type != aws_sdk_dynamodb::types::KeyType::Hash);
    let key_attributes: Vec<String> = schema_keys.into_iter().map(|k| k.attribute_name).collect();
    if key_attributes.is_empty() {
        return Err("the table description has no key schema".into());
    }
    let enabled = table.stream_specification.as_ref().is_some_and(|s| s.stream_enabled);
    let stream = match (table.latest_stream_arn, enabled) {
        (Some(arn), true) => Some(StreamInfo {
            arn,
            view_type: table
                .stream_specification
                .and_then(|s| s.stream_view_type)
                .map(|view| view.as_str().to_string()),
        }),
        _ => None,
    };
    Ok(TableInfo {
        stream,
        schema,
        table_arn: table.table_arn.unwrap_or_default(),
        table_id: table.table_id,
        item_count: table.item_count.unwrap_or(0).max(0) as u64,
        table_size_bytes: table.table_size_bytes.unwrap_or(0).max(0) as u64,
        billing,
        table_name,
        key_attributes,
    })
}

/// A table's key with types, billing and indexes, from its description; `None` when a key
/// attribute's type is not in `AttributeDefinitions` (a server's odd answer).
fn schema_of(table: &TableDescription) -> Option<TableSchema> {
    let definitions = table.attribute_definitions();
    let typed = |elements: &[KeySchemaElement]| -> Option<Vec<KeyAttribute>> {
        let mut elements = elements.to_vec();
        elements.sort_by_key(|k| k.key_type != aws_sdk_dynamodb::types::KeyType::Hash);
        elements
            .iter()
            .map(|element| {
                let definition = definitions.iter().find(|d| d.attribute_name == element.attribute_name)?;
                let key_type = KeyType::from_aws_name(definition.attribute_type.as_str())?;
                Some(KeyAttribute { name: element.attribute_name.clone(), key_type: Some(key_type) })
            })
            .collect()
    };
    let key = typed(table.key_schema())?;
    let on_demand = table
        .billing_mode_summary
        .as_ref()
        .and_then(|s| s.billing_mode.as_ref())
        .is_some_and(|mode| *mode == BillingMode::PayPerRequest);
    let throughput = table.provisioned_throughput.as_ref();
    let capacity = |units: Option<i64>| units.unwrap_or(0).max(0) as u64;
    let (read, write) = (
        capacity(throughput.and_then(|t| t.read_capacity_units)),
        capacity(throughput.and_then(|t| t.write_capacity_units)),
    );
    let billing = if on_demand || read == 0 || write == 0 {
        SchemaBilling::OnDemand
    } else {
        SchemaBilling::Provisioned { read_capacity_units: read, write_capacity_units: write }
    };
    let projection = |p: Option<&Projection>| {
        (
            p.and_then(|p| p.projection_type.as_ref()).map_or("ALL".to_string(), |t| t.as_str().to_string()),
            p.map(|p| p.non_key_attributes().to_vec()).unwrap_or_default(),
        )
    };
    let mut indexes = Vec::new();
    for index in table.global_secondary_indexes() {
        let (projection, non_key_attributes) = projection(index.projection.as_ref());
        indexes.push(IndexSchema {
            name: index.index_name.clone().unwrap_or_default(),
            global: true,
            key: typed(index.key_schema())?,
            projection,
            non_key_attributes,
        });
    }
    for index in table.local_secondary_indexes() {
        let (projection, non_key_attributes) = projection(index.projection.as_ref());
        indexes.push(IndexSchema {
            name: index.index_name.clone().unwrap_or_default(),
            global: false,
            key: typed(index.key_schema())?,
            projection,
            non_key_attributes,
        });
    }
    Some(TableSchema { key, billing, indexes })
}

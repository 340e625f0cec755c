//! Reading the table: DescribeTable and parallel Scan pages (through `ddb-export-dynamodb`,
//! shared with the step adapter), their failures as [`ExportError`]s.

use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use ddb_export_dynamodb::scan::ScanFailure;

use crate::error::ExportError;
use crate::io::aws::SdkFailure;
use crate::model::{Field, ScanFilter, Shard, TableInfo};

use super::items::{Item, attribute_from_json};

pub use ddb_export_dynamodb::scan::ScanPage;

/// A table to export, by name or ARN.
#[derive(Clone, Debug)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    region: String,
    /// What the user named: a table name or a table ARN (DynamoDB accepts both).
    name_or_arn: String,
    /// Passed to every Scan.
    filter: Option<std::sync::Arc<ScanFilter>>,
}

/// Checks a filter's names and values (each value must be an attribute the SDK can send),
/// naming the flag at fault.
pub fn check_filter(filter: &ScanFilter) -> Result<(), (Field, String)> {
    crate::model::settings::check_filter(filter, |value| attribute_from_json(value).map(drop))
}

impl Table {
    pub fn new(client: aws_sdk_dynamodb::Client, region: String, name_or_arn: String) -> Self {
        Self { client, region, name_or_arn, filter: None }
    }

    /// The same table, every Scan of it filtered and projected as `filter` says.
    pub fn with_filter(self, filter: Option<ScanFilter>) -> Self {
        Self { filter: filter.map(std::sync::Arc::new), ..self }
    }

    /// What the user named.
    pub fn name(&self) -> &str {
        &self.name_or_arn
    }

    /// DescribeTable. A missing table is [`ExportError::TableNotFound`].
    pub async fn describe(&self) -> Result<TableInfo, ExportError> {
        let output = self.client.describe_table().table_name(&self.name_or_arn).send().await.map_err(|error| {
            if matches!(error.as_service_error(), Some(DescribeTableError::ResourceNotFoundException(_))) {
                return ExportError::TableNotFound { table: self.name_or_arn.clone(), region: self.region.clone() };
            }
            let failure = SdkFailure::of(&error);
            failure.into_export_error(format!("dynamodb:DescribeTable on {}", self.name_or_arn), |message| {
                ExportError::DynamoDb { operation: "DescribeTable", table: self.name_or_arn.clone(), message }
            })
        })?;
        let table = output.table.ok_or_else(|| ExportError::DynamoDb {
            operation: "DescribeTable",
            table: self.name_or_arn.clone(),
            message: "the response has no table description".into(),
        })?;
        ddb_export_dynamodb::describe::table_info(table, &self.name_or_arn).map_err(|message| ExportError::DynamoDb {
            operation: "DescribeTable",
            table: self.name_or_arn.clone(),
            message,
        })
    }

    /// Asks the server to judge the filter and projection (one Scan of at most one item, of
    /// the first segment of one): DynamoDB checks an expression only when it runs it, and a bad
    /// one must be refused before anything is written, not at the first page of the export.
    pub async fn check_filter(&self) -> Result<(), ExportError> {
        if self.filter.is_none() {
            return Ok(());
        }
        let whole = Shard { id: 0, segment: 0, total_segments: 1 };
        match self.scan_page(&whole, None, Some(1)).await {
            Err(ExportError::DynamoDb { message, .. }) if message.starts_with("ValidationException") => {
                Err(ExportError::InvalidArgument {
                    field: Field::ScanFilter,
                    message: format!("DynamoDB refused them: {message}"),
                })
            }
            other => other.map(drop),
        }
    }

    /// One Scan page of `shard`, starting after `start_key`.
    /// With `limit`, the page reads at most that many items (a page stops at 1 MB anyway); with a
    /// filter it may hold fewer.
    pub async fn scan_page(
        &self,
        shard: &Shard,
        start_key: Option<Item>,
        limit: Option<u32>,
    ) -> Result<ScanPage, ExportError> {
        let scanned = ddb_export_dynamodb::scan::scan_page(
            &self.client,
            &self.name_or_arn,
            shard,
            start_key,
            limit,
            self.filter.as_deref(),
        )
        .await;
        scanned.map_err(|failure| {
            let table = self.name_or_arn.clone();
            let error = match failure {
                ScanFailure::Throttled(error) => {
                    return ExportError::Throttled {
                        operation: "Scan",
                        table,
                        message: SdkFailure::of(&error).message,
                    };
                }
                ScanFailure::Transient(error) => {
                    return ExportError::Transient {
                        operation: "Scan",
                        table,
                        message: SdkFailure::of(&error).message,
                    };
                }
                ScanFailure::Unreadable(message) => {
                    return ExportError::UnreadableResponse {
                        service: "DynamoDB Scan",
                        message: format!("table {}: {message}", self.name_or_arn),
                    };
                }
                ScanFailure::Refused(error) => error,
            };
            SdkFailure::of(&error).into_export_error(format!("dynamodb:Scan on {}", self.name_or_arn), |message| {
                ExportError::DynamoDb { operation: "Scan", table: self.name_or_arn.clone(), message }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_filter_s_mistakes_name_their_field() {
        let filter = |names: &[(&str, &str)], values: &[(&str, serde_json::Value)]| ScanFilter {
            filter: Some("#s = :v".into()),
            projection: None,
            names: names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            values: values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        };
        assert!(check_filter(&filter(&[("#s", "status")], &[(":v", json!({"S": "x"}))])).is_ok());
        let field = |f: ScanFilter| check_filter(&f).map_err(|(field, _)| field).err();
        assert_eq!(field(filter(&[("s", "status")], &[])), Some(Field::ExpressionNames));
        assert_eq!(field(filter(&[], &[("v", json!({"S": "x"}))])), Some(Field::ExpressionValues));
        assert_eq!(field(filter(&[], &[(":v", json!({"Q": "x"}))])), Some(Field::ExpressionValues));
        assert_eq!(field(ScanFilter { filter: Some(String::new()), ..ScanFilter::default() }), Some(Field::Filter));
        let shown = filter(&[("#s", "status")], &[(":v", json!({"S": "x"}))]).to_string();
        assert_eq!(shown, r#"filter #s = :v, names #s=status, values :v={"S":"x"}"#);
        assert_eq!(ScanFilter::default().to_string(), "none");
    }
}

//! What a restore is asked to do, and what it reports.

use serde::Serialize;

use crate::error::ExportError;
use crate::io::destination::Target;
use crate::io::table_writer::PutCondition;
use crate::model::{Field, KeyAttribute, SchemaBilling};
use crate::pipeline::progress::ProgressStyle;
use crate::pipeline::restore::RestoreFigures;

/// How a restore treats the items the table already holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Overwrite into a new or empty table; refused into a table that holds items (unless a
    /// run of this restore wrote them).
    #[default]
    Default,
    /// Put and delete whatever the table holds (`--overwrite`).
    Overwrite,
    /// Put only items the table does not hold; delete nothing (`--if-absent`).
    IfAbsent,
    /// Put an item where the table's has a smaller `attribute` (or none); delete nothing
    /// (`--if-older ATTRIBUTE`).
    IfOlder(String),
}

impl WriteMode {
    /// As the restore's state records it.
    pub fn in_words(&self) -> String {
        match self {
            WriteMode::Default | WriteMode::Overwrite => "overwrite".into(),
            WriteMode::IfAbsent => "if-absent".into(),
            WriteMode::IfOlder(attribute) => format!("if-older {attribute}"),
        }
    }

    /// Read back from [`Self::in_words`].
    pub fn from_words(words: &str) -> Self {
        match words.split_once(' ') {
            Some(("if-older", attribute)) => WriteMode::IfOlder(attribute.to_string()),
            _ if words == "if-absent" => WriteMode::IfAbsent,
            _ => WriteMode::Overwrite,
        }
    }

    /// The condition each put is written under; `None`: none (BatchWriteItem).
    pub fn condition(&self) -> Option<PutCondition> {
        match self {
            WriteMode::Default | WriteMode::Overwrite => None,
            WriteMode::IfAbsent => Some(PutCondition::Absent),
            WriteMode::IfOlder(attribute) => Some(PutCondition::Older(attribute.clone())),
        }
    }
}

/// How fast a restore may write, in write capacity units (WCU) per second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum WriteLimit {
    /// [`DEFAULT_WRITE_PERCENT`] of a provisioned table's write capacity; on an on-demand
    /// table, [`DEFAULT_ON_DEMAND_WCU`] (with a note on stderr).
    #[default]
    Default,
    /// At most this many WCU per second (`--max-wcu`).
    MaxWcu(f64),
    /// This percentage of the table's provisioned write capacity (`--write-percent`).
    WritePercent(f64),
    /// As fast as the table takes (`--no-write-limit`; throttling still slows it down).
    Unlimited,
}

/// Share of a provisioned table's write capacity a restore uses by default.
pub const DEFAULT_WRITE_PERCENT: f64 = 50.0;
/// Writes per second on an on-demand table when no budget is given (about 1 MB/s of items).
pub const DEFAULT_ON_DEMAND_WCU: f64 = 1000.0;

impl WriteLimit {
    /// The budget in WCU per second for a table billed as `billing`; `None` for no limit.
    pub fn budget(self, table: &str, billing: SchemaBilling) -> Result<Option<f64>, ExportError> {
        Ok(match (self, billing) {
            (WriteLimit::Unlimited, _) => None,
            (WriteLimit::MaxWcu(wcu), _) => Some(wcu),
            (WriteLimit::WritePercent(percent), SchemaBilling::Provisioned { write_capacity_units, .. }) => {
                Some(write_capacity_units as f64 * percent / 100.0)
            }
            (WriteLimit::WritePercent(_), SchemaBilling::OnDemand) => {
                return Err(ExportError::InvalidArgument {
                    field: Field::WritePercent,
                    message: format!(
                        "table {table} is on-demand and has no provisioned write capacity; use {}",
                        Field::MaxWcu
                    ),
                });
            }
            (WriteLimit::Default, SchemaBilling::Provisioned { write_capacity_units, .. }) => {
                Some(write_capacity_units as f64 * DEFAULT_WRITE_PERCENT / 100.0)
            }
            (WriteLimit::Default, SchemaBilling::OnDemand) => {
                tracing::warn!(
                    "table {table} is on-demand: writing at most {DEFAULT_ON_DEMAND_WCU} WCU/s; use {} or {} to \
                     change that",
                    Field::MaxWcu,
                    Field::WriteLimit
                );
                Some(DEFAULT_ON_DEMAND_WCU)
            }
        })
    }
}

/// A restore: exports (a full one, then incremental ones) back into a table.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// Each an export (`…/AWSDynamoDB/<id>`, in S3 or a directory), or a destination whose
    /// exports are chained: its latest full export and the incremental ones after it.
    pub from: Vec<String>,
    /// The table written.
    pub table: String,
    /// Create the table (it must not exist, unless an earlier run of this restore made it).
    pub create_table: bool,
    /// The new table's key (typed), when the export holds no description of its table (one
    /// AWS wrote). Default: the source table's, from the export's saved state.
    pub key: Option<Vec<KeyAttribute>>,
    /// The new table's billing. Default: the source table's, else on-demand.
    pub billing: Option<SchemaBilling>,
    /// Give the new table the source table's secondary indexes.
    pub indexes: bool,
    pub writes: WriteMode,
    pub write_limit: WriteLimit,
    /// Write requests in flight at once. Default: [`DEFAULT_REQUESTS`].
    pub parallelism: Option<u32>,
    /// Idempotency token. Default: one derived from the exports and the table, so that the
    /// same command carries on where it stopped, and returns the report once done.
    pub client_token: Option<String>,
    /// Where the restore's state is kept. Default: beside the first export.
    pub state: Option<Target>,
    pub progress: ProgressStyle,
    pub progress_interval: std::time::Duration,
}

/// Write requests in flight when the request does not say.
pub const DEFAULT_REQUESTS: u32 = 16;
/// The most write requests in flight a restore allows.
pub const MAX_REQUESTS: u32 = 256;

impl RestoreRequest {
    /// A restore of `from` into `table` with every other setting at its default.
    pub fn new(from: Vec<String>, table: impl Into<String>) -> Self {
        Self {
            from,
            table: table.into(),
            create_table: false,
            key: None,
            billing: None,
            indexes: false,
            writes: WriteMode::Default,
            write_limit: WriteLimit::Default,
            parallelism: None,
            client_token: None,
            state: None,
            progress: ProgressStyle::Off,
            progress_interval: std::time::Duration::from_secs(10),
        }
    }

    /// Refuses, naming the field, what no table or export could make right.
    pub fn validate(&self) -> Result<(), ExportError> {
        let invalid = |field, message: String| Err(ExportError::InvalidArgument { field, message });
        if self.from.is_empty() || self.from.iter().any(|f| f.trim().is_empty()) {
            return invalid(Field::RestoreFrom, "names no export".into());
        }
        if self.table.trim().is_empty() {
            return invalid(Field::Table, "is empty".into());
        }
        if let Some(key) = &self.key {
            if key.is_empty() || key.len() > 2 || key.iter().any(|k| k.name.is_empty() || k.key_type.is_none()) {
                return invalid(
                    Field::Key,
                    "names a partition key and maybe a sort key, each NAME:S, NAME:N or NAME:B".into(),
                );
            }
            if !self.create_table {
                return invalid(Field::Key, format!("only applies with {}", Field::CreateTable));
            }
        }
        if (self.billing.is_some() || self.indexes) && !self.create_table {
            return invalid(Field::Billing, format!("only applies with {}", Field::CreateTable));
        }
        if let WriteMode::IfOlder(attribute) = &self.writes
            && attribute.is_empty()
        {
            return invalid(Field::Writes, "--if-older needs an attribute name".into());
        }
        match self.write_limit {
            WriteLimit::MaxWcu(wcu) if !(wcu.is_finite() && wcu > 0.0) => {
                return invalid(Field::MaxWcu, format!("{wcu} is not a positive number"));
            }
            WriteLimit::WritePercent(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => {
                return invalid(Field::WritePercent, format!("{p} is not a percentage above 0, at most 100"));
            }
            _ => {}
        }
        if let Some(requests) = self.parallelism
            && !(1..=MAX_REQUESTS).contains(&requests)
        {
            return invalid(Field::Parallelism, format!("{requests} is not between 1 and {MAX_REQUESTS}"));
        }
        if let Some(token) = &self.client_token
            && (token.is_empty() || token.len() > 64 || token.chars().any(|c| c.is_control()))
        {
            return invalid(Field::ClientToken, "must be 1 to 64 printable characters".into());
        }
        Ok(())
    }
}

/// What a restore did (printed as JSON by `ddb-export restore`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreReport {
    pub client_token: String,
    pub table: String,
    /// The exports restored, in order.
    pub exports: Vec<String>,
    /// `overwrite`, `if-absent` or `if-older <attribute>`.
    pub writes: String,
    /// Whether this restore created the table.
    pub created_table: bool,
    /// Where the restore's state is.
    pub state: String,
    /// Data files an earlier, interrupted run had finished (not written again).
    pub resumed_data_files: u64,
    #[serde(flatten)]
    pub figures: RestoreFiguresRecord,
}

/// [`RestoreFigures`] as the report keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreFiguresRecord {
    pub items_put: u64,
    pub items_deleted: u64,
    pub skipped: u64,
    pub consumed_write_capacity_units: f64,
    pub throttles: u64,
    pub data_files: u64,
    pub seconds: f64,
}

impl From<RestoreFigures> for RestoreFiguresRecord {
    fn from(f: RestoreFigures) -> Self {
        Self {
            items_put: f.items_put,
            items_deleted: f.items_deleted,
            skipped: f.skipped,
            consumed_write_capacity_units: f.consumed_write_capacity_units,
            throttles: f.throttles,
            data_files: f.data_files,
            seconds: f.seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyType;

    #[test]
    fn bad_settings_name_their_field() {
        let field = |request: RestoreRequest| match request.validate() {
            Err(ExportError::InvalidArgument { field, .. }) => Some(field),
            _ => None,
        };
        let good = RestoreRequest::new(vec!["s3://b/AWSDynamoDB/x".into()], "t");
        assert_eq!(field(good.clone()), None);
        assert_eq!(field(RestoreRequest { from: vec![], ..good.clone() }), Some(Field::RestoreFrom));
        let key = vec![KeyAttribute { name: "pk".into(), key_type: Some(KeyType::S) }];
        assert_eq!(field(RestoreRequest { key: Some(key.clone()), ..good.clone() }), Some(Field::Key));
        assert_eq!(field(RestoreRequest { key: Some(key), create_table: true, ..good.clone() }), None);
        let untyped = vec![KeyAttribute::untyped("pk")];
        let create = RestoreRequest { create_table: true, ..good.clone() };
        assert_eq!(field(RestoreRequest { key: Some(untyped), ..create.clone() }), Some(Field::Key));
        assert_eq!(field(RestoreRequest { write_limit: WriteLimit::MaxWcu(0.0), ..good.clone() }), Some(Field::MaxWcu));
        let percent = WriteLimit::WritePercent(150.0);
        assert_eq!(field(RestoreRequest { write_limit: percent, ..good.clone() }), Some(Field::WritePercent));
        assert_eq!(field(RestoreRequest { parallelism: Some(0), ..good.clone() }), Some(Field::Parallelism));
        assert_eq!(field(RestoreRequest { indexes: true, ..good.clone() }), Some(Field::Billing));
        let token = Some("x".repeat(65));
        assert_eq!(field(RestoreRequest { client_token: token, ..good }), Some(Field::ClientToken));
    }

    #[test]
    fn the_write_budget_follows_the_table_s_billing() {
        let provisioned = SchemaBilling::Provisioned { read_capacity_units: 10, write_capacity_units: 40 };
        assert_eq!(WriteLimit::Default.budget("t", provisioned).unwrap(), Some(20.0));
        assert_eq!(WriteLimit::WritePercent(25.0).budget("t", provisioned).unwrap(), Some(10.0));
        assert_eq!(WriteLimit::Default.budget("t", SchemaBilling::OnDemand).unwrap(), Some(DEFAULT_ON_DEMAND_WCU));
        assert_eq!(WriteLimit::Unlimited.budget("t", provisioned).unwrap(), None);
        assert!(WriteLimit::WritePercent(25.0).budget("t", SchemaBilling::OnDemand).is_err());
    }

    #[test]
    fn write_modes_say_their_condition() {
        assert_eq!(WriteMode::Default.condition(), None);
        assert_eq!(WriteMode::IfAbsent.condition(), Some(PutCondition::Absent));
        assert_eq!(WriteMode::IfOlder("v".into()).in_words(), "if-older v");
        for mode in [WriteMode::Overwrite, WriteMode::IfAbsent, WriteMode::IfOlder("updated at".into())] {
            assert_eq!(WriteMode::from_words(&mode.in_words()), mode);
        }
    }
}

//! `ddb-export restore`'s flags, and the request they make.

use std::time::Duration;

use clap::Args;

use ddb_export::Target;
use ddb_export::restore::{KeyAttribute, KeyType, RestoreRequest, SchemaBilling, WriteLimit, WriteMode, WriterOptions};

use super::ProgressArg;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// An export to restore (s3://bucket/prefix/AWSDynamoDB/<id>, or a directory's), by
    /// ddb-export or by AWS. Give it again for a chain: a full export, then the incremental
    /// exports that continue it, in order. A destination without an export id restores the
    /// chain found there (its latest full export and the incremental ones after it).
    #[arg(long, value_name = "EXPORT", required = true)]
    pub from: Vec<String>,

    /// The table to write.
    #[arg(long)]
    pub table: String,

    /// Create the table (refused if it exists): key, billing and (with --indexes) secondary
    /// indexes from the source table's description, which exports by ddb-export keep; or
    /// the key given by --key (an export by AWS holds none).
    #[arg(long)]
    pub create_table: bool,

    /// With --create-table: the new table's key, `NAME:TYPE[,NAME:TYPE]` (partition key, then
    /// sort key; TYPE S, N or B), e.g. `pk:S,sk:N`.
    #[arg(long, value_name = "KEY", requires = "create_table", value_parser = parse_key)]
    pub key: Option<KeyArg>,

    /// With --create-table: `on-demand`, or `provisioned:READ:WRITE` capacity units.
    /// Default: the source table's, else on-demand.
    #[arg(long, requires = "create_table", value_parser = parse_billing)]
    pub billing: Option<SchemaBilling>,

    /// With --create-table: give the table the source table's secondary indexes.
    #[arg(long, requires = "create_table")]
    pub indexes: bool,

    /// Put and delete whatever the table holds. The default into a new or empty table; a
    /// table that holds items needs this, --if-absent or --if-older.
    #[arg(long, group = "writes")]
    pub overwrite: bool,

    /// Put only the items the table does not hold (a conditional PutItem each); delete nothing.
    #[arg(long, group = "writes")]
    pub if_absent: bool,

    /// Put an item only where the table has none with its key or one whose ATTRIBUTE is less
    /// than the export's (e.g. an update time or version); delete nothing.
    #[arg(long, value_name = "ATTRIBUTE", group = "writes")]
    pub if_older: Option<String>,

    #[command(flatten)]
    pub writing: WriteArgs,

    /// Idempotency token. Default: one derived from the exports and the table, so the same
    /// command carries on after an interruption and, once done, prints the same report.
    #[arg(long)]
    pub client_token: Option<String>,

    /// Keep the restore's state here (s3://bucket[/prefix] or a directory). Default: beside
    /// the first export, under its _ddb-export folder.
    #[arg(long, value_name = "LOCATION")]
    pub state: Option<String>,
}

/// `--key`'s attributes (a type of its own: clap reads an `Option<Vec<_>>` as a repeated flag).
#[derive(Debug, Clone)]
pub struct KeyArg(Vec<KeyAttribute>);

#[derive(Debug, Args)]
pub struct RestorePlanArgs {
    #[command(flatten)]
    pub restore: RestoreArgs,

    /// Data files a shard holds.
    #[arg(long, default_value_t = ddb_export::restore::DEFAULT_FILES_PER_SHARD)]
    pub files_per_shard: usize,
}

#[derive(Debug, Args)]
pub struct RestoreShardArgs {
    /// The restore: its plan's RestoreLocation (its state folder).
    #[arg(long, value_name = "LOCATION")]
    pub plan: String,

    /// The shard to restore (one of the plan's Shards).
    #[arg(long)]
    pub shard: u32,

    /// How fast this worker writes: each worker applies its own limit, so divide the
    /// table's budget by the workers running at once.
    #[command(flatten)]
    pub writing: WriteArgs,
}

/// How a restore (or one worker of a fanned-out one) writes, and shows its progress.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Write at most this many write capacity units per second.
    #[arg(long, value_name = "WCU", group = "write_limit")]
    pub max_wcu: Option<f64>,

    /// Write at most this percentage of a provisioned table's write capacity. Default: 50 on a
    /// provisioned table; on an on-demand table, 1000 WCU/s unless --max-wcu says otherwise.
    #[arg(long, value_name = "PERCENT", group = "write_limit")]
    pub write_percent: Option<f64>,

    /// Write as fast as the table takes (throttling still slows the restore, never fails it).
    #[arg(long, group = "write_limit")]
    pub no_write_limit: bool,

    /// Write requests in flight at once (1-256). Default: 16.
    #[arg(long)]
    pub parallelism: Option<u32>,

    /// Progress on stderr: a live bar on a terminal (auto), periodic log lines, or none.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Seconds between progress lines when there is no live bar.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub progress_interval_secs: u64,
}

#[derive(Debug, Args)]
pub struct RestoreFinalizeArgs {
    /// The restore: its plan's RestoreLocation.
    #[arg(long, value_name = "LOCATION")]
    pub plan: String,
}

impl WriteArgs {
    pub fn write_limit(&self) -> WriteLimit {
        match (self.max_wcu, self.write_percent, self.no_write_limit) {
            (Some(wcu), _, _) => WriteLimit::MaxWcu(wcu),
            (_, Some(percent), _) => WriteLimit::WritePercent(percent),
            (_, _, true) => WriteLimit::Unlimited,
            _ => WriteLimit::Default,
        }
    }

    /// How the writes run and show their progress.
    pub fn options(&self, quiet: bool) -> WriterOptions {
        WriterOptions {
            write_limit: self.write_limit(),
            requests: self.parallelism,
            progress: self.progress.style(quiet),
            progress_interval: Duration::from_secs(self.progress_interval_secs),
        }
    }
}

impl RestoreArgs {
    /// The request these flags make.
    pub fn request(self, quiet: bool) -> anyhow::Result<RestoreRequest> {
        let request = RestoreRequest {
            from: self.from,
            table: self.table,
            create_table: self.create_table,
            key: self.key.map(|k| k.0),
            billing: self.billing,
            indexes: self.indexes,
            writes: match (self.overwrite, self.if_absent, self.if_older) {
                (true, _, _) => WriteMode::Overwrite,
                (_, true, _) => WriteMode::IfAbsent,
                (_, _, Some(attribute)) => WriteMode::IfOlder(attribute),
                _ => WriteMode::Default,
            },
            write_limit: self.writing.write_limit(),
            parallelism: self.writing.parallelism,
            client_token: self.client_token,
            state: self.state.as_deref().map(Target::parse).transpose()?,
            progress: self.writing.progress.style(quiet),
            progress_interval: Duration::from_secs(self.writing.progress_interval_secs),
        };
        request.validate()?;
        Ok(request)
    }
}

/// `pk:S,sk:N`.
fn parse_key(text: &str) -> Result<KeyArg, String> {
    let attributes: Vec<KeyAttribute> = text
        .split(',')
        .map(|part| {
            let (name, kind) = part.trim().rsplit_once(':').ok_or_else(|| format!("{part:?} is not NAME:TYPE"))?;
            let key_type = KeyType::from_aws_name(kind).ok_or_else(|| format!("{kind:?} is not S, N or B"))?;
            if name.is_empty() {
                return Err(format!("{part:?} has no name"));
            }
            Ok(KeyAttribute { name: name.to_string(), key_type: Some(key_type) })
        })
        .collect::<Result<_, String>>()?;
    if attributes.len() > 2 {
        return Err("a key is a partition key and at most one sort key".into());
    }
    Ok(KeyArg(attributes))
}

/// `on-demand` or `provisioned:READ:WRITE`.
fn parse_billing(text: &str) -> Result<SchemaBilling, String> {
    if text == "on-demand" {
        return Ok(SchemaBilling::OnDemand);
    }
    let units =
        |t: &str| t.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{t:?} is not a positive count"));
    match text.split(':').collect::<Vec<_>>()[..] {
        ["provisioned", read, write] => {
            Ok(SchemaBilling::Provisioned { read_capacity_units: units(read)?, write_capacity_units: units(write)? })
        }
        _ => Err(format!("{text:?} is neither on-demand nor provisioned:READ:WRITE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_billing_read_as_written() {
        let key = parse_key("pk:S,sk:N").unwrap().0;
        assert_eq!(
            key,
            vec![
                KeyAttribute { name: "pk".into(), key_type: Some(KeyType::S) },
                KeyAttribute { name: "sk".into(), key_type: Some(KeyType::N) }
            ]
        );
        assert_eq!(parse_key("a:b:B").unwrap().0[0].name, "a:b", "the last colon splits");
        for bad in ["pk", "pk:X", ":S", "a:S,b:S,c:S"] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_billing("on-demand").unwrap(), SchemaBilling::OnDemand);
        assert_eq!(
            parse_billing("provisioned:5:10").unwrap(),
            SchemaBilling::Provisioned { read_capacity_units: 5, write_capacity_units: 10 }
        );
        for bad in ["provisioned:0:1", "provisioned:5", "ondemand"] {
            assert!(parse_billing(bad).is_err(), "{bad}");
        }
    }
}

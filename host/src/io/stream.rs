//! Reading a table's DynamoDB stream (for an incremental export, and for the consistent mode's
//! cut): which stream, whether it can serve the window, and its records in the window, every
//! shard, parents before children.
//!
//! Rules (the README's "Incremental exports" says the same):
//! - **The view**: `new-image` needs a stream of `NEW_IMAGE` or `NEW_AND_OLD_IMAGES`;
//!   `new-and-old-images` needs `NEW_AND_OLD_IMAGES` (the image before the window is the first
//!   change's `OldImage`). `KEYS_ONLY` and `OLD_IMAGE` streams serve neither.
//! - **Retention**: a stream keeps records for 24 hours and has none from before it was
//!   created. A window is refused when it starts before the stream's creation time
//!   (`CreationRequestDateTime`, else the time its `StreamLabel` names), or more than
//!   [`RETENTION`] minus [`RETENTION_MARGIN`] before now (the margin covers the read itself).
//! - **Reading**: every shard from `TRIM_HORIZON`, parents before their children (and shards
//!   that appear while reading, after those); a record is kept when its
//!   `ApproximateCreationDateTime` is in `[from, to)`. A shard is done at its end (a closed
//!   shard), at its first record at or past `to`, or, for an open shard, after
//!   [`EMPTY_PAGES_TO_CATCH_UP`] empty `GetRecords` in a row once the clock is
//!   [`CATCH_UP_GRACE`] past `to` (so a write just before `to` has reached the stream; an empty
//!   page alone does not mean the end).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::primitives::DateTime;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, OperationType, ShardIteratorType};
use tokio::sync::mpsc;

use crate::error::ExportError;
use crate::io::aws::SdkFailure;
use crate::io::items::Item;
use crate::model::time::now_ms;
use crate::model::{ExportViewType, StreamInfo, TableInfo};

/// How long a DynamoDB stream keeps a record.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// A window must start this much inside the retention: records near its edge may be trimmed
/// while the export reads.
pub const RETENTION_MARGIN: Duration = Duration::from_secs(5 * 60);
/// An open shard counts as caught up at an empty `GetRecords` once the clock is this far past
/// the window's end.
pub const CATCH_UP_GRACE: Duration = Duration::from_secs(2);
/// Pause between polls of an open shard that has nothing new yet.
const OPEN_SHARD_POLL: Duration = Duration::from_millis(500);
/// Empty pages in a row, once past the grace, before an open shard counts as caught up: an
/// empty `GetRecords` does not mean the end (AWS: "it might take multiple calls to get to a
/// portion of the shard that contains stream records"), each call moves the iterator on.
const EMPTY_PAGES_TO_CATCH_UP: u32 = 8;
/// Pause after an empty page of a closed shard that has more pages.
const CLOSED_SHARD_POLL: Duration = Duration::from_millis(100);

/// A stream's view type (`StreamViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamView {
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOldImages,
}

impl StreamView {
    pub fn aws_name(self) -> &'static str {
        match self {
            StreamView::KeysOnly => "KEYS_ONLY",
            StreamView::NewImage => "NEW_IMAGE",
            StreamView::OldImage => "OLD_IMAGE",
            StreamView::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }

    /// Whether records of this view carry the images `view` needs.
    pub fn serves(self, view: ExportViewType) -> bool {
        match view {
            ExportViewType::NewImage => matches!(self, StreamView::NewImage | StreamView::NewAndOldImages),
            ExportViewType::NewAndOldImages => self == StreamView::NewAndOldImages,
        }
    }
}

/// The table's current stream, from DescribeTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStream {
    pub arn: String,
    pub view: StreamView,
}

/// A stream record's `eventName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeEvent {
    Insert,
    Modify,
    Remove,
}

/// One stream record in the window, its values as the DynamoDB client has them.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub event: ChangeEvent,
    /// `ApproximateCreationDateTime`, microseconds since the epoch.
    pub micros: u64,
    pub keys: Item,
    pub new_image: Option<Item>,
    pub old_image: Option<Item>,
}

/// What the reader did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub shards: u64,
    pub requests: u64,
    /// Records read, in the window or not.
    pub records_read: u64,
    /// Records in the window.
    pub records_kept: u64,
}

/// What a stream is read for, which decides the images it must carry and the words of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUse {
    /// An incremental export of this view.
    Incremental(ExportViewType),
    /// The consistent mode of a full export: the new image of every change.
    Consistent,
}

impl StreamUse {
    fn purpose(self) -> &'static str {
        match self {
            StreamUse::Incremental(_) => "an incremental export",
            StreamUse::Consistent => "a consistent export",
        }
    }
}

/// The table's stream, as its description (the run's one DescribeTable) reports it, checked
/// against what it is read for.
pub fn table_stream(info: &TableInfo, purpose: StreamUse) -> Result<TableStream, ExportError> {
    let table = info.table_name.as_str();
    let view = match purpose {
        StreamUse::Incremental(view) => view,
        StreamUse::Consistent => ExportViewType::NewImage,
    };
    let unavailable = |message: String| ExportError::StreamUnavailable {
        table: table.to_string(),
        purpose: purpose.purpose(),
        message,
    };
    let Some(StreamInfo { arn, view_type }) = info.stream.clone() else {
        return Err(unavailable(format!(
            "it has no DynamoDB stream, which {} reads its changes from; enable one \
             (aws dynamodb update-table --table-name {table} --stream-specification \
             StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES): it serves changes made from then on",
            purpose.purpose()
        )));
    };
    let stream_view = match view_type.as_deref() {
        Some("KEYS_ONLY") => StreamView::KeysOnly,
        Some("NEW_IMAGE") => StreamView::NewImage,
        Some("OLD_IMAGE") => StreamView::OldImage,
        Some("NEW_AND_OLD_IMAGES") => StreamView::NewAndOldImages,
        Some(other) => return Err(unavailable(format!("its stream's view type {other} is unknown"))),
        None => return Err(unavailable("its stream reports no view type".into())),
    };
    if !stream_view.serves(view) {
        let needs = match view {
            ExportViewType::NewImage => "NEW_IMAGE or NEW_AND_OLD_IMAGES",
            ExportViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        };
        return Err(unavailable(match purpose {
            StreamUse::Incremental(_) => format!(
                "its stream's view type is {}, and {} {} needs a stream of {needs}{}",
                stream_view.aws_name(),
                crate::model::Field::View,
                match view {
                    ExportViewType::NewImage => "new-image",
                    ExportViewType::NewAndOldImages => "new-and-old-images",
                },
                match stream_view {
                    StreamView::NewImage => format!(" ({} new-image works with it)", crate::model::Field::View),
                    _ => String::new(),
                }
            ),
            StreamUse::Consistent => {
                format!("its stream's view type is {}: the state at a cut needs {needs}", stream_view.aws_name())
            }
        }));
    }
    Ok(TableStream { arn, view: stream_view })
}

/// Whether the stream can serve `[from_ms, to_ms)` at `now_ms`: the window is in the past, not
/// empty, begins no earlier than the stream (created at `created_ms`, when known), and within
/// its retention. The error says what the stream can serve.
pub fn check_window(from_ms: u64, to_ms: u64, now_ms: u64, created_ms: Option<u64>) -> Result<(), String> {
    let time = |ms: u64| crate::model::time::cli_timestamp(ms);
    if to_ms <= from_ms {
        return Err("its end is not after its start".into());
    }
    if to_ms > now_ms {
        return Err(format!("its end is in the future (it is now {}); the end must be in the past", time(now_ms)));
    }
    let retained_from = now_ms.saturating_sub((RETENTION - RETENTION_MARGIN).as_millis() as u64);
    let servable_from = created_ms.map_or(retained_from, |created| created.max(retained_from));
    if from_ms < servable_from {
        let mut why = Vec::new();
        if from_ms < retained_from {
            why.push(format!(
                "a stream keeps changes for 24 hours (less a {}-minute margin for the read)",
                RETENTION_MARGIN.as_secs() / 60
            ));
        }
        if let Some(created) = created_ms.filter(|created| from_ms < *created) {
            why.push(format!("the table's stream was created at {}, and has no changes from before", time(created)));
        }
        return Err(format!("{}: the stream can serve windows from {} on", why.join("; "), time(servable_from)));
    }
    Ok(())
}

/// A stream's shard, as DescribeStream lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamShard {
    pub id: String,
    pub parent: Option<String>,
    /// Closed: it has an ending sequence number and gets no more records.
    pub closed: bool,
}

/// Shards ordered so that each comes after its parent (when the parent is listed).
pub fn parents_first(shards: Vec<StreamShard>) -> Vec<StreamShard> {
    let ids: HashSet<String> = shards.iter().map(|s| s.id.clone()).collect();
    let mut placed: HashSet<String> = HashSet::new();
    let mut pending = shards;
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let (ready, waiting): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|s| s.parent.as_ref().is_none_or(|parent| !ids.contains(parent) || placed.contains(parent)));
        if ready.is_empty() {
            // A cycle cannot happen in a real stream; read what is left in the order listed.
            ordered.extend(waiting);
            break;
        }
        placed.extend(ready.iter().map(|s| s.id.clone()));
        ordered.extend(ready);
        pending = waiting;
    }
    ordered
}

/// A stream and a client to read it.
#[derive(Clone, Debug)]
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    /// The table, for messages.
    table: String,
}

/// What DescribeStream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFacts {
    pub shards: Vec<StreamShard>,
    /// When the stream was created (ms), when the server says.
    pub created_ms: Option<u64>,
}

impl StreamReader {
    pub fn new(client: aws_sdk_dynamodbstreams::Client, arn: String, table: String) -> Self {
        Self { client, arn, table }
    }

    fn error<E>(&self, operation: &'static str, error: &E) -> ExportError
    where
        E: aws_sdk_dynamodbstreams::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let failure = SdkFailure::of(error);
        failure.into_export_error(format!("dynamodb:{operation} on {}", self.arn), |message| ExportError::DynamoDb {
            operation,
            table: self.table.clone(),
            message: format!("{}: {message}", self.arn),
        })
    }

    /// DescribeStream, every page.
    pub async fn describe(&self) -> Result<StreamFacts, ExportError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        let mut created_ms = None;
        loop {
            let output = self
                .client
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| self.error("DescribeStream", &e))?;
            let Some(description) = output.stream_description else { break };
            created_ms = created_ms
                .or_else(|| description.creation_request_date_time.as_ref().and_then(epoch_ms))
                .or_else(|| description.stream_label.as_deref().and_then(crate::model::time::parse_stream_label));
            for shard in description.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                let closed = shard.sequence_number_range.as_ref().is_some_and(|r| r.ending_sequence_number.is_some());
                shards.push(StreamShard { id, parent: shard.parent_shard_id, closed });
            }
            match description.last_evaluated_shard_id {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        Ok(StreamFacts { shards, created_ms })
    }

    /// Reads the records of `[from_ms, to_ms)` from every shard into `pages`, shards in
    /// `facts` first (parents before children), then any that appeared meanwhile.
    pub async fn read(
        &self,
        facts: StreamFacts,
        from_ms: u64,
        to_ms: u64,
        pages: &mpsc::Sender<Vec<ChangeRecord>>,
        stop: &AtomicBool,
    ) -> Result<ReadStats, ExportError> {
        let mut stats = ReadStats::default();
        let mut seen = HashSet::new();
        let mut shards = facts.shards;
        loop {
            let new: Vec<StreamShard> = shards.into_iter().filter(|s| !seen.contains(&s.id)).collect();
            if new.is_empty() {
                break;
            }
            for shard in parents_first(new) {
                seen.insert(shard.id.clone());
                self.read_shard(&shard, from_ms, to_ms, pages, stop, &mut stats).await?;
                stats.shards += 1;
            }
            // A shard split while we read leaves children we have not read yet.
            shards = self.describe().await?.shards;
        }
        Ok(stats)
    }

    async fn iterator(&self, shard: &StreamShard, after: Option<&str>) -> Result<Option<String>, ExportError> {
        let request = self.client.get_shard_iterator().stream_arn(&self.arn).shard_id(&shard.id);
        let request = match after {
            Some(sequence) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(sequence)
            }
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        match request.send().await {
            Ok(output) => Ok(output.shard_iterator),
            Err(error) => Err(match error.as_service_error() {
                Some(GetShardIteratorError::TrimmedDataAccessException(_)) => self.trimmed(),
                _ => self.error("GetShardIterator", &error),
            }),
        }
    }

    fn trimmed(&self) -> ExportError {
        ExportError::StreamUnavailable {
            table: self.table.clone(),
            purpose: "the changes it needs",
            message: format!(
                "the stream {} trimmed records while they were being read (TrimmedDataAccessException): they \
                 are older than its 24-hour retention",
                self.arn
            ),
        }
    }

    async fn read_shard(
        &self,
        shard: &StreamShard,
        from_ms: u64,
        to_ms: u64,
        pages: &mpsc::Sender<Vec<ChangeRecord>>,
        stop: &AtomicBool,
        stats: &mut ReadStats,
    ) -> Result<(), ExportError> {
        let (from_micros, to_micros) = (from_ms.saturating_mul(1000), to_ms.saturating_mul(1000));
        let mut iterator = self.iterator(shard, None).await?;
        let mut last_sequence: Option<String> = None;
        let mut empty_in_a_row = 0;
        while let Some(current) = iterator.take() {
            if stop.load(Ordering::Relaxed) {
                return Err(ExportError::Interrupted);
            }
            stats.requests += 1;
            let output = match self.client.get_records().shard_iterator(current).send().await {
                Ok(output) => output,
                Err(error) => match error.as_service_error() {
                    // Iterators live 15 minutes: carry on after the last record read.
                    Some(GetRecordsError::ExpiredIteratorException(_)) => {
                        iterator = self.iterator(shard, last_sequence.as_deref()).await?;
                        continue;
                    }
                    Some(GetRecordsError::TrimmedDataAccessException(_)) => return Err(self.trimmed()),
                    _ => return Err(self.error("GetRecords", &error)),
                },
            };
            let records = output.records.unwrap_or_default();
            let empty = records.is_empty();
            if !empty {
                empty_in_a_row = 0;
            }
            let mut page = Vec::new();
            let mut past_end = false;
            for record in records {
                stats.records_read += 1;
                let stream_record = record.dynamodb.as_ref();
                last_sequence = stream_record.and_then(|r| r.sequence_number.clone()).or(last_sequence);
                let micros = stream_record
                    .and_then(|r| r.approximate_creation_date_time.as_ref())
                    .and_then(epoch_micros)
                    .ok_or_else(|| self.bad_record(&shard.id, "it has no usable ApproximateCreationDateTime"))?;
                if micros >= to_micros {
                    past_end = true;
                    break;
                }
                if micros < from_micros {
                    continue;
                }
                page.push(change_record(record, micros).map_err(|why| self.bad_record(&shard.id, &why))?);
            }
            if !page.is_empty() {
                stats.records_kept += page.len() as u64;
                pages.send(page).await.map_err(|_| ExportError::Cancelled)?;
            }
            if past_end {
                break;
            }
            iterator = output.next_shard_iterator;
            if empty && iterator.is_some() {
                if !shard.closed {
                    empty_in_a_row += 1;
                    if now_ms() >= to_ms.saturating_add(CATCH_UP_GRACE.as_millis() as u64) {
                        if empty_in_a_row >= EMPTY_PAGES_TO_CATCH_UP {
                            break;
                        }
                        // Past the grace: move on through the shard at once.
                        continue;
                    }
                    tokio::time::sleep(OPEN_SHARD_POLL).await;
                } else {
                    tokio::time::sleep(CLOSED_SHARD_POLL).await;
                }
            }
        }
        tracing::debug!(shard = %shard.id, closed = shard.closed, "stream shard read");
        Ok(())
    }

    fn bad_record(&self, shard: &str, why: &str) -> ExportError {
        ExportError::DynamoDb {
            operation: "GetRecords",
            table: self.table.clone(),
            message: format!("a record of shard {shard} of {} is unusable: {why}", self.arn),
        }
    }
}

/// Microseconds since the epoch, to the nearest microsecond: the SDK reads the server's epoch
/// seconds through an `f64`, which can land a fraction of a microsecond below the value sent.
pub fn epoch_micros(time: &DateTime) -> Option<u64> {
    let secs = u64::try_from(time.secs()).ok()?;
    let micros = (u64::from(time.subsec_nanos()) + 500) / 1000;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

fn epoch_ms(time: &DateTime) -> Option<u64> {
    epoch_micros(time).map(|micros| micros / 1000)
}

fn change_record(record: aws_sdk_dynamodbstreams::types::Record, micros: u64) -> Result<ChangeRecord, String> {
    let event = match record.event_name {
        Some(OperationType::Insert) => ChangeEvent::Insert,
        Some(OperationType::Modify) => ChangeEvent::Modify,
        Some(OperationType::Remove) => ChangeEvent::Remove,
        other => return Err(format!("its eventName {other:?} is not INSERT, MODIFY or REMOVE")),
    };
    let stream_record = record.dynamodb.ok_or("it has no dynamodb part")?;
    let keys = stream_record.keys.filter(|k| !k.is_empty()).ok_or("it has no Keys")?;
    Ok(ChangeRecord {
        event,
        micros,
        keys: item(keys)?,
        new_image: stream_record.new_image.map(item).transpose()?,
        old_image: stream_record.old_image.map(item).transpose()?,
    })
}

fn item(values: HashMap<String, StreamValue>) -> Result<Item, String> {
    values.into_iter().map(|(name, value)| Ok((name, attribute(value)?))).collect()
}

/// A stream's AttributeValue as the DynamoDB client's (the same model, another crate).
fn attribute(value: StreamValue) -> Result<AttributeValue, String> {
    Ok(match value {
        StreamValue::S(s) => AttributeValue::S(s),
        StreamValue::N(n) => AttributeValue::N(n),
        StreamValue::B(b) => AttributeValue::B(b),
        StreamValue::Bool(b) => AttributeValue::Bool(b),
        StreamValue::Null(b) => AttributeValue::Null(b),
        StreamValue::Ss(set) => AttributeValue::Ss(set),
        StreamValue::Ns(set) => AttributeValue::Ns(set),
        StreamValue::Bs(set) => AttributeValue::Bs(set),
        StreamValue::L(list) => AttributeValue::L(list.into_iter().map(attribute).collect::<Result<_, _>>()?),
        StreamValue::M(map) => AttributeValue::M(item(map)?),
        other => return Err(format!("an AttributeValue type this version does not know ({other:?})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 60 * 60 * 1000;
    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn views_serve_what_their_images_allow() {
        use ExportViewType::*;
        assert!(StreamView::NewAndOldImages.serves(NewAndOldImages) && StreamView::NewAndOldImages.serves(NewImage));
        assert!(StreamView::NewImage.serves(NewImage) && !StreamView::NewImage.serves(NewAndOldImages));
        for view in [StreamView::KeysOnly, StreamView::OldImage] {
            assert!(!view.serves(NewImage) && !view.serves(NewAndOldImages));
        }
    }

    #[test]
    fn a_window_must_be_past_nonempty_and_within_the_stream() {
        assert_eq!(check_window(NOW - HOUR_MS, NOW, NOW, Some(NOW - 2 * HOUR_MS)), Ok(()));
        assert_eq!(check_window(NOW - 23 * HOUR_MS, NOW - HOUR_MS, NOW, None), Ok(()));
        let refused = [
            (check_window(NOW - HOUR_MS, NOW - HOUR_MS, NOW, None), "not after its start"),
            (check_window(NOW - HOUR_MS, NOW + 1, NOW, None), "in the future"),
            (check_window(NOW - 3 * HOUR_MS, NOW, NOW, Some(NOW - 2 * HOUR_MS)), "was created at"),
            (check_window(NOW - 24 * HOUR_MS, NOW, NOW, None), "24 hours"),
            (check_window(NOW - 24 * HOUR_MS + 60_000, NOW, NOW, Some(0)), "24 hours"),
        ];
        for (result, expected) in refused {
            let message = result.unwrap_err();
            assert!(message.contains(expected), "{expected:?} in {message}");
        }
        let message = check_window(NOW - 3 * HOUR_MS, NOW, NOW, Some(NOW - 2 * HOUR_MS)).unwrap_err();
        assert!(message.contains("from 2023-11-14T20:13:20"), "{message}");
    }

    #[test]
    fn parents_come_before_children_whatever_the_listing_order() {
        let shard = |id: &str, parent: Option<&str>| StreamShard {
            id: id.into(),
            parent: parent.map(str::to_string),
            closed: false,
        };
        let ordered = parents_first(vec![
            shard("c", Some("b")),
            shard("b", Some("a")),
            shard("x", Some("trimmed")),
            shard("a", None),
            shard("d", Some("a")),
        ]);
        let ids: Vec<&str> = ordered.iter().map(|s| s.id.as_str()).collect();
        let position = |id: &str| ids.iter().position(|i| *i == id).unwrap();
        assert_eq!(ids.len(), 5);
        assert!(position("a") < position("b") && position("b") < position("c") && position("a") < position("d"));
    }

    #[test]
    fn times_round_to_the_microsecond_the_server_meant() {
        // 1795636328.695 through an f64 lands just below .695.
        let time = DateTime::from_secs_f64(1_795_636_328.695);
        assert_eq!(epoch_micros(&time), Some(1_795_636_328_695_000));
        assert_eq!(epoch_micros(&DateTime::from_secs_and_nanos(5, 999_999_600)), Some(6_000_000));
        assert_eq!(epoch_micros(&DateTime::from_secs(-1)), None);
        assert_eq!(crate::model::time::parse_stream_label("2015-05-11T21:21:33.291"), Some(1_431_379_293_291));
    }
}

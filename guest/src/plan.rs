//! Step 2: splitting the table into parallel Scan segments.

use crate::bindings::exports::ddb_export::core::shard_plan::Error;
use crate::wit::{Plan, PlanRequest, Shard, TableDescription};

/// DynamoDB's limit on `TotalSegments`.
pub const MAX_SEGMENTS: u32 = 1_000_000;
/// Most segments an automatic plan uses: beyond this, per-segment overhead outweighs balance.
pub const MAX_AUTO_SEGMENTS: u32 = 4_096;
/// Data per segment an automatic plan aims for on a large table.
pub const TARGET_SEGMENT_BYTES: u64 = 128 * 1024 * 1024;
/// A segment below this size is mostly request overhead (a Scan page holds up to 1 MB).
pub const MIN_SEGMENT_BYTES: u64 = 1024 * 1024;

/// Plans the segments. See `shard-plan.create` in the WIT for the contract.
pub fn create(table: &TableDescription, request: &PlanRequest) -> Result<Plan, Error> {
    if request.parallelism == 0 {
        return Err(Error::InvalidRequest("parallelism must be at least 1".into()));
    }
    let (total, rationale) = match request.segments {
        Some(0) => return Err(Error::InvalidRequest("segments must be at least 1".into())),
        Some(n) if n > MAX_SEGMENTS => {
            return Err(Error::InvalidRequest(format!(
                "segments must be at most {MAX_SEGMENTS} (DynamoDB's limit), not {n}"
            )));
        }
        Some(n) => (n, format!("{n} segments, as requested")),
        None => automatic(table, request.parallelism),
    };
    let shards = (0..total).map(|segment| Shard { id: segment, segment, total_segments: total }).collect();
    Ok(Plan { shards, rationale })
}

fn automatic(table: &TableDescription, parallelism: u32) -> (u32, String) {
    let size = table.table_size_bytes;
    if size == 0 {
        return (parallelism, format!("{parallelism} segments (one per lane): the server reports no table size"));
    }
    // Enough segments to keep every lane busy, unless the table is so small that most of them
    // would scan nothing; more on a large table so no segment is much slower than the rest.
    let by_size = size.div_ceil(TARGET_SEGMENT_BYTES);
    let worth_splitting = size.div_ceil(MIN_SEGMENT_BYTES).max(1);
    let lanes = u64::from(parallelism).min(worth_splitting);
    let total = by_size.max(lanes).clamp(1, u64::from(MAX_AUTO_SEGMENTS));
    let total = u32::try_from(total).unwrap_or(MAX_AUTO_SEGMENTS);
    (total, format!("{total} segments for {size} bytes and {} items over {parallelism} lanes", table.item_count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::Billing;

    fn table(size: u64, items: u64) -> TableDescription {
        TableDescription {
            table_name: "t".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t".into(),
            table_id: None,
            item_count: items,
            table_size_bytes: size,
            billing: Billing::OnDemand,
        }
    }

    fn total(size: u64, items: u64, segments: Option<u32>, parallelism: u32) -> u32 {
        let plan = create(&table(size, items), &PlanRequest { segments, parallelism }).unwrap();
        let total = plan.shards.len() as u32;
        for (i, shard) in plan.shards.iter().enumerate() {
            assert_eq!((shard.id, shard.segment, shard.total_segments), (i as u32, i as u32, total));
        }
        total
    }

    #[test]
    fn requested_segments_are_exact() {
        assert_eq!(total(10 << 30, 1, Some(3), 8), 3);
        assert_eq!(total(0, 0, Some(1), 8), 1);
    }

    #[test]
    fn falls_back_to_parallelism_when_the_server_reports_no_size() {
        assert_eq!(total(0, 0, None, 6), 6);
        assert_eq!(total(0, 5_000, None, 6), 6);
    }

    #[test]
    fn small_tables_are_not_over_segmented() {
        assert_eq!(total(100, 1, None, 8), 1);
        assert_eq!(total(3 * MIN_SEGMENT_BYTES, 3_000, None, 8), 3);
        assert_eq!(total(64 * MIN_SEGMENT_BYTES, 64_000, None, 8), 8);
    }

    #[test]
    fn large_tables_get_a_segment_per_target_size_up_to_the_cap() {
        assert_eq!(total(100 * TARGET_SEGMENT_BYTES, 1, None, 8), 100);
        assert_eq!(total(u64::MAX / 2, 1, None, 8), MAX_AUTO_SEGMENTS);
    }

    #[test]
    fn refuses_impossible_requests() {
        let t = table(0, 0);
        for (segments, parallelism) in [(Some(0), 1), (Some(MAX_SEGMENTS + 1), 1), (None, 0)] {
            assert!(matches!(create(&t, &PlanRequest { segments, parallelism }), Err(Error::InvalidRequest(_))));
        }
    }
}

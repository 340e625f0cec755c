//! The steps run natively against a fake DynamoDB and a fake S3 (in memory, with ETags and
//! conditional writes), on a fake clock: plan, shards in bounded calls, finalize, and what each
//! refuses. The end-to-end tests run the same component on the real stand-ins.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::time::Duration;

use ddb_export_state_format::keys;
use ddb_export_state_format::lease::LeaseRecord;

use crate::bindings::ddb_export::step::dynamodb::{Billing, KeyAttribute, KeyType};
use crate::io::{
    AwsError, Bucket, Condition, Io, ListedObject, ObjectListing, ScanPage, ScanRequest, StoredObject, TableFacts,
};
use crate::{
    Budget, Error, ExportFormat, ExportPlan, FinalizeRequest, PlanRequest, ShardProgress, ShardRequest, finalize, plan,
    shard,
};

/// The digest the unit tests' build of the step component claims for its encoder.
pub const COMPONENT_DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const TABLE: &str = "orders";
const BUCKET: &str = "exports";

/// DynamoDB and S3 in memory.
struct Fake {
    /// The table's items, as DynamoDB JSON, keyed by `pk`.
    items: Vec<(String, String)>,
    /// Items per Scan page.
    page_items: usize,
    objects: RefCell<BTreeMap<String, (Vec<u8>, String)>>,
    /// Scans to fail (transiently) before answering again.
    failing_scans: Cell<u32>,
    scans: Cell<u32>,
    puts: Cell<u32>,
    /// `get-objects` calls.
    gets_many: Cell<u32>,
    /// List objects without their ETags, as some S3 stand-ins do.
    blank_listed_etags: Cell<bool>,
    now_ms: Cell<u64>,
    etags: Cell<u64>,
}

impl Fake {
    fn new(count: usize) -> Self {
        let items = (0..count)
            .map(|i| {
                let pk = format!("item-{i:05}");
                // Hex of a pseudo-random walk: it compresses about as real text does.
                let mut state = i as u64 + 1;
                let pad: String = (0..200)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        char::from_digit((state >> 60) as u32, 16).unwrap_or('0')
                    })
                    .collect();
                let json = format!(r#"{{"pk":{{"S":"{pk}"}},"n":{{"N":"{i}"}},"pad":{{"S":"{pad}"}}}}"#);
                (pk, json)
            })
            .collect();
        Self {
            items,
            page_items: 7,
            objects: RefCell::default(),
            failing_scans: Cell::new(0),
            scans: Cell::new(0),
            puts: Cell::new(0),
            gets_many: Cell::new(0),
            blank_listed_etags: Cell::new(false),
            now_ms: Cell::new(1_700_000_000_000),
            etags: Cell::new(0),
        }
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.borrow().get(key).map(|(body, _)| body.clone())
    }

    fn keys_under(&self, prefix: &str) -> Vec<String> {
        self.objects.borrow().keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    /// Segment `segment`'s items, in key order.
    fn segment(&self, segment: u32, total: u32) -> Vec<&(String, String)> {
        self.items.iter().enumerate().filter(|(i, _)| *i as u32 % total == segment).map(|(_, item)| item).collect()
    }
}

impl Io for Fake {
    fn describe_table(&self, table: &str) -> Result<TableFacts, AwsError> {
        if table != TABLE {
            return Err(AwsError::Refused(format!("ResourceNotFoundException: table {table} not found")));
        }
        Ok(TableFacts {
            table_name: TABLE.into(),
            table_arn: format!("arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"),
            table_id: Some("0a1b2c3d-0000-4000-8000-000000000000".into()),
            item_count: self.items.len() as u64,
            size_bytes: 0,
            billing: Billing::OnDemand,
            key: vec![KeyAttribute { name: "pk".into(), attribute_type: Some(KeyType::S) }],
            indexes: vec![],
            region: "us-east-1".into(),
        })
    }

    fn scan(&self, request: &ScanRequest) -> Result<ScanPage, AwsError> {
        self.scans.set(self.scans.get() + 1);
        if self.failing_scans.get() > 0 {
            self.failing_scans.set(self.failing_scans.get() - 1);
            return Err(AwsError::Transient("ProvisionedThroughputExceededException".into()));
        }
        if request.filter_expression.as_deref() == Some("bad") {
            return Err(AwsError::Refused("ValidationException: Invalid FilterExpression".into()));
        }
        let segment = self.segment(request.segment, request.total_segments);
        let start = match &request.exclusive_start_key {
            Some(key) => {
                let key: serde_json::Value = serde_json::from_str(key).unwrap();
                let pk = key["pk"]["S"].as_str().unwrap();
                segment.iter().position(|(k, _)| k == pk).unwrap() + 1
            }
            None => 0,
        };
        let limit = request.limit.map_or(self.page_items, |l| l as usize).min(self.page_items);
        let page = &segment[start.min(segment.len())..(start + limit).min(segment.len())];
        let items = format!("[{}]", page.iter().map(|(_, json)| json.as_str()).collect::<Vec<_>>().join(","));
        let more = start + page.len() < segment.len();
        Ok(ScanPage {
            items: items.into_bytes(),
            count: page.len() as u32,
            last_evaluated_key: page.last().filter(|_| more).map(|(pk, _)| format!(r#"{{"pk":{{"S":"{pk}"}}}}"#)),
            consumed_capacity: 0.0,
        })
    }

    fn check_bucket(&self, bucket: &Bucket) -> Result<(), AwsError> {
        match bucket.name == BUCKET {
            true => Ok(()),
            false => Err(AwsError::Refused(format!("NoSuchBucket: {}", bucket.name))),
        }
    }

    fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<StoredObject>, AwsError> {
        assert_eq!(bucket.name, BUCKET);
        Ok(self.objects.borrow().get(key).map(|(body, etag)| StoredObject { body: body.clone(), etag: etag.clone() }))
    }

    fn get_many(&self, bucket: &Bucket, keys: &[String]) -> Result<Vec<Option<StoredObject>>, AwsError> {
        assert!(keys.len() <= crate::io::GET_MANY);
        self.gets_many.set(self.gets_many.get() + 1);
        keys.iter().map(|key| self.get(bucket, key)).collect()
    }

    fn put(&self, bucket: &Bucket, key: &str, body: &[u8], condition: &Condition) -> Result<Option<String>, AwsError> {
        assert_eq!(bucket.name, BUCKET);
        self.puts.set(self.puts.get() + 1);
        let mut objects = self.objects.borrow_mut();
        let holds = match (condition, objects.get(key)) {
            (Condition::Always, _) | (Condition::Absent, None) => true,
            (Condition::Matches(etag), Some((_, now))) => etag == now,
            _ => false,
        };
        if !holds {
            return Ok(None);
        }
        self.etags.set(self.etags.get() + 1);
        let etag = format!("etag-{}", self.etags.get());
        objects.insert(key.to_string(), (body.to_vec(), etag.clone()));
        Ok(Some(etag))
    }

    fn delete(&self, bucket: &Bucket, key: &str) -> Result<(), AwsError> {
        assert_eq!(bucket.name, BUCKET);
        self.objects.borrow_mut().remove(key);
        Ok(())
    }

    fn delete_many(&self, bucket: &Bucket, keys: &[String]) -> Result<(), AwsError> {
        assert!(keys.len() <= crate::io::GET_MANY);
        keys.iter().try_for_each(|key| self.delete(bucket, key))
    }

    fn list(&self, bucket: &Bucket, prefix: &str, continuation: Option<&str>) -> Result<ObjectListing, AwsError> {
        assert_eq!(bucket.name, BUCKET);
        // Pages of 3, to exercise the continuation.
        let objects = self.objects.borrow();
        let mut after = objects
            .range(continuation.unwrap_or_default().to_string()..)
            .filter(|(k, _)| k.starts_with(prefix) && continuation.is_none_or(|c| k.as_str() > c));
        let page: Vec<ListedObject> = after
            .by_ref()
            .take(3)
            .map(|(key, (_, etag))| ListedObject {
                key: key.clone(),
                etag: if self.blank_listed_etags.get() { String::new() } else { etag.clone() },
            })
            .collect();
        let continuation = after.next().and(page.last().map(|o| o.key.clone()));
        Ok(ObjectListing { objects: page, continuation })
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn elapsed(&self) -> Duration {
        Duration::from_millis(self.now_ms.get())
    }

    fn sleep(&self, duration: Duration) {
        self.now_ms.set(self.now_ms.get() + duration.as_millis() as u64);
    }
}

fn plan_request(token: &str) -> PlanRequest {
    PlanRequest {
        table: TABLE.into(),
        s3_bucket: BUCKET.into(),
        s3_prefix: Some("fanned".into()),
        s3_bucket_owner: None,
        s3_sse_kms_key_id: None,
        export_format: ExportFormat::DynamodbJson,
        client_token: token.into(),
        segments: Some(3),
        parallelism: None,
        target_file_bytes: Some(1500),
        compression_level: None,
        filter: None,
    }
}

fn shard_request(plan: &ExportPlan, shard: u32, max_data_files: Option<u32>) -> ShardRequest {
    ShardRequest {
        export_location: plan.export_location.clone(),
        expected_bucket_owner: None,
        shard,
        budget: Budget { max_data_files, max_millis: None },
        task: None,
    }
}

fn finalize_request(plan: &ExportPlan) -> FinalizeRequest {
    FinalizeRequest { export_location: plan.export_location.clone(), expected_bucket_owner: None, task: None }
}

/// Runs `shard` in calls of one data file each until it is done: the calls it took.
fn run_to_end(fake: &Fake, plan: &ExportPlan, shard: u32) -> (u32, ShardProgress) {
    for calls in 1..1000 {
        let progress = shard::run(fake, &shard_request(plan, shard, Some(1))).unwrap();
        assert!(progress.data_files_this_call <= 1, "a call stores at most its budget");
        if progress.done {
            return (calls, progress);
        }
    }
    panic!("shard {shard} never finished")
}

/// Every item line of the export's data files, as listed by its manifest, decompressed.
fn exported_items(fake: &Fake, plan: &ExportPlan) -> Vec<String> {
    let root = plan.export_location.trim_start_matches(&format!("s3://{BUCKET}/")).to_string();
    let summary: serde_json::Value =
        serde_json::from_slice(&fake.object(&format!("{root}/manifest-summary.json")).unwrap()).unwrap();
    let listing = fake.object(summary["manifestFilesS3Key"].as_str().unwrap()).unwrap();
    let mut lines = Vec::new();
    for line in String::from_utf8(listing).unwrap().lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = fake.object(entry["dataFileS3Key"].as_str().unwrap()).unwrap();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text.lines().count() as u64, entry["itemCount"].as_u64().unwrap());
        lines.extend(text.lines().map(str::to_string));
    }
    assert_eq!(summary["itemCount"].as_u64().unwrap(), lines.len() as u64);
    lines
}

#[test]
fn plan_shards_in_bounded_calls_and_finalize_export_every_item_once() {
    let fake = Fake::new(100);
    let plan = plan::run(&fake, &plan_request("run-1")).unwrap();
    assert_eq!(plan.shards, [0, 1, 2]);
    assert!(!plan.completed);
    let root = plan.export_location.trim_start_matches("s3://exports/").to_string();
    assert!(root.starts_with("fanned/AWSDynamoDB/"), "{root}");
    assert!(fake.object(&format!("{root}/_started")).is_some());
    assert!(fake.object(&keys::run_key(&root)).is_some());
    assert!(fake.keys_under(&format!("{root}/data/")).is_empty(), "plan writes no data file");

    for shard in [0, 1, 2] {
        let (calls, progress) = run_to_end(&fake, &plan, shard);
        assert!(calls > 2, "each call stores one file: shard {shard} took {calls} calls");
        assert_eq!(progress.item_count, Some(fake.segment(shard, 3).len() as u64));
        // A finished shard is not read again.
        let scans = fake.scans.get();
        let again = shard::run(&fake, &shard_request(&plan, shard, Some(1))).unwrap();
        assert!(again.done && again.data_files_this_call == 0);
        assert_eq!(fake.scans.get(), scans);
    }
    let summary = finalize::run(&fake, &finalize_request(&plan)).unwrap();
    assert_eq!(summary.item_count, 100);
    assert_eq!(fake.gets_many.get(), 1, "the checkpoints are read in one get-objects call");
    assert!(!summary.already_complete);
    let exported = exported_items(&fake, &plan);
    assert_eq!(exported.len(), 100);
    let parsed = |line: &str| serde_json::from_str::<serde_json::Value>(line).unwrap();
    let exported: HashSet<String> = exported.iter().map(|line| parsed(line).to_string()).collect();
    let expected: HashSet<String> =
        fake.items.iter().map(|(_, json)| parsed(&format!(r#"{{"Item":{json}}}"#)).to_string()).collect();
    assert!(exported == expected, "every item once, as it is in the table");
    assert!(fake.keys_under(&keys::shards_prefix(&root)).is_empty(), "checkpoints removed");
    assert!(fake.keys_under(&keys::leases_prefix(&root)).is_empty(), "leases released");
    assert!(fake.object(&keys::run_key(&root)).is_some(), "run.json stays for the token");

    // Run again, every step says the export is complete and writes nothing.
    let puts = fake.puts.get();
    let again = finalize::run(&fake, &finalize_request(&plan)).unwrap();
    assert!(again.already_complete && again.item_count == 100 && again.data_files == summary.data_files);
    let replanned = plan::run(&fake, &plan_request("run-1")).unwrap();
    assert!(replanned.completed && replanned.export_id == plan.export_id);
    let progress = shard::run(&fake, &shard_request(&plan, 1, None)).unwrap();
    assert!(progress.done && progress.item_count.is_none());
    assert_eq!(fake.puts.get(), puts, "a complete export is written to no more");
    assert!(fake.keys_under(&format!("{root}/data/")).len() as u64 == summary.data_files);
}

#[test]
fn one_token_one_export_and_other_settings_are_refused_by_name() {
    let fake = Fake::new(10);
    let first = plan::run(&fake, &plan_request("tok")).unwrap();
    fake.sleep(Duration::from_secs(5));
    let second = plan::run(&fake, &plan_request("tok")).unwrap();
    assert_eq!(
        (&first.export_id, &first.export_location, &first.shards),
        (&second.export_id, &second.export_location, &second.shards),
        "a retried plan is the same plan"
    );
    let other = PlanRequest { target_file_bytes: Some(9999), compression_level: Some(1), ..plan_request("tok") };
    match plan::run(&fake, &other) {
        Err(Error::PermanentRefused(message)) => {
            assert!(message.contains("target-file-bytes: 1500 before, 9999 now"), "{message}");
            assert!(message.contains("compression-level: 6 before, 1 now"), "{message}");
            assert!(!message.contains("ExportRequest"), "named as the request names them: {message}");
        }
        other => panic!("{other:?}"),
    }
    let another = plan::run(&fake, &plan_request("tok-2")).unwrap();
    assert_ne!(another.export_id, first.export_id);
}

#[test]
fn bad_settings_and_a_missing_table_are_refused_before_anything_is_written() {
    let fake = Fake::new(10);
    let cases: [(PlanRequest, &str); 7] = [
        (
            PlanRequest { target_file_bytes: Some(0), ..plan_request("t") },
            "target-file-bytes 0 (one data file per shard)",
        ),
        (PlanRequest { segments: Some(0), ..plan_request("t") }, "segments 0 is not between 1 and 10000"),
        (PlanRequest { compression_level: Some(10), ..plan_request("t") }, "compression-level 10"),
        (PlanRequest { client_token: String::new(), ..plan_request("t") }, "client-token must be 1 to 64"),
        (PlanRequest { s3_bucket_owner: Some("me".into()), ..plan_request("t") }, "s3-bucket-owner \"me\""),
        (PlanRequest { target_file_bytes: Some(1 << 40), ..plan_request("t") }, "target-file-bytes 1099511627776"),
        (PlanRequest { table: "x".into(), ..plan_request("t") }, "table \"x\" is not a table name"),
    ];
    for (request, expected) in cases {
        match plan::run(&fake, &request) {
            Err(Error::PermanentRefused(message)) => assert!(message.contains(expected), "{message}"),
            other => panic!("{expected}: {other:?}"),
        }
    }
    match plan::run(&fake, &PlanRequest { s3_bucket: "elsewhere".into(), ..plan_request("t") }) {
        Err(Error::PermanentBadDestination(message)) => {
            assert!(message.contains("HeadBucket s3://elsewhere/") && message.contains("NoSuchBucket"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match plan::run(&fake, &PlanRequest { table: "missing".into(), ..plan_request("t") }) {
        Err(Error::PermanentBadTable(message)) => assert!(message.contains("ResourceNotFoundException"), "{message}"),
        other => panic!("{other:?}"),
    }
    let filter = crate::ScanFilter {
        filter_expression: Some("bad".into()),
        projection_expression: None,
        expression_attribute_names: vec![],
        expression_attribute_values: vec![],
    };
    match plan::run(&fake, &PlanRequest { filter: Some(filter), ..plan_request("t") }) {
        Err(Error::PermanentBadTable(message)) => assert!(message.contains("refused the filter"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(fake.objects.borrow().is_empty(), "nothing written: {:?}", fake.objects.borrow().keys());
}

#[test]
fn a_shard_resumes_after_a_failed_call_and_transient_scans_are_retried() {
    let fake = Fake::new(150);
    let plan = plan::run(&fake, &plan_request("t")).unwrap();
    shard::run(&fake, &shard_request(&plan, 0, Some(1))).unwrap();
    // Four failures are retried inside the call; a fifth ends it, as transient.
    fake.failing_scans.set(4);
    shard::run(&fake, &shard_request(&plan, 0, Some(1))).unwrap();
    fake.failing_scans.set(5);
    match shard::run(&fake, &shard_request(&plan, 0, Some(1))) {
        Err(Error::Transient(message)) => assert!(message.contains("segment 0 of 3"), "{message}"),
        other => panic!("{other:?}"),
    }
    run_to_end(&fake, &plan, 0);
    run_to_end(&fake, &plan, 1);
    run_to_end(&fake, &plan, 2);
    finalize::run(&fake, &finalize_request(&plan)).unwrap();
    let exported: HashSet<String> = exported_items(&fake, &plan).into_iter().collect();
    assert_eq!(exported.len(), 150, "no item lost or repeated across the failed calls");
}

#[test]
fn a_held_shard_is_refused_unless_the_same_task_retries_it() {
    let fake = Fake::new(30);
    let plan = plan::run(&fake, &plan_request("t")).unwrap();
    let root = plan.export_location.trim_start_matches("s3://exports/").to_string();
    let lease =
        LeaseRecord { owner: "other".into(), renewed_ms: fake.now_ms(), process: None, task: Some("exec-7".into()) };
    let key = keys::shard_lease_key(&root, 1);
    fake.objects.borrow_mut().insert(key.clone(), (serde_json::to_vec(&lease).unwrap(), "e0".into()));
    match shard::run(&fake, &shard_request(&plan, 1, None)) {
        Err(Error::Transient(message)) => {
            assert!(message.contains("shard 1 of export") && message.contains("task \"exec-7\""), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let retry = ShardRequest { task: Some("exec-7".into()), ..shard_request(&plan, 1, None) };
    assert!(shard::run(&fake, &retry).unwrap().done, "the task's retry takes its lease over at once");
    // A live lease lapses after its TTL.
    fake.objects
        .borrow_mut()
        .insert(keys::shard_lease_key(&root, 2), (serde_json::to_vec(&lease).unwrap(), "e1".into()));
    assert!(shard::run(&fake, &shard_request(&plan, 2, None)).is_err());
    fake.sleep(ddb_export_state_format::lease::LEASE_TTL);
    assert!(shard::run(&fake, &shard_request(&plan, 2, None)).unwrap().done);
}

#[test]
fn finalize_writes_nothing_until_every_shard_is_done_and_resets_a_shard_whose_file_changed() {
    let fake = Fake::new(40);
    let plan = plan::run(&fake, &plan_request("t")).unwrap();
    let root = plan.export_location.trim_start_matches("s3://exports/").to_string();
    run_to_end(&fake, &plan, 1);
    match finalize::run(&fake, &finalize_request(&plan)) {
        Err(Error::PermanentShardsUnfinished(unfinished)) => {
            assert_eq!(unfinished.shards, [0, 2]);
            assert!(unfinished.message.contains("shards 0, 2"), "{}", unfinished.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.object(&format!("{root}/manifest-summary.json")).is_none());
    run_to_end(&fake, &plan, 0);
    run_to_end(&fake, &plan, 2);
    // A worker that outlived its lease wrote one of shard 2's files again; a killed attempt left
    // a file no shard recorded.
    let replaced = fake.keys_under(&format!("{root}/data/")).into_iter().next_back().unwrap();
    fake.put(
        &Bucket { name: BUCKET.into(), expected_owner: None, kms_key_id: None },
        &replaced,
        b"x",
        &Condition::Always,
    )
    .unwrap();
    match finalize::run(&fake, &finalize_request(&plan)) {
        Err(Error::PermanentShardsUnfinished(unfinished)) => {
            assert_eq!(unfinished.shards.len(), 1);
            assert!(unfinished.message.contains("was replaced"), "{}", unfinished.message);
        }
        other => panic!("{other:?}"),
    }
    let reset = unfinished_shard(&fake, &root);
    run_to_end(&fake, &plan, reset);
    let stray = format!("{root}/data/stray.json.gz");
    fake.objects.borrow_mut().insert(stray.clone(), (b"junk".to_vec(), "e".into()));
    let summary = finalize::run(&fake, &finalize_request(&plan)).unwrap();
    assert_eq!(summary.item_count, 40);
    assert!(fake.object(&stray).is_none(), "a file no shard recorded is removed");
    assert_eq!(exported_items(&fake, &plan).len(), 40);
}

/// The one shard without a checkpoint.
fn unfinished_shard(fake: &Fake, root: &str) -> u32 {
    (0..3).find(|shard| fake.object(&keys::shard_key(root, *shard)).is_none()).unwrap()
}

#[test]
fn what_cannot_be_run_is_refused_by_name() {
    let fake = Fake::new(10);
    let plan = plan::run(&fake, &plan_request("t")).unwrap();
    let bad = |location: &str| ShardRequest { export_location: location.into(), ..shard_request(&plan, 0, None) };
    assert!(matches!(shard::run(&fake, &bad("s3://exports/nowhere")), Err(Error::PermanentRefused(_))));
    let missing = "s3://exports/other/AWSDynamoDB/01700000000000-0a1b2c3d";
    match shard::run(&fake, &bad(missing)) {
        Err(Error::PermanentBadDestination(message)) => assert!(message.contains("does not exist"), "{message}"),
        other => panic!("{other:?}"),
    }
    match shard::run(&fake, &shard_request(&plan, 9, None)) {
        Err(Error::PermanentRefused(message)) => assert!(message.contains("shards 0 to 2, not 9"), "{message}"),
        other => panic!("{other:?}"),
    }
    match shard::run(&fake, &shard_request(&plan, 0, Some(0))) {
        Err(Error::PermanentRefused(message)) => assert!(message.contains("budget of 0"), "{message}"),
        other => panic!("{other:?}"),
    }
    let owned = ShardRequest { expected_bucket_owner: Some("123456789012".into()), ..shard_request(&plan, 0, None) };
    match shard::run(&fake, &owned) {
        Err(Error::PermanentRefused(message)) => assert!(message.contains("s3-bucket-owner"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn where_the_store_lists_no_etags_finalize_judges_files_by_their_md5() {
    let fake = Fake::new(40);
    fake.blank_listed_etags.set(true);
    let plan = plan::run(&fake, &plan_request("t")).unwrap();
    let root = plan.export_location.trim_start_matches("s3://exports/").to_string();
    for shard in [0, 1, 2] {
        run_to_end(&fake, &plan, shard);
    }
    let replaced = fake.keys_under(&format!("{root}/data/")).into_iter().next().unwrap();
    fake.objects.borrow_mut().get_mut(&replaced).unwrap().0.push(b'!');
    match finalize::run(&fake, &finalize_request(&plan)) {
        Err(Error::PermanentShardsUnfinished(unfinished)) => {
            assert!(unfinished.message.contains("(MD5 "), "{}", unfinished.message);
        }
        other => panic!("{other:?}"),
    }
    let reset = unfinished_shard(&fake, &root);
    run_to_end(&fake, &plan, reset);
    assert_eq!(finalize::run(&fake, &finalize_request(&plan)).unwrap().item_count, 40);
}

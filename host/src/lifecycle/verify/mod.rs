//! `ddb-export verify`: checks an export in AWS's layout (ours, or one AWS wrote) from what is
//! stored. The component reads the manifests and every data file's lines (`wit/verify.wit`);
//! the host reads the store: which objects exist, their ETags, the MD5 of every byte.
//!
//! It holds when: the summary and listing parse and agree (their `.md5` files too), every
//! listed data file exists with the listed ETag and MD5, holds exactly `itemCount` lines that
//! parse for the format, and nothing unlisted lies under a full export's `data/`.

use std::collections::HashSet;

use serde::Serialize;

use crate::io::destination::Destination;
use crate::model::checksum::{self, RunningMd5};
use crate::runtime::ComponentRuntime;
mod duplicates;

use crate::error::ExportError;
use crate::model::layout;
use crate::model::summary::ManifestSummary;
use crate::model::{ExportFormat, Field, FileReport, KeyAttribute, ListedFile, ManifestsCheck};
use crate::pipeline::offload;
use crate::state::keys;
use crate::state::stored::{Depth, Listing, Record};
use duplicates::{DuplicateFinder, LineAt};

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyReport {
    /// Where the export is (`s3://…` or a path).
    pub export: String,
    /// From the summary, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_arn: Option<String>,
    /// Whether everything held: the problems are empty.
    pub verified: bool,
    pub data_files: u64,
    /// Lines read in the data files (for a plugin's format, the manifest's counts).
    pub items: u64,
    /// `false` for a plugin's format (`outputFormat` other than `DYNAMODB_JSON` and `ION`):
    /// its files' presence, ETags and MD5s were checked, not their contents.
    pub contents_checked: bool,
    /// The table's key attributes the items were checked against (`--key-attributes`, or the
    /// export's saved state); `None` when unknown: then no item is required to have a key, and
    /// the export is checked for items written twice (whole lines) instead of keys held twice.
    pub key_attributes: Option<Vec<String>>,
    /// Each names the object and what is wrong with it.
    pub problems: Vec<String>,
}

/// Most key hashes `verify` holds in memory (28 bytes each) before it spills them to a
/// temporary file: about 28 MiB.
const DUPLICATES_IN_MEMORY: usize = 1 << 20;
/// Duplicates listed one by one; the rest are counted.
const DUPLICATES_LISTED: usize = 10;

/// An export that verified, as a reader of its data (`restore`) needs it.
#[derive(Debug, Clone)]
pub struct VerifiedExport {
    pub summary: ManifestSummary,
    /// `None` for a plugin's format.
    pub format: Option<ExportFormat>,
    /// Its data files where they are now, in the listing's order, with what the listing says.
    pub files: Vec<(String, ListedFile)>,
}

impl VerifiedExport {
    /// Whether it is an incremental export.
    pub fn incremental(&self) -> bool {
        self.summary.export_type() == crate::model::summary::INCREMENTAL_EXPORT
    }
}

/// Checks export `export_id` under the destination's prefix. `key`: the table's key
/// attributes (typed, when a restore knows its table), when the caller knows them; otherwise
/// the ones the export's saved state records, if it has them (exports by ddb-export do).
pub async fn verify(
    destination: &Destination,
    runtime: &ComponentRuntime,
    export_id: &str,
    key: Option<Vec<KeyAttribute>>,
) -> Result<VerifyReport, ExportError> {
    Ok(check(destination, runtime, export_id, key).await?.0)
}

/// [`verify`], and when everything holds, what was verified.
pub async fn check(
    destination: &Destination,
    runtime: &ComponentRuntime,
    export_id: &str,
    key: Option<Vec<KeyAttribute>>,
) -> Result<(VerifyReport, Option<VerifiedExport>), ExportError> {
    let root = crate::model::layout::export_root(destination.prefix().as_deref(), export_id);
    let key = match key {
        Some(key) => Some(key),
        None => saved_key_attributes(destination, &root)
            .await
            .map(|names| names.into_iter().map(KeyAttribute::untyped).collect()),
    };
    let key_attributes = key.as_ref().map(|key| key.iter().map(|k| k.name.clone()).collect());
    let mut report = VerifyReport {
        export: destination.locate(&root),
        export_arn: None,
        verified: false,
        data_files: 0,
        items: 0,
        contents_checked: false,
        key_attributes,
        problems: Vec::new(),
    };
    // The manifests' keys are the same for a full and an incremental export.
    let keys = layout::export_keys(destination.prefix().as_deref(), export_id, false);
    let Some(summary) = destination.get(&keys.manifest_summary).await? else {
        let location = destination.locate(&keys.manifest_summary);
        report.problems.push(format!("{location}: missing; the export is not complete (or not there)"));
        return Ok((report, None));
    };
    let files = destination.get(&keys.manifest_files).await?;
    let summary_md5 = destination.get(&keys.manifest_summary_md5).await?;
    let files_md5 = destination.get(&keys.manifest_files_md5).await?;
    for (key, found) in [(&keys.manifest_files, files.is_some()), (&keys.manifest_summary_md5, summary_md5.is_some())] {
        if !found {
            report.problems.push(format!("{}: missing", destination.locate(key)));
        }
    }
    if files.is_some() && files_md5.is_none() {
        report.problems.push(format!("{}: missing", destination.locate(&keys.manifest_files_md5)));
    }
    let files = files.unwrap_or_default();
    let parsed_summary = ManifestSummary::parse(&summary);
    let checked = {
        let runtime = runtime.clone();
        offload::blocking(move || {
            Ok(runtime.session()?.check_manifests(&summary, summary_md5.as_deref(), &files, files_md5.as_deref())?)
        })
        .await?
    };
    let manifests = match checked {
        Ok(manifests) => manifests,
        Err(why) => {
            let location = destination.locate(&keys.manifest_summary);
            report.problems.push(format!("{location}: unreadable: {why}"));
            return Ok((report, None));
        }
    };
    report.export_arn = Some(manifests.export_arn.clone());
    report.contents_checked = manifests.format.is_some();
    report.problems.extend(manifests.problems.iter().map(|p| format!("{}: {p}", report.export)));
    // Keys in the manifests are the bucket's keys when the export was written; the export may
    // have been copied since (to a directory, another prefix): they are read relative to where
    // `manifestFilesS3Key` says the export was.
    let written_root = manifests
        .manifest_files_key
        .strip_suffix("/manifest-files.json")
        .filter(|r| r.ends_with(&layout::export_root(None, export_id)));
    let written_base = match written_root {
        Some(written_root) => written_root.strip_suffix(export_id).unwrap_or_default().to_string(),
        None => {
            report.problems.push(format!(
                "{}: manifestFilesS3Key {:?} does not name this export's manifest-files.json",
                report.export, manifests.manifest_files_key
            ));
            return Ok((report, None));
        }
    };
    let here_base = root.strip_suffix(export_id).unwrap_or_default().to_string();
    let relocate = |key: &str| key.strip_prefix(&written_base).map(|rest| format!("{here_base}{rest}"));
    let files =
        check_data_files(destination, runtime, &root, &manifests, relocate, key.unwrap_or_default(), &mut report)
            .await?;
    report.verified = report.problems.is_empty();
    let verified = match parsed_summary {
        Ok(summary) if report.verified => {
            let files = files.into_iter().map(|(key, file)| (key, file.clone())).collect();
            Some(VerifiedExport { summary, format: manifests.format, files })
        }
        _ => None,
    };
    Ok((report, verified))
}

/// The key the export's saved state records (`_ddb-export/run.json`), if it is there and says.
/// Only a hint: an export copied without it, or AWS's, has none.
async fn saved_key_attributes(destination: &Destination, root: &str) -> Option<Vec<String>> {
    let bytes = destination.get(&keys::run_key(root)).await.ok().flatten()?;
    let state: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let names: Vec<String> = serde_json::from_value(state.get("table_key")?.clone()).ok()?;
    (!names.is_empty()).then_some(names)
}

/// Every listed data file against the store and the format; anything unlisted under `data/`.
/// `relocate` maps a listed key to where it is now (`None`: outside the export's folder).
async fn check_data_files<'m>(
    destination: &Destination,
    runtime: &ComponentRuntime,
    root: &str,
    manifests: &'m ManifestsCheck,
    relocate: impl Fn(&str) -> Option<String>,
    table_key: Vec<KeyAttribute>,
    report: &mut VerifyReport,
) -> Result<Vec<(String, &'m ListedFile)>, ExportError> {
    // A full export's files are in its own data/, an incremental one's in the shared one.
    let full = manifests.export_type == "FULL_EXPORT";
    let data = format!("{root}/data/");
    let allowed = if full { data.clone() } else { format!("{}/data/", root.rsplit_once('/').map_or("", |(p, _)| p)) };
    let mut located = Vec::new();
    for file in &manifests.files {
        match relocate(&file.key) {
            Some(key) if key.starts_with(&allowed) && !key.split('/').any(|part| part == ".." || part.is_empty()) => {
                located.push((key, file));
            }
            _ => report.problems.push(format!(
                "{}: manifest-files.json lists {:?}, which is not in the export's data folder",
                report.export, file.key
            )),
        }
    }
    // The stored objects (and their ETags) in every folder a listed file is in.
    let mut folders: HashSet<String> = located.iter().filter_map(|(key, _)| folder_of(key)).collect();
    if full {
        folders.insert(data.clone());
    }
    let mut duplicates = DuplicateFinder::new(DUPLICATES_IN_MEMORY);
    // The locations of the files read, by the index their lines' hashes carry.
    let mut checked: Vec<String> = Vec::new();
    let listing = Listing::of_all(destination, folders.iter().map(String::as_str)).await?;
    // First what the listing says of each file, in order; then their bytes, read
    // `READ_LANES` at a time (each on a blocking thread); then the findings, in order.
    let mut to_read = Vec::new();
    for (key, file) in &located {
        let location = destination.locate(key);
        // Where the file is now, with the facts the manifest gives it.
        let recorded = Record { key, ..Record::from(*file) };
        if let Some(problem) = listing.problem(destination, recorded, Depth::Listed).await? {
            report.problems.push(problem);
            if !listing.contains(key) {
                continue;
            }
        }
        // A plugin's format with our formats' file names: an edited summary, most likely.
        if manifests.format.is_none() && (key.ends_with(".json.gz") || key.ends_with(".ion.gz")) {
            report.problems.push(format!(
                "{location}: named like a DYNAMODB_JSON or ION data file, but the summary's outputFormat is {}",
                manifests.output_format
            ));
        }
        to_read.push((key.clone(), *file));
    }
    let mut reads = tokio::task::JoinSet::new();
    let mut read: Vec<Option<Option<(String, FileReport)>>> = vec![None; to_read.len()];
    let mut pending = to_read.iter().enumerate();
    loop {
        while reads.len() < READ_LANES {
            let Some((index, (key, file))) = pending.next() else { break };
            let reading = FileRead {
                destination: destination.clone(),
                runtime: runtime.clone(),
                key: key.clone(),
                format: manifests.format,
                export_type: manifests.export_type.clone(),
                table_key: table_key.clone(),
                item_count: file.item_count,
            };
            reads.spawn(async move { (index, reading.read().await) });
        }
        let Some(joined) = reads.join_next().await else { break };
        let (index, result) = joined.map_err(|e| ExportError::Internal(format!("a file check failed: {e}")))?;
        read[index] = Some(result?);
    }
    for ((key, file), result) in to_read.iter().zip(read) {
        let location = destination.locate(key);
        let Some((actual_md5, file_report)) = result.flatten() else {
            report.problems.push(format!("{location}: listed in manifest-files.json but missing"));
            continue;
        };
        let index = u32::try_from(checked.len()).unwrap_or(u32::MAX);
        for (line, hash) in file_report.key_hashes.iter().enumerate() {
            if *hash != [0; 16] {
                duplicates.add(*hash, LineAt { file: index, line: line as u64 + 1 }).map_err(spill_error)?;
            }
        }
        checked.push(location.clone());
        report.data_files += 1;
        report.items += file_report.lines;
        if actual_md5 != file.md5 {
            report.problems.push(format!("{location}: MD5 is {actual_md5}, manifest-files.json says {}", file.md5));
        }
        if file_report.lines != file.item_count {
            report.problems.push(format!(
                "{location}: holds {} lines, manifest-files.json says itemCount {}",
                file_report.lines, file.item_count
            ));
        }
        report.problems.extend(file_report.problems.iter().map(|p| format!("{location}: {p}")));
    }
    let found = tokio::task::spawn_blocking(move || duplicates.finish(DUPLICATES_LISTED))
        .await
        .map_err(|e| ExportError::Internal(format!("the duplicate search failed: {e}")))?
        .map_err(spill_error)?;
    let what = match (&report.key_attributes, full) {
        (_, false) => "Keys (an item's change record twice)".to_string(),
        (Some(keys), true) => format!("key ({})", keys.join(", ")),
        (None, true) => format!("item (the same line twice; give {} to compare keys)", Field::KeyAttributes),
    };
    let place = |at: LineAt| format!("{} line {}", checked.get(at.file as usize).map_or("?", String::as_str), at.line);
    for (first, again) in &found.pairs {
        report.problems.push(format!("{} and {} hold the same {what}", place(*first), place(*again)));
    }
    if found.count > found.pairs.len() as u64 {
        report.problems.push(format!(
            "{}: {} more lines hold a {what} an earlier line holds",
            report.export,
            found.count - found.pairs.len() as u64
        ));
    }
    if full {
        let listed: HashSet<&str> = located.iter().map(|(key, _)| key.as_str()).collect();
        let mut unlisted: Vec<&str> = listing.keys().filter(|k| k.starts_with(&data) && !listed.contains(k)).collect();
        unlisted.sort();
        for key in unlisted {
            report.problems.push(format!("{}: under data/ but not in manifest-files.json", destination.locate(key)));
        }
    }
    Ok(located)
}

/// Data files read at once.
const READ_LANES: usize = 4;

/// One data file to read: its bytes hashed, and (for our formats) every line checked.
struct FileRead {
    destination: Destination,
    runtime: ComponentRuntime,
    key: String,
    /// `None`: a plugin's format, whose files are hashed only.
    format: Option<ExportFormat>,
    export_type: String,
    table_key: Vec<KeyAttribute>,
    /// What the manifest says (a plugin's file's line count is taken from it).
    item_count: u64,
}

impl FileRead {
    /// The file's MD5 (base64) and what its lines held; `None` when it is missing.
    async fn read(self) -> Result<Option<(String, FileReport)>, ExportError> {
        let checker = match self.format {
            Some(format) => {
                let (runtime, export_type, table_key) = (self.runtime, self.export_type, self.table_key);
                Some(
                    offload::blocking(move || {
                        Ok(runtime.session()?.data_file_checker(format, &export_type, &table_key)?)
                    })
                    .await?,
                )
            }
            None => None,
        };
        // The bytes are hashed and checked on a blocking thread as they are read.
        let read = offload::stream_file(
            &self.destination,
            &self.key,
            (RunningMd5::default(), checker),
            |(md5, checker), chunk| {
                md5.update(chunk);
                if let Some(checker) = checker.as_mut() {
                    checker.feed(chunk)?;
                }
                Ok(())
            },
            async |()| Ok(()),
        )
        .await?;
        let Some((md5, checker)) = read else { return Ok(None) };
        let file_report = match checker {
            Some(checker) => offload::blocking(move || Ok(checker.finish()?)).await?,
            None => FileReport { lines: self.item_count, problems: Vec::new(), key_hashes: Vec::new() },
        };
        Ok(Some((checksum::base64(&md5.finish()), file_report)))
    }
}

fn spill_error(source: std::io::Error) -> ExportError {
    ExportError::Io { action: "cannot spill key hashes to a temporary file in", path: std::env::temp_dir(), source }
}

/// `a/b/c.json.gz` -> `a/b/`.
fn folder_of(key: &str) -> Option<String> {
    key.rsplit_once('/').map(|(folder, _)| format!("{folder}/"))
}

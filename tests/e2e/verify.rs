//! `ddb-export verify`, through the real binary: good exports verify (in a bucket and in a
//! directory); each kind of damage fails, naming the file.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::items;
use crate::util::{self, Standins};

fn verify(location: &Path) -> (bool, Value) {
    let output =
        util::run(std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export")).env_clear().arg("verify").arg(location));
    let report = util::stdout_json(&output);
    assert_eq!(output.status.success(), report["Verified"] == true, "exit code and report disagree: {report}");
    (output.status.success(), report)
}

fn problems(report: &Value) -> Vec<String> {
    report["Problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

fn md5_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

fn copy_tree(from: &Path, to: &Path) {
    for key in util::keys_under(from) {
        let target = to.join(&key);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&key), target).unwrap();
    }
}

/// A damaged copy of a good export: `damage` gets the copy's export folder.
fn damaged(good: &Path, export_root: &str, damage: impl FnOnce(&Path)) -> (PathBuf, tempfile::TempDir) {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(good, copy.path());
    let root = copy.path().join(export_root);
    damage(&root);
    (root, copy)
}

/// Rewrites a manifest and its `.md5`, as a careful forger would.
fn rewrite(root: &Path, name: &str, edit: impl FnOnce(String) -> String) {
    let path = root.join(format!("{name}.json"));
    let text = edit(std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &text).unwrap();
    std::fs::write(root.join(format!("{name}.md5")), md5_base64(text.as_bytes())).unwrap();
}

fn first_data_file(root: &Path) -> (String, PathBuf) {
    let listing = std::fs::read_to_string(root.join("manifest-files.json")).unwrap();
    let line: Value = serde_json::from_str(listing.lines().next().unwrap()).unwrap();
    let key = line["dataFileS3Key"].as_str().unwrap().to_string();
    let name = key.rsplit('/').next().unwrap().to_string();
    (name.clone(), root.join("data").join(name))
}

#[tokio::test]
async fn good_exports_verify_and_each_kind_of_damage_is_named() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(1500)).await;
    standins.create_bucket("exports").await;

    // In a bucket: verified through S3 (ETags included).
    let output = util::run(standins.command().args([
        "export",
        "--table",
        "orders",
        "--to",
        "s3://exports/p",
        "--segments",
        "3",
        "--file-size",
        "20000",
    ]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary = util::stdout_json(&output)["ExportDescription"]["ExportManifest"].as_str().unwrap().to_string();
    let export_root = summary.trim_end_matches("/manifest-summary.json").to_string();
    let s3_output = util::run(standins.command().args(["verify", &format!("s3://exports/{export_root}")]));
    assert!(s3_output.status.success(), "{}", String::from_utf8_lossy(&s3_output.stdout));
    let report = util::stdout_json(&s3_output);
    assert_eq!(report["Items"], 1500);
    assert!(report["DataFiles"].as_u64().unwrap() >= 3, "{report}");

    // The same export as plain files (a directory export is the same layout).
    let good = standins.bucket_dir("exports");
    let (ok, report) = verify(&good.join(&export_root));
    assert!(ok, "{report}");
    let export_root = export_root.as_str();

    let (root, _keep) = damaged(&good, export_root, |root| std::fs::remove_file(first_data_file(root).1).unwrap());
    let (ok, report) = verify(&root);
    let name = first_data_file(&root).0;
    assert!(!ok && problems(&report).iter().any(|p| p.contains(&name) && p.contains("missing")), "{report}");

    let (root, _keep) = damaged(&good, export_root, |root| {
        let path = first_data_file(root).1;
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(path, bytes).unwrap();
    });
    let (ok, report) = verify(&root);
    assert!(!ok && problems(&report).iter().any(|p| p.contains(&name) && p.contains("MD5 is")), "{report}");

    // A count that lies, in both manifests (with their .md5 files redone): only the lines tell.
    let (root, _keep) = damaged(&good, export_root, |root| {
        rewrite(root, "manifest-files", |text| {
            let first = text.lines().next().unwrap().to_string();
            let count: Value = serde_json::from_str(&first).unwrap();
            let n = count["itemCount"].as_u64().unwrap();
            text.replacen(&format!("\"itemCount\":{n},"), &format!("\"itemCount\":{},", n + 1), 1)
        });
        rewrite(root, "manifest-summary", |text| text.replace("\"itemCount\":1500,", "\"itemCount\":1501,"));
    });
    let (ok, report) = verify(&root);
    assert!(!ok, "{report}");
    assert_eq!(problems(&report).len(), 1, "{report}");
    assert!(problems(&report)[0].contains(&name) && problems(&report)[0].contains("lines"), "{report}");

    // A summary edited to claim a plugin's format (so that nothing reads the lines): the file
    // names give it away.
    let (root, _keep) = damaged(&good, export_root, |root| {
        rewrite(root, "manifest-summary", |text| text.replace("\"DYNAMODB_JSON\"", "\"CSV\""));
    });
    let (ok, report) = verify(&root);
    assert!(!ok && report["ContentsChecked"] == false, "{report}");
    assert!(problems(&report).iter().all(|p| p.contains("named like a DYNAMODB_JSON or ION data file")), "{report}");

    let (root, _keep) = damaged(&good, export_root, |root| {
        std::fs::write(root.join("data/aaaaaaaaaaaaaaaaaaaaaaaaaa.json.gz"), b"stray").unwrap();
    });
    let (ok, report) = verify(&root);
    assert!(!ok, "{report}");
    assert_eq!(problems(&report).len(), 1, "{report}");
    assert!(
        problems(&report)[0].contains("aaaaaaaaaaaaaaaaaaaaaaaaaa.json.gz") && problems(&report)[0].contains("not in")
    );

    // A bad line, in a file whose MD5 the manifests were made to agree with.
    let (root, _keep) = damaged(&good, export_root, |root| {
        let path = first_data_file(root).1;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
        let bad = text.replacen("{\"Item\":", "{\"Itme\":", 1);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(bad.as_bytes()).unwrap();
        let bytes = gzip.finish().unwrap();
        let old_md5 = md5_base64(&std::fs::read(&path).unwrap());
        std::fs::write(&path, &bytes).unwrap();
        rewrite(root, "manifest-files", |listing| listing.replace(&old_md5, &md5_base64(&bytes)));
    });
    let (ok, report) = verify(&root);
    assert!(!ok, "{report}");
    assert_eq!(problems(&report).len(), 1, "{report}");
    assert!(problems(&report)[0].contains(&name) && problems(&report)[0].contains("line 1: not {\"Item\""), "{report}");

    // An ION export verifies too (its lines read by the component's Ion syntax check).
    let output = util::run(standins.command().args([
        "export",
        "--table",
        "orders",
        "--to",
        "s3://exports/ion",
        "--format",
        "ion",
    ]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary = util::stdout_json(&output)["ExportDescription"]["ExportManifest"].as_str().unwrap().to_string();
    let (ok, report) = verify(&good.join(summary.trim_end_matches("/manifest-summary.json")));
    assert!(ok, "{report}");
    assert_eq!(report["Items"], 1500);

    // No export there at all.
    let empty = tempfile::tempdir().unwrap();
    let (ok, report) = verify(&empty.path().join("AWSDynamoDB/01700000000000-0123abcd"));
    assert!(!ok && problems(&report)[0].contains("manifest-summary.json: missing"), "{report}");
}

/// Rewrites the first data file's lines with `edit` and makes everything else agree with it,
/// as a careful forger would: the file's MD5 and ETag and item count in `manifest-files.json`,
/// the summary's item count, both `.md5` files. Only the lines themselves can tell.
fn forge(root: &Path, edit: impl FnOnce(Vec<String>) -> Vec<String>) {
    let (_, path) = first_data_file(root);
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
    let before = text.lines().count();
    let lines = edit(text.lines().map(str::to_string).collect());
    let after = lines.len();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in &lines {
        gzip.write_all(line.as_bytes()).unwrap();
        gzip.write_all(b"\n").unwrap();
    }
    let bytes = gzip.finish().unwrap();
    let old = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let (old_md5, new_md5) = (md5_base64(&old), md5_base64(&bytes));
    let hex = |b: &[u8]| Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>();
    rewrite(root, "manifest-files", |listing| {
        let line = listing.lines().find(|l| l.contains(&old_md5)).unwrap().to_string();
        let mut entry: Value = serde_json::from_str(&line).unwrap();
        entry["itemCount"] = (entry["itemCount"].as_u64().unwrap() + after as u64 - before as u64).into();
        let forged = format!(
            "{{\"itemCount\":{},\"md5Checksum\":\"{new_md5}\",\"etag\":\"{}\",\"dataFileS3Key\":{}}}",
            entry["itemCount"],
            hex(&bytes),
            entry["dataFileS3Key"]
        );
        listing.replace(&line, &forged)
    });
    rewrite(root, "manifest-summary", |summary| {
        let mut json: Value = serde_json::from_str(&summary).unwrap();
        let count = json["itemCount"].as_u64().unwrap() + after as u64 - before as u64;
        let old = format!("\"itemCount\":{}", json["itemCount"]);
        json["itemCount"] = count.into();
        summary.replace(&old, &format!("\"itemCount\":{count}"))
    });
}

#[tokio::test]
async fn each_item_once_and_each_item_valid_whatever_a_forger_recomputes() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(300)).await;
    let out = tempfile::tempdir().unwrap();
    let export = |format: &str| {
        let mut command = standins.command();
        command
            .args(["export", "--table", "orders", "--segments", "1", "--format", format])
            .arg("--to")
            .arg(out.path());
        util::completed(&util::run(&mut command)).1.trim_end_matches("/manifest-summary.json").to_string()
    };
    let json_root = export("dynamodb-json");
    let (ok, report) = verify(&out.path().join(&json_root));
    assert!(ok, "{report}");
    assert_eq!(report["KeyAttributes"], serde_json::json!(["pk"]), "the key comes from the export's saved state");

    let huge = format!("{{\"Item\":{{\"pk\":{{\"S\":\"huge\"}},\"blob\":{{\"S\":\"{}\"}}}}}}", "x".repeat(410_000));
    let long_number = format!("{{\"Item\":{{\"pk\":{{\"S\":\"long\"}},\"n\":{{\"N\":\"{}\"}}}}}}", "7".repeat(39));
    type Edit = Box<dyn FnOnce(Vec<String>) -> Vec<String>>;
    let forgeries: Vec<(&str, Edit, &str)> = vec![
        (
            "a line twice",
            Box::new(|mut lines: Vec<String>| {
                let again = lines[0].clone();
                lines.push(again);
                lines
            }),
            "hold the same key (pk)",
        ),
        (
            "an item without its key",
            Box::new(|mut lines: Vec<String>| {
                lines[1] = r#"{"Item":{"x":{"S":"y"}}}"#.into();
                lines
            }),
            "line 2: the item has no key attribute \"pk\"",
        ),
        (
            "an empty item",
            Box::new(|mut lines: Vec<String>| {
                lines[1] = r#"{"Item":{}}"#.into();
                lines
            }),
            "line 2: the item has no attributes",
        ),
        (
            "a 39-digit number",
            Box::new(move |mut lines: Vec<String>| {
                lines[1] = long_number;
                lines
            }),
            "39 significant digits",
        ),
        (
            "a name twice",
            Box::new(|mut lines: Vec<String>| {
                lines[1] = r#"{"Item":{"pk":{"S":"a"},"pk":{"S":"b"}}}"#.into();
                lines
            }),
            "line 2: not {\"Item\":{…}}: Item: attribute name \"pk\" appears twice in one map (at byte",
        ),
        (
            "an item over 400 KB",
            Box::new(move |mut lines: Vec<String>| {
                lines[1] = huge;
                lines
            }),
            "line 2: the item is",
        ),
    ];
    for (what, edit, words) in forgeries {
        let (root, _keep) = damaged(out.path(), &json_root, |root| forge(root, edit));
        let (ok, report) = verify(&root);
        assert!(!ok, "{what}: {report}");
        let name = first_data_file(&root).0;
        assert!(
            problems(&report).iter().any(|p| p.contains(&name) && p.contains(words)),
            "{what} should say {words:?}: {report}"
        );
    }

    // Without the saved state (an export by AWS, say) and with no key given, a line written
    // twice is still found; with the key given, the key is checked.
    let (root, _keep) = damaged(out.path(), &json_root, |root| {
        forge(root, |mut lines| {
            let again = lines[3].clone();
            lines.push(again);
            lines
        });
        std::fs::remove_file(root.join("_ddb-export/run.json")).unwrap();
    });
    let (ok, report) = verify(&root);
    assert!(!ok && report["KeyAttributes"].is_null(), "{report}");
    assert!(problems(&report).iter().any(|p| p.contains("line 4 and") && p.contains("hold the same item")), "{report}");
    let given = util::run(util::ddb_export(&[]).arg("verify").arg(&root).args(["--key-attributes", "pk"]));
    let report = util::stdout_json(&given);
    assert!(problems(&report).iter().any(|p| p.contains("hold the same key (pk)")), "{report}");

    // ION: the same rules, read from Ion text.
    let ion_root = export("ion");
    let (root, _keep) = damaged(out.path(), &ion_root, |root| {
        forge(root, |mut lines| {
            let again = lines[0].clone();
            lines.push(again);
            lines[1] = "$ion_1_0 {Item:{pk:\"a\",pk:\"b\"}}".into();
            lines
        });
    });
    let (ok, report) = verify(&root);
    assert!(!ok, "{report}");
    assert!(problems(&report).iter().any(|p| p.contains("hold the same key (pk)")), "{report}");
    assert!(problems(&report).iter().any(|p| p.contains("line 2") && p.contains("\"pk\" appears twice")), "{report}");
}

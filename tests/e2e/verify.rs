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

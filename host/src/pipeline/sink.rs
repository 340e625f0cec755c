//! The one place an encoder's output meets storage: every mode (a shard of a full export, an
//! incremental export's change encoder) applies `encoder-event`s through a [`Sink`], which
//! enforces the WIT's sequence rules (files one at a time, bytes only inside a file, each key
//! once) and recomputes what the encoder claims (key, size, MD5, a non-empty file) from the
//! bytes it stored. What differs by mode (which key a file must have, how its items are
//! counted, what is checkpointed) is the caller's, around these calls.

use std::collections::HashSet;

use crate::error::ExportError;
use crate::io::destination::{Destination, ObjectWriter, Written};
use crate::model::DataFileFacts;

/// The data file an encoder has open, and the keys of every file it started.
pub(crate) struct Sink {
    destination: Destination,
    /// The component's name, in its errors.
    component: String,
    open: Option<ObjectWriter>,
    started: HashSet<String>,
}

impl Sink {
    /// A sink for `component`'s output into `destination`; `earlier` are keys of files
    /// already stored (by an earlier run of the same shard), which may not be started again.
    pub(crate) fn new(destination: Destination, component: String, earlier: impl IntoIterator<Item = String>) -> Self {
        Self { destination, component, open: None, started: earlier.into_iter().collect() }
    }

    /// The encoder broke the contract: `message` says how.
    pub(crate) fn bad_output(&self, message: String) -> ExportError {
        ExportError::BadOutput { component: self.component.clone(), message }
    }

    /// Whether a file is open.
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The open file's writer (its key, its upload once one began).
    pub(crate) fn open_file(&self) -> Option<&ObjectWriter> {
        self.open.as_ref()
    }

    /// `file-started(key)`, once the caller has checked that `key` is the one this file must
    /// have: refused while another file is open, or when the key was started before.
    pub(crate) fn start(&mut self, key: String) -> Result<(), ExportError> {
        if self.open.is_some() {
            return Err(self.bad_output("a data file started while another was open".into()));
        }
        if !self.started.insert(key.clone()) {
            return Err(self.bad_output(format!("data file {key:?} was started twice")));
        }
        self.open = Some(ObjectWriter::new(self.destination.clone(), key));
        Ok(())
    }

    /// `bytes(…)`: appended to the open file; refused outside one.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        match self.open.as_mut() {
            Some(writer) => writer.write(bytes).await,
            None => Err(self.bad_output("bytes arrived outside a data file".into())),
        }
    }

    /// `file-finished(facts)`: the open file stored, once its facts match the bytes stored
    /// (key, size, MD5), it holds at least one item, and as many as the caller counted in
    /// the pages it received (`items`, when the caller counts them); a file that does not
    /// match is aborted, never stored.
    pub(crate) async fn finish(&mut self, facts: &DataFileFacts, items: Option<u64>) -> Result<Written, ExportError> {
        let writer =
            self.open.take().ok_or_else(|| self.bad_output("a data file finished that never started".into()))?;
        let counted = match items {
            Some(items) if facts.item_count != items => {
                Err(format!("{} claims {} items, but the pages it received hold {items}", facts.key, facts.item_count))
            }
            _ => Ok(()),
        };
        if let Err(message) = check_written(&writer, facts).and(counted) {
            writer.abort().await;
            return Err(self.bad_output(message));
        }
        writer.finish().await
    }

    /// The end of the output: a file still open means the encoder stopped mid-file. That is
    /// reported as [`ExportError::Cancelled`] (the encoder's own result says why it stopped;
    /// see [`settle`]), and the file's upload is aborted.
    pub(crate) async fn end(mut self) -> Result<(), ExportError> {
        match self.open.take() {
            Some(writer) => {
                writer.abort().await;
                Err(ExportError::Cancelled)
            }
            None => Ok(()),
        }
    }

    /// Aborts the open file's upload, if any (the run failed).
    pub(crate) async fn abort(mut self) {
        if let Some(writer) = self.open.take() {
            writer.abort().await;
        }
    }
}

/// What the store stage's result is once the encoder's is known: an encoder that returned
/// successfully while its last file was still open broke the contract, whatever the store saw.
pub(crate) fn settle<T, U>(
    component: &str,
    encoded: &Result<T, ExportError>,
    stored: Result<U, ExportError>,
) -> Result<U, ExportError> {
    match (encoded, stored) {
        (Ok(_), Err(ExportError::Cancelled)) => Err(ExportError::BadOutput {
            component: component.to_string(),
            message: "the encoder finished with a data file still open".into(),
        }),
        (_, stored) => stored,
    }
}

/// What a pipeline of stages failed with: a stage's own failure, not the `Cancelled` of the
/// stages that only saw their queue close (`Cancelled` when that is all there is).
pub(crate) fn pipeline_failure(errors: impl IntoIterator<Item = Option<ExportError>>) -> ExportError {
    errors
        .into_iter()
        .flatten()
        .reduce(|a, b| if matches!(a, ExportError::Cancelled) { b } else { a })
        .unwrap_or(ExportError::Cancelled)
}

/// A data file's facts, as the encoder reports them, must match the bytes the host stored
/// (key, size, MD5), and a file holds at least one item: an encoder opens one only for items.
fn check_written(writer: &ObjectWriter, facts: &DataFileFacts) -> Result<(), String> {
    if facts.key != writer.key() {
        return Err(format!("finished {:?} while {:?} was open", facts.key, writer.key()));
    }
    if facts.size_bytes != writer.len() {
        return Err(format!("{} claims {} bytes, {} were written", facts.key, facts.size_bytes, writer.len()));
    }
    if facts.md5 != writer.md5_base64() {
        return Err(format!("{} claims MD5 {}, the bytes written have {}", facts.key, facts.md5, writer.md5_base64()));
    }
    if facts.item_count == 0 {
        return Err(format!("{} holds no items; an encoder opens a file only for items", facts.key));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::destination::Target;
    use crate::model::checksum;

    async fn sink(dir: &tempfile::TempDir) -> Sink {
        let target = Target::Dir(dir.path().to_path_buf());
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder().behavior_version(aws_sdk_s3::config::BehaviorVersion::latest()).build(),
        );
        let destination = Destination::open(&target, &s3, &Default::default()).await.expect("open a directory");
        Sink::new(destination, "the test component".into(), ["done.json.gz".to_string()])
    }

    fn facts(key: &str, bytes: &[u8], items: u64) -> DataFileFacts {
        DataFileFacts {
            key: key.into(),
            size_bytes: bytes.len() as u64,
            md5: checksum::md5_base64(bytes),
            item_count: items,
        }
    }

    fn is_bad_output(result: Result<impl std::fmt::Debug, ExportError>, words: &str) {
        match result {
            Err(ExportError::BadOutput { message, .. }) => assert!(message.contains(words), "{message}"),
            other => panic!("expected bad output ({words}), got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_file_whose_facts_match_its_bytes_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir).await;
        sink.start("a.json.gz".into()).unwrap();
        sink.write(b"one\n").await.unwrap();
        sink.write(b"two\n").await.unwrap();
        let written = sink.finish(&facts("a.json.gz", b"one\ntwo\n", 2), Some(2)).await.unwrap();
        assert_eq!(written.key, "a.json.gz");
        assert_eq!(std::fs::read(dir.path().join("a.json.gz")).unwrap(), b"one\ntwo\n");
        sink.end().await.unwrap();
    }

    #[tokio::test]
    async fn the_sequence_rules_hold() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir).await;
        is_bad_output(sink.write(b"x").await, "outside a data file");
        is_bad_output(sink.finish(&facts("a", b"", 1), None).await, "never started");
        is_bad_output(sink.start("done.json.gz".into()), "started twice");
        sink.start("b.json.gz".into()).unwrap();
        is_bad_output(sink.start("c.json.gz".into()), "while another was open");
        assert!(sink.is_open());
        assert!(matches!(sink.end().await, Err(ExportError::Cancelled)), "ending mid-file");
    }

    #[tokio::test]
    async fn facts_that_do_not_match_the_bytes_are_refused_and_the_file_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        // The facts claimed, the items the caller counted in the file's pages, what is said.
        let cases = [
            (facts("other.json.gz", b"abc", 1), None, "while"),
            (facts("f.json.gz", b"abcd", 1), None, "claims 4 bytes"),
            (DataFileFacts { md5: checksum::md5_base64(b"xyz"), ..facts("f.json.gz", b"abc", 1) }, None, "claims MD5"),
            (facts("f.json.gz", b"abc", 0), None, "holds no items"),
            (facts("f.json.gz", b"abc", 3), Some(2), "claims 3 items, but the pages it received hold 2"),
        ];
        for (wrong, counted, words) in cases {
            let mut sink = sink(&dir).await;
            sink.start("f.json.gz".into()).unwrap();
            sink.write(b"abc").await.unwrap();
            is_bad_output(sink.finish(&wrong, counted).await, words);
            assert!(!sink.is_open());
            assert!(!dir.path().join("f.json.gz").exists(), "{words}: a refused file is not stored");
        }
    }

    #[test]
    fn a_pipeline_fails_with_its_failed_stage_s_error() {
        let failure = pipeline_failure([Some(ExportError::Cancelled), None, Some(ExportError::Interrupted)]);
        assert!(matches!(failure, ExportError::Interrupted));
        assert!(matches!(pipeline_failure([None, Some(ExportError::Cancelled)]), ExportError::Cancelled));
    }

    #[test]
    fn an_encoder_that_returned_with_a_file_open_broke_the_contract() {
        let ok: Result<(), ExportError> = Ok(());
        is_bad_output(settle("c", &ok, Err::<(), _>(ExportError::Cancelled)), "still open");
        let failed: Result<(), ExportError> = Err(ExportError::Interrupted);
        assert!(matches!(settle("c", &failed, Err::<(), _>(ExportError::Cancelled)), Err(ExportError::Cancelled)));
        assert!(settle("c", &ok, Ok::<u8, ExportError>(1)).is_ok());
    }
}

//! Component work off the async workers. A component call takes from microseconds to seconds
//! (instantiation, gzip, parsing a data file); on a tokio worker it would stall every task
//! that thread serves (other shards' uploads, lease renewals). Every call into a component
//! outside the encoder threads goes through these: [`blocking`] for one call, [`stream_file`]
//! for a stored file fed through a component chunk by chunk, never whole in memory.

use tokio::sync::mpsc;

use crate::error::ExportError;
use crate::io::destination::Destination;

/// Chunks read ahead of the component, and outputs waiting to be written.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Runs `work` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ExportError> + Send + 'static,
) -> Result<T, ExportError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ExportError::Internal(format!("a component call's thread failed: {e}")))?
}

/// Streams the object `key` through `consumer` on a blocking thread: the read stays on the
/// async runtime, `each(consumer, chunk)` runs on the blocking pool, and each output it
/// returns is handed to `output` (on the async side) in order. At most [`CHUNKS_IN_FLIGHT`]
/// chunks and outputs wait at a time. Returns `None` when there is no such object, else the
/// consumer, to finish on the caller's terms.
pub(crate) async fn stream_file<C, O>(
    destination: &Destination,
    key: &str,
    consumer: C,
    each: impl FnMut(&mut C, &[u8]) -> Result<O, ExportError> + Send + 'static,
    mut output: impl AsyncFnMut(O) -> Result<(), ExportError>,
) -> Result<Option<C>, ExportError>
where
    C: Send + 'static,
    O: Send + 'static,
{
    let Some(mut chunks) = destination.open_chunks(key).await? else { return Ok(None) };
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<bytes::Bytes>(CHUNKS_IN_FLIGHT);
    let (out_tx, mut out_rx) = mpsc::channel::<O>(CHUNKS_IN_FLIGHT);
    let worker = tokio::task::spawn_blocking(move || -> Result<C, ExportError> {
        let (mut consumer, mut each) = (consumer, each);
        while let Some(chunk) = chunk_rx.blocking_recv() {
            let produced = each(&mut consumer, &chunk)?;
            out_tx.blocking_send(produced).map_err(|_| ExportError::Cancelled)?;
        }
        Ok(consumer)
    });
    let fed = async {
        while let Some(chunk) = chunks.next().await? {
            // Hands the chunk over, writing outputs meanwhile (the worker may wait for room).
            let mut pending = Some(chunk);
            while let Some(chunk) = pending.take() {
                tokio::select! {
                    permit = chunk_tx.reserve() => match permit {
                        Ok(permit) => permit.send(chunk),
                        // The worker stopped: its result says why.
                        Err(_) => return Ok(()),
                    },
                    produced = out_rx.recv() => {
                        pending = Some(chunk);
                        match produced {
                            Some(produced) => output(produced).await?,
                            None => return Ok(()),
                        }
                    }
                }
            }
        }
        Ok::<(), ExportError>(())
    }
    .await;
    drop(chunk_tx);
    let mut drained = Ok(());
    while let Some(produced) = out_rx.recv().await {
        if drained.is_ok() {
            drained = output(produced).await;
        }
    }
    let consumer = worker.await.map_err(|e| ExportError::Internal(format!("a component's thread failed: {e}")))?;
    // The worker's own failure is the cause; then the read's; then the output's.
    let consumer = consumer?;
    fed?;
    drained?;
    Ok(Some(consumer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_streams_through_the_consumer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(crate::io::destination::Directory::create(dir.path()).await.unwrap());
        // Several chunks' worth, so that the queues fill.
        let body: Vec<u8> = (0..9 << 20).map(|i| (i % 251) as u8).collect();
        destination.put("f", body.clone()).await.unwrap();
        let mut copied = Vec::new();
        let total = stream_file(
            &destination,
            "f",
            0usize,
            |seen, chunk| {
                *seen += chunk.len();
                Ok(chunk.to_vec())
            },
            async |bytes| {
                copied.extend_from_slice(&bytes);
                Ok(())
            },
        )
        .await
        .unwrap();
        assert_eq!(total, Some(body.len()));
        assert!(copied == body, "the outputs arrive in order");
        let missing = stream_file(&destination, "g", (), |_, _| Ok(()), async |()| Ok(())).await.unwrap();
        assert!(missing.is_none());
    }

    #[tokio::test]
    async fn the_consumer_s_failure_is_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(crate::io::destination::Directory::create(dir.path()).await.unwrap());
        destination.put("f", vec![1; 5 << 20]).await.unwrap();
        let failed = stream_file(
            &destination,
            "f",
            (),
            |_, _| Err::<(), _>(ExportError::Verification { location: "f".into(), message: "bad bytes".into() }),
            async |()| Ok(()),
        )
        .await;
        assert!(matches!(failed, Err(ExportError::Verification { .. })), "{failed:?}");
    }

    #[tokio::test]
    async fn blocking_work_returns_its_result() {
        assert_eq!(blocking(|| Ok(7)).await.unwrap(), 7);
    }
}

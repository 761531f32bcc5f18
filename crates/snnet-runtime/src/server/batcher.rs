//! Dynamic batching: batches taken off the [`Queue`] and run on the blocking pool, `workers`
//! at a time.

use std::sync::Arc;

use snnet_core::burn::tensor::Tensor;
use tokio::sync::Semaphore;

use super::api_error::ApiError;
use super::metrics::Metrics;
use super::queue::{Answer, Batch, Queue};
use crate::error::Error;
use crate::input::top_k;
use crate::runtime::Runtime;

/// Takes batches off `queue` and runs them, `workers` at a time, until the queue is closed
/// and empty; then waits for the batches running.
pub(super) async fn batcher(
    queue: Arc<Queue>,
    runtime: Arc<Runtime>,
    workers: usize,
    labels: Arc<Vec<String>>,
    top_k: usize,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(workers));
    let mut running = Vec::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let Some(batch) = queue.next_batch(runtime.latency_model()).await else {
            break;
        };
        metrics.batch(batch.images);
        let (runtime, labels, queue) = (runtime.clone(), labels.clone(), queue.clone());
        running.retain(|h: &tokio::task::JoinHandle<()>| !h.is_finished());
        running.push(tokio::task::spawn_blocking(move || {
            run_batch(&runtime, &queue, batch, &labels, top_k);
            drop(permit);
        }));
    }
    for handle in running {
        let _ = handle.await;
    }
}

/// Runs one batch (on a blocking thread) and answers each of its jobs; the worker counts as
/// free for admission before the answers go out, so that a client's next request does not
/// see it busy.
fn run_batch(runtime: &Runtime, queue: &Queue, batch: Batch, labels: &[String], k: usize) {
    let Batch {
        stitch,
        jobs,
        images: total,
        dequeued,
        expected_ms,
        ticket,
    } = batch;
    let (tensors, jobs): (Vec<Tensor<4>>, Vec<_>) = jobs
        .into_iter()
        .map(|j| (j.images, (j.size, j.queued, j.reply)))
        .unzip();
    let images = if tensors.len() == 1 {
        tensors.into_iter().next()
    } else {
        Some(Tensor::cat(tensors, 0))
    };
    let result = images
        .ok_or_else(|| Error::Input("an empty batch".to_owned()))
        .and_then(|images| runtime.run(images, stitch))
        .and_then(|(logits, latency)| Ok((top_k(logits, k, labels)?, latency)));
    queue.finished(ticket);
    match result {
        Ok((predictions, latency)) => {
            let mut rows = predictions.into_iter();
            for (size, queued, reply) in jobs {
                let _ = reply.send(Ok(Answer {
                    stitch,
                    latency,
                    queue: dequeued.saturating_duration_since(queued),
                    dequeued,
                    expected_ms,
                    batch: total,
                    predictions: rows.by_ref().take(size).collect(),
                }));
            }
        }
        Err(e) => {
            let message = e.to_string();
            let status = ApiError::from(e).status;
            for (_, _, reply) in jobs {
                let _ = reply.send(Err(ApiError::new(status, message.clone())));
            }
        }
    }
}

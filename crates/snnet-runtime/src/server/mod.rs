//! `snnet serve`: the runtime over HTTP.
//!
//! Built on [axum](https://docs.rs/axum) and [tokio](https://docs.rs/tokio): axum is the
//! tokio project's own router, a thin typed layer over hyper (the HTTP implementation most of
//! the Rust ecosystem runs on) with request-size limits, graceful shutdown and extractors whose
//! rejections we can turn into JSON errors; tokio gives the blocking thread pool that inference
//! runs on, so the async executor threads only parse, queue and answer.
//!
//! # Endpoints
//!
//! | method | path | |
//! |---|---|---|
//! | `POST` | `/v1/classify` | body: PNG/JPEG, or safetensors with `input` `[B, C, H, W]`; query at most one of `deadline_ms`, `max_latency_ms`, `max_flops`, `stitch` |
//! | `GET` | `/v1/stitches` | the table, the frontiers, the profile setup, the current stitch |
//! | `GET`/`PUT` | `/v1/budget` | `{"max_latency_ms": x}` \| `{"max_flops": n}` \| `{"slo_p95_ms": x}` |
//! | `GET` | `/healthz` | liveness: `{"status": "ok"}` |
//! | `GET` | `/readyz` | readiness: 200 once the frontier's stitches are warmed up, 503 before |
//! | `GET` | `/metrics` | OpenMetrics text (see [`metrics`](self#metrics)) |
//!
//! Errors are JSON `{"error": "..."}` with a 4xx status for the client's mistakes (400 bad
//! input, JSON or `deadline_ms`, 404 unknown stitch, 409 a latency budget or deadline without a
//! profile of this setup, 413 body over the limit, 422 a budget nothing fits) and 5xx for the
//! server's. A request refused under load gets 503 with `{"error": ..., "reason": ...}` and
//! `Retry-After`, at once (the connection stays open): `deadline_unreachable`, `queue_full`,
//! `queue_drain` or `shutting_down`.
//!
//! # Deadlines
//!
//! `?deadline_ms=D` (or [`ServerConfig::default_deadline`] for a request naming no choice):
//! the request is answered by the most accurate stitch predicted to finish within `D` ms of its
//! arrival, chosen when it is taken off the queue ([`crate::deadline`] predicts; the queue
//! module decides, see below), or refused at once. The answer adds `deadline_ms`,
//! `deadline_left_ms` and `on_time`.
//!
//! # Dynamic batching and admission
//!
//! Decoded requests queue for `workers` inference slots. A request joins only while the queue
//! is predicted to drain in time ([`ServerConfig::max_queue_ms`], and its own deadline). When a
//! slot frees up, the oldest request decides the batch: the queued requests of its stitch, or
//! the deadline requests (earliest deadline first) with the most accurate stitch that answers
//! them in time without making more queued requests miss; up to `max_batch` images run as one
//! forward and each request gets its own rows back. A request's answer does not depend on what
//! it was batched with (the forward is row-independent).
//!
//! # Metrics
//!
//! Request, image, latency, queue-time, inference-time and batch-size counters and
//! histograms, queue depth, refusals by reason, on-time and late answers, HTTP errors by code,
//! the objective, the current stitch and the adaptive controller's window — every metric with
//! HELP and TYPE, through `prometheus-client`.

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

mod api_error;
mod batch_pick;
mod batcher;
mod config;
mod handlers;
mod lookahead;
mod metrics;
mod queue;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;

pub use config::ServerConfig;

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use batcher::batcher;
use handlers::{AppState, router};
use metrics::Metrics;
use queue::Queue;

/// The HTTP server of one [`Runtime`].
#[derive(Debug)]
pub struct Server {
    runtime: Arc<Runtime>,
    config: ServerConfig,
}

/// A server running on a thread of its own ([`Server::spawn`]); dropping it shuts the server
/// down.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets the requests in flight finish, and waits.
    ///
    /// # Errors
    /// [`Error::Server`] when the server failed or its thread panicked.
    pub fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join_thread()
    }

    /// Waits until the server stops (on ctrl-c or SIGTERM when spawned with signals).
    ///
    /// # Errors
    /// As [`shutdown`](ServerHandle::shutdown).
    pub fn wait(mut self) -> Result<()> {
        self.join_thread()
    }

    fn join_thread(&mut self) -> Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| Error::Server("the server thread panicked".to_owned()))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.join_thread();
    }
}

/// Resolves on ctrl-c or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

impl Server {
    /// A server of `runtime` with `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero `max_batch`, `workers`, `queue` or `top_k`, or a
    /// `max_queue_ms` that is not positive; [`Error::NoProfile`] for a default deadline
    /// without a latency profile, [`Error::ForeignProfile`] with one of another setup (device,
    /// CPU, batch size or forward threads; unless allowed).
    pub fn new(runtime: Arc<Runtime>, config: ServerConfig) -> Result<Self> {
        if config.max_batch == 0
            || config.workers == 0
            || config.decode_threads == 0
            || config.queue == 0
            || config.top_k == 0
        {
            return Err(Error::Config(
                "max_batch, workers, decode_threads, queue and top_k must be >= 1".to_owned(),
            ));
        }
        if config.max_queue_ms.is_nan() || config.max_queue_ms <= 0.0 {
            return Err(Error::Config(format!(
                "max_queue_ms must be positive, not {}",
                config.max_queue_ms
            )));
        }
        if config.default_deadline.is_some() && runtime.latency_model().is_none() {
            return Err(runtime.no_latency_model("a default deadline"));
        }
        Ok(Server { runtime, config })
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting connections and
    /// returns once the requests in flight are answered.
    ///
    /// # Errors
    /// [`Error::Server`] when serving fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let queue = Arc::new(Queue::new(self.config.clone()));
        let metrics = Arc::new(Metrics::new());
        let pretrained = self
            .runtime
            .net()
            .config()
            .anchors
            .first()
            .map(snnet_core::ModelEntry::pretrained)
            .ok_or_else(|| Error::Config("the SN-Net has no anchors".to_owned()))?;
        if self.config.warm_up && !self.runtime.is_warm() {
            let runtime = self.runtime.clone();
            // Readiness waits for it; liveness and requests do not.
            drop(tokio::task::spawn_blocking(move || runtime.warm_up()));
        }
        let batcher = tokio::spawn(batcher(
            queue.clone(),
            self.runtime.clone(),
            self.config.workers,
            Arc::new(self.config.labels.clone()),
            self.config.top_k,
            metrics.clone(),
        ));
        let state = Arc::new(AppState {
            runtime: self.runtime,
            config: self.config.clone(),
            pretrained,
            queue: queue.clone(),
            metrics,
        });
        let app = router(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::Server(e.to_string()))?;
        // Every handler is done: the batcher finishes what is queued and stops.
        queue.close();
        batcher
            .await
            .map_err(|e| Error::Server(format!("the batcher failed: {e}")))?;
        Ok(())
    }

    /// Binds `config.addr` and serves on a thread of its own with a tokio runtime, until the
    /// handle's [`shutdown`](ServerHandle::shutdown) (or, with `signals`, ctrl-c or SIGTERM).
    ///
    /// # Errors
    /// [`Error::Server`] when the runtime cannot start or the address cannot be bound.
    pub fn spawn(self, signals: bool) -> Result<ServerHandle> {
        // Blocking threads: the inference workers plus the decoders. More decoders than cores
        // decode no faster, and every thread keeps its own allocator cache: tokio's default of
        // 512 let 32 clients grow the process to 37 threads and 455 MB.
        let blocking = self
            .config
            .workers
            .max(1)
            .saturating_add(self.config.decode_threads.max(1));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(blocking)
            .thread_name("snnet-serve")
            .enable_all()
            .build()
            .map_err(|e| Error::Server(format!("cannot start tokio: {e}")))?;
        let addr = self.config.addr;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| Error::Server(format!("cannot listen on {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Server(e.to_string()))?;
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("snnet-serve".to_owned())
            .spawn(move || {
                rt.block_on(async move {
                    let stop = async move {
                        if signals {
                            tokio::select! {
                                _ = rx => {}
                                () = shutdown_signal() => {}
                            }
                        } else {
                            let _ = rx.await;
                        }
                    };
                    self.serve(listener, stop).await
                })
            })
            .map_err(|e| Error::Server(format!("cannot start the server thread: {e}")))?;
        Ok(ServerHandle {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

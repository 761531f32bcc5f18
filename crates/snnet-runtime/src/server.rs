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
//! | `POST` | `/v1/classify` | body: PNG/JPEG, or safetensors with `input` `[B, C, H, W]`; query `max_latency_ms`, `max_flops` or `stitch` |
//! | `GET` | `/v1/stitches` | the table, the frontiers, the profile setup, the current stitch |
//! | `GET`/`PUT` | `/v1/budget` | `{"max_latency_ms": x}` \| `{"max_flops": n}` \| `{"slo_p95_ms": x}` |
//! | `GET` | `/healthz` | `{"status": "ok"}` |
//! | `GET` | `/metrics` | Prometheus text: requests, errors, latency histograms per stitch, budget, stitch |
//!
//! Errors are JSON `{"error": "..."}` with a 4xx status for the client's mistakes (400 bad
//! input or JSON, 404 unknown stitch, 409 a latency budget without a profile of this setup,
//! 413 body over the limit, 422 a budget nothing fits) and 5xx for the server's.
//!
//! # Dynamic batching
//!
//! Decoded requests queue for `workers` inference slots. When a slot frees up, every queued
//! request for the same stitch as the oldest one joins its batch, up to `max_batch` images;
//! the batch runs as one forward and each request gets its own rows back. A request's answer
//! does not depend on what it was batched with (the forward is row-independent).

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use snnet_core::StitchId;
use snnet_core::burn::tensor::Tensor;
use snnet_core::select::{Budget, CostKind};
use snnet_core::zoo::PretrainedConfig;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::input::{Prediction, decode, top_k};
use crate::runtime::{Choice, Objective, ObjectiveJson, Runtime};

/// The server's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The address to listen on (port 0 picks a free one).
    pub addr: SocketAddr,
    /// The most images one forward runs (dynamic batching); 1 turns batching off.
    pub max_batch: usize,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Class labels by index (a labels file, one per line); missing ones read `class {i}`.
    pub labels: Vec<String>,
    /// Forwards that may run at the same time, each on a blocking thread.
    pub workers: usize,
    /// Requests that may wait for a worker before new ones get 503.
    pub queue: usize,
    /// Predictions per image.
    pub top_k: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_batch: 8,
            max_body_bytes: 16 << 20,
            labels: Vec::new(),
            workers: 1,
            queue: 1024,
            top_k: 5,
        }
    }
}

/// Latency histogram buckets, in milliseconds.
const BUCKETS_MS: [f64; 15] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
    30000.0,
];

/// Status codes counted in `snnet_http_errors_total`.
const ERROR_CODES: [u16; 8] = [400, 404, 405, 409, 413, 422, 500, 503];

#[derive(Debug, Default)]
struct StitchMetrics {
    requests: AtomicU64,
    images: AtomicU64,
    buckets: [AtomicU64; BUCKETS_MS.len()],
    sum_us: AtomicU64,
}

#[derive(Debug)]
struct Metrics {
    stitches: Vec<StitchMetrics>,
    errors: [AtomicU64; ERROR_CODES.len()],
    other_errors: AtomicU64,
    batches: AtomicU64,
    batched_images: AtomicU64,
}

impl Metrics {
    fn new(stitches: usize) -> Self {
        Metrics {
            stitches: (0..stitches).map(|_| StitchMetrics::default()).collect(),
            errors: Default::default(),
            other_errors: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batched_images: AtomicU64::new(0),
        }
    }

    fn request(&self, stitch: StitchId, images: usize, latency: Duration) {
        let Some(m) = self.stitches.get(stitch.index()) else {
            return;
        };
        m.requests.fetch_add(1, Ordering::Relaxed);
        m.images.fetch_add(images as u64, Ordering::Relaxed);
        let ms = latency.as_secs_f64() * 1e3;
        if let Some(i) = BUCKETS_MS.iter().position(|&b| ms <= b)
            && let Some(bucket) = m.buckets.get(i)
        {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        m.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn error(&self, status: StatusCode) {
        match ERROR_CODES.iter().position(|&c| c == status.as_u16()) {
            Some(i) => {
                if let Some(c) = self.errors.get(i) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.other_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One decoded request waiting for a forward.
struct Job {
    images: Tensor<4>,
    stitch: StitchId,
    follows_objective: bool,
    queued: Instant,
    reply: oneshot::Sender<Result<Answer, ApiError>>,
}

/// A request's share of a batch.
#[derive(Debug)]
struct Answer {
    stitch: StitchId,
    latency: Duration,
    queue: Duration,
    batch: usize,
    predictions: Vec<Vec<Prediction>>,
}

#[derive(Debug)]
struct AppState {
    runtime: Arc<Runtime>,
    config: ServerConfig,
    pretrained: PretrainedConfig,
    queue: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("stitch", &self.stitch)
            .field("images", &self.images.dims())
            .finish_non_exhaustive()
    }
}

/// An HTTP error: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use snnet_core::select::Error as SelectError;
        let status = match &e {
            Error::Input(_) | Error::Config(_) => StatusCode::BAD_REQUEST,
            Error::UnknownStitch { .. } => StatusCode::NOT_FOUND,
            Error::ForeignProfile { .. } | Error::NoProfile { .. } => StatusCode::CONFLICT,
            Error::Select(
                SelectError::NothingFits { .. }
                | SelectError::InvalidBudget { .. }
                | SelectError::MissingCost { .. }
                | SelectError::CostMismatch { .. },
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Space(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

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
    /// [`Error::Config`] for a zero `max_batch`, `workers`, `queue` or `top_k`.
    pub fn new(runtime: Arc<Runtime>, config: ServerConfig) -> Result<Self> {
        if config.max_batch == 0 || config.workers == 0 || config.queue == 0 || config.top_k == 0 {
            return Err(Error::Config(
                "max_batch, workers, queue and top_k must be >= 1".to_owned(),
            ));
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
        let (tx, rx) = mpsc::channel(self.config.queue);
        let metrics = Arc::new(Metrics::new(self.runtime.net().num_stitches()));
        let pretrained = self
            .runtime
            .net()
            .config()
            .anchors
            .first()
            .map(snnet_core::ModelEntry::pretrained)
            .ok_or_else(|| Error::Config("the SN-Net has no anchors".to_owned()))?;
        let batcher = tokio::spawn(batcher(
            rx,
            self.runtime.clone(),
            self.config.clone(),
            metrics.clone(),
        ));
        let state = Arc::new(AppState {
            runtime: self.runtime,
            config: self.config.clone(),
            pretrained,
            queue: tx,
            metrics,
        });
        let app = router(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::Server(e.to_string()))?;
        // Every handler is done and the router (with the queue's sender) dropped: the batcher
        // finishes what is queued and stops.
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
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
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

fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/classify", post(classify))
        .route("/v1/stitches", get(stitches))
        .route("/v1/budget", get(get_budget).put(put_budget))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_errors,
        ))
        .with_state(state)
}

async fn count_errors(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        state.metrics.error(status);
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The query of `/v1/classify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyQuery {
    max_latency_ms: Option<f64>,
    /// Accepts `3000000000` and `3e9`.
    max_flops: Option<f64>,
    stitch: Option<usize>,
}

impl ClassifyQuery {
    fn choice(&self) -> Result<Choice, ApiError> {
        match (self.max_latency_ms, self.max_flops, self.stitch) {
            (None, None, None) => Ok(Choice::Default),
            (Some(ms), None, None) => Ok(Choice::Budget(Budget::latency_ms(ms))),
            (None, Some(n), None) => Ok(Choice::Budget(Budget::new(CostKind::Flops, n))),
            (None, None, Some(id)) => Ok(Choice::Stitch(StitchId(id))),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give at most one of max_latency_ms, max_flops, stitch",
            )),
        }
    }
}

/// The JSON answer of `/v1/classify`.
#[derive(Debug, Serialize)]
struct ClassifyResponse {
    stitch: usize,
    description: String,
    latency_ms: f64,
    queue_ms: f64,
    batch: usize,
    predictions: Vec<Vec<Prediction>>,
}

async fn classify(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ClassifyQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let body = body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the body is larger than the limit of {} bytes",
                state.config.max_body_bytes
            )
        } else {
            e.body_text()
        };
        ApiError::new(status, message)
    })?;
    let choice = query.choice()?;
    let stitch = state.runtime.resolve(choice)?;
    // Decoding is CPU work: off the async threads.
    let decode_state = state.clone();
    let images = tokio::task::spawn_blocking(move || {
        decode(
            &body,
            &decode_state.pretrained,
            decode_state.runtime.device(),
        )
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let (reply, answer) = oneshot::channel();
    let job = Job {
        images,
        stitch,
        follows_objective: choice == Choice::Default,
        queued: Instant::now(),
        reply,
    };
    state.queue.try_send(job).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the queue is full")
        }
        mpsc::error::TrySendError::Closed(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ),
    })?;
    let answer = answer.await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request was dropped")
    })??;
    state.metrics.request(
        answer.stitch,
        answer.predictions.len(),
        answer.latency.saturating_add(answer.queue),
    );
    Ok(Json(ClassifyResponse {
        stitch: answer.stitch.index(),
        description: state.runtime.describe(answer.stitch),
        latency_ms: answer.latency.as_secs_f64() * 1e3,
        queue_ms: answer.queue.as_secs_f64() * 1e3,
        batch: answer.batch,
        predictions: answer.predictions,
    }))
}

/// Takes queued jobs in batches and runs them on the blocking pool, `workers` at a time.
async fn batcher(
    mut rx: mpsc::Receiver<Job>,
    runtime: Arc<Runtime>,
    config: ServerConfig,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(config.workers));
    let labels = Arc::new(config.labels.clone());
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut running = Vec::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        if pending.is_empty() {
            match rx.recv().await {
                Some(job) => pending.push_back(job),
                None => break,
            }
        }
        while let Ok(job) = rx.try_recv() {
            pending.push_back(job);
        }
        let Some(stitch) = pending.front().map(|j| j.stitch) else {
            continue;
        };
        let mut batch = Vec::new();
        let mut images: usize = 0;
        let mut rest = VecDeque::with_capacity(pending.len());
        for job in pending.drain(..) {
            let [b, ..] = job.images.dims();
            let grown = images.saturating_add(b);
            if job.stitch == stitch && (batch.is_empty() || grown <= config.max_batch) {
                images = grown;
                batch.push(job);
            } else {
                rest.push_back(job);
            }
        }
        pending = rest;
        metrics.batches.fetch_add(1, Ordering::Relaxed);
        metrics
            .batched_images
            .fetch_add(images as u64, Ordering::Relaxed);
        let runtime = runtime.clone();
        let labels = labels.clone();
        let top_k = config.top_k;
        running.retain(|h: &tokio::task::JoinHandle<()>| !h.is_finished());
        running.push(tokio::task::spawn_blocking(move || {
            run_batch(&runtime, batch, stitch, &labels, top_k);
            drop(permit);
        }));
    }
    for handle in running {
        let _ = handle.await;
    }
}

/// Runs one batch (on a blocking thread) and answers each of its jobs.
fn run_batch(runtime: &Runtime, jobs: Vec<Job>, stitch: StitchId, labels: &[String], k: usize) {
    let started = Instant::now();
    let sizes: Vec<usize> = jobs.iter().map(|j| j.images.dims()[0]).collect();
    let total: usize = sizes.iter().sum();
    let (tensors, jobs): (Vec<Tensor<4>>, Vec<_>) = jobs
        .into_iter()
        .map(|j| {
            let Job {
                images,
                follows_objective,
                queued,
                reply,
                ..
            } = j;
            (images, (follows_objective, queued, reply))
        })
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
    match result {
        Ok((predictions, latency)) => {
            let mut rows = predictions.into_iter();
            for ((follows_objective, queued, reply), size) in jobs.into_iter().zip(sizes) {
                let queue = started.saturating_duration_since(queued);
                if follows_objective {
                    runtime.observe(stitch, queue.saturating_add(latency));
                }
                let _ = reply.send(Ok(Answer {
                    stitch,
                    latency,
                    queue,
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

/// The objective as the budget endpoints show it.
fn budget_json(runtime: &Runtime) -> Value {
    let objective = runtime.objective();
    let budget = match objective {
        Objective::Budget(b) if b.max.is_infinite() => Value::Null,
        other => serde_json::to_value(ObjectiveJson::from(other)).unwrap_or(Value::Null),
    };
    let stitch = runtime.current_stitch();
    json!({
        "budget": budget,
        "objective": objective.to_string(),
        "stitch": stitch.index(),
        "description": runtime.describe(stitch),
    })
}

async fn get_budget(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(budget_json(&state.runtime))
}

async fn put_budget(
    State(state): State<Arc<AppState>>,
    body: Result<Json<ObjectiveJson>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let objective = Objective::try_from(body)?;
    state.runtime.set_objective(objective)?;
    Ok(Json(budget_json(&state.runtime)))
}

async fn stitches(State(state): State<Arc<AppState>>) -> Json<Value> {
    let runtime = &state.runtime;
    let stitches: Vec<Value> = runtime
        .table()
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut v {
                map.insert("description".into(), Value::from(runtime.describe(r.id)));
            }
            v
        })
        .collect();
    let frontiers: serde_json::Map<String, Value> = runtime
        .frontiers()
        .iter()
        .map(|f| {
            (
                f.cost().json_key().to_owned(),
                serde_json::to_value(f.points()).unwrap_or(Value::Null),
            )
        })
        .collect();
    Json(json!({
        "stitches": stitches,
        "frontiers": frontiers,
        "profile": runtime.profile(),
        "serving": runtime.setup(),
        "profile_matches": runtime.profile_matches(),
        "current": runtime.current_stitch().index(),
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::fmt::Write;
    let m = &state.metrics;
    let runtime = &state.runtime;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP snnet_requests_total Classify requests answered, by stitch."
    );
    let _ = writeln!(out, "# TYPE snnet_requests_total counter");
    for (id, s) in m.stitches.iter().enumerate() {
        let n = s.requests.load(Ordering::Relaxed);
        if n > 0 {
            let _ = writeln!(out, "snnet_requests_total{{stitch=\"{id}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP snnet_images_total Images classified, by stitch."
    );
    let _ = writeln!(out, "# TYPE snnet_images_total counter");
    for (id, s) in m.stitches.iter().enumerate() {
        let n = s.images.load(Ordering::Relaxed);
        if n > 0 {
            let _ = writeln!(out, "snnet_images_total{{stitch=\"{id}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP snnet_http_errors_total Error responses, by status code."
    );
    let _ = writeln!(out, "# TYPE snnet_http_errors_total counter");
    for (code, n) in ERROR_CODES.iter().zip(&m.errors) {
        let _ = writeln!(
            out,
            "snnet_http_errors_total{{code=\"{code}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "snnet_http_errors_total{{code=\"other\"}} {}",
        m.other_errors.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP snnet_request_latency_ms Classify latency (queue + forward) in milliseconds, by stitch."
    );
    let _ = writeln!(out, "# TYPE snnet_request_latency_ms histogram");
    for (id, s) in m.stitches.iter().enumerate() {
        let count = s.requests.load(Ordering::Relaxed);
        if count == 0 {
            continue;
        }
        let mut cumulative = 0;
        for (le, b) in BUCKETS_MS.iter().zip(&s.buckets) {
            cumulative = b.load(Ordering::Relaxed).saturating_add(cumulative);
            let _ = writeln!(
                out,
                "snnet_request_latency_ms_bucket{{stitch=\"{id}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "snnet_request_latency_ms_bucket{{stitch=\"{id}\",le=\"+Inf\"}} {count}"
        );
        let sum_ms = s.sum_us.load(Ordering::Relaxed) as f64 / 1e3;
        let _ = writeln!(
            out,
            "snnet_request_latency_ms_sum{{stitch=\"{id}\"}} {sum_ms}"
        );
        let _ = writeln!(
            out,
            "snnet_request_latency_ms_count{{stitch=\"{id}\"}} {count}"
        );
    }
    let _ = writeln!(out, "# HELP snnet_batches_total Forwards run.");
    let _ = writeln!(out, "# TYPE snnet_batches_total counter");
    let _ = writeln!(
        out,
        "snnet_batches_total {}",
        m.batches.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "snnet_batched_images_total {}",
        m.batched_images.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP snnet_current_stitch The stitch requests without a budget run now."
    );
    let _ = writeln!(out, "# TYPE snnet_current_stitch gauge");
    let _ = writeln!(
        out,
        "snnet_current_stitch {}",
        runtime.current_stitch().index()
    );
    let _ = writeln!(
        out,
        "# HELP snnet_budget The objective in force, by kind (max_flops, max_latency_ms, slo_p95_ms, ...)."
    );
    let _ = writeln!(out, "# TYPE snnet_budget gauge");
    let (kind, value) = match runtime.objective() {
        Objective::SloP95Ms(ms) => ("slo_p95_ms", ms),
        Objective::Budget(b) => (
            match b.cost {
                CostKind::Flops => "max_flops",
                CostKind::Params => "max_params",
                CostKind::LatencyMs => "max_latency_ms",
                CostKind::MemoryBytes => "max_memory_bytes",
            },
            b.max,
        ),
    };
    let value = if value.is_infinite() {
        "+Inf".to_owned()
    } else {
        value.to_string()
    };
    let _ = writeln!(out, "snnet_budget{{kind=\"{kind}\"}} {value}");
    if let Some(c) = runtime.controller()
        && let Some(p) = c.window_quantile_ms()
    {
        let _ = writeln!(
            out,
            "# HELP snnet_slo_window_p95_ms The adaptive controller's window quantile."
        );
        let _ = writeln!(out, "# TYPE snnet_slo_window_p95_ms gauge");
        let _ = writeln!(out, "snnet_slo_window_p95_ms {p}");
        let _ = writeln!(out, "snnet_slo_moves_total {}", c.moves());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

//! The server's Prometheus metrics, through [`prometheus_client`] (every metric with its HELP
//! and TYPE, in the OpenMetrics text format).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `snnet_requests_total` | counter | `stitch` |
//! | `snnet_images_total` | counter | `stitch` |
//! | `snnet_request_latency_ms` | histogram (queue + forward) | `stitch` |
//! | `snnet_queue_time_ms` | histogram | |
//! | `snnet_inference_time_ms` | histogram (the forward) | |
//! | `snnet_batch_size` | histogram (images per forward) | |
//! | `snnet_batches_total`, `snnet_batched_images_total` | counter | |
//! | `snnet_queue_depth` | gauge (requests waiting) | |
//! | `snnet_refused_total` | counter | `reason`: `deadline_unreachable`, `queue_full`, `queue_drain`, `shutting_down` |
//! | `snnet_deadline_on_time_total`, `snnet_deadline_late_total` | counter | |
//! | `snnet_deadline_late_margin`, `snnet_deadline_refusal_margin` | gauge (the learned margins over the expected completion: the stitch choice's, the refusals') | |
//! | `snnet_deadline_refusal_share` | gauge (the share the refusals' margin is the quantile at) | |
//! | `snnet_http_errors_total` | counter | `code` |
//! | `snnet_current_stitch` | gauge | |
//! | `snnet_budget` | gauge | `kind`: `max_flops`, `max_latency_ms`, `slo_p95_ms`, ... |
//! | `snnet_slo_window_p95_ms` | gauge | |
//! | `snnet_slo_moves_total` | counter | |
//! | `snnet_ready` | gauge (1 once warmed up) | |

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use snnet_core::StitchId;

use super::api_error::Refusal;
use super::handlers::AppState;

/// Latency histogram buckets, in milliseconds.
const BUCKETS_MS: [f64; 19] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
    2500.0, 5000.0, 10000.0,
];

/// Batch size buckets, in images.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StitchLabel {
    stitch: usize,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS_MS)
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the server keeps, registered once.
#[derive(Debug)]
pub(super) struct Metrics {
    registry: Registry,
    requests: Family<StitchLabel, Counter>,
    images: Family<StitchLabel, Counter>,
    latency: Family<StitchLabel, Histogram, fn() -> Histogram>,
    queue_time: Histogram,
    inference_time: Histogram,
    batch_size: Histogram,
    batches: Counter,
    batched_images: Counter,
    queue_depth: Gauge,
    refused: Family<ReasonLabel, Counter>,
    on_time: Counter,
    late: Counter,
    errors: Family<CodeLabel, Counter>,
    current_stitch: Gauge,
    objective: Family<KindLabel, FloatGauge>,
    slo_window_p95: FloatGauge,
    late_margin: FloatGauge,
    refusal_margin: FloatGauge,
    refusal_share: FloatGauge,
    slo_moves: Counter,
    ready: Gauge,
}

impl Metrics {
    pub(super) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<StitchLabel, Counter>::default();
        let images = Family::<StitchLabel, Counter>::default();
        let latency = Family::<StitchLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let queue_time = latency_histogram();
        let inference_time = latency_histogram();
        let batch_size = Histogram::new(BATCH_BUCKETS);
        let refused = Family::<ReasonLabel, Counter>::default();
        let errors = Family::<CodeLabel, Counter>::default();
        let objective = Family::<KindLabel, FloatGauge>::default();
        let m = Metrics {
            requests,
            images,
            latency,
            queue_time,
            inference_time,
            batch_size,
            batches: Counter::default(),
            batched_images: Counter::default(),
            queue_depth: Gauge::default(),
            refused,
            on_time: Counter::default(),
            late: Counter::default(),
            errors,
            current_stitch: Gauge::default(),
            objective,
            slo_window_p95: FloatGauge::default(),
            late_margin: FloatGauge::default(),
            refusal_margin: FloatGauge::default(),
            refusal_share: FloatGauge::default(),
            slo_moves: Counter::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        // Refusal reasons are listed at zero from the start, so that a dashboard sees them.
        for reason in Refusal::ALL {
            let _ = m.refused.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        let r = &mut registry;
        r.register(
            "snnet_requests",
            "Classify requests answered, by stitch",
            m.requests.clone(),
        );
        r.register(
            "snnet_images",
            "Images classified, by stitch",
            m.images.clone(),
        );
        r.register(
            "snnet_request_latency_ms",
            "Classify latency (queue + forward) in milliseconds, by stitch",
            m.latency.clone(),
        );
        r.register(
            "snnet_queue_time_ms",
            "Time a request waited in the queue, in milliseconds",
            m.queue_time.clone(),
        );
        r.register(
            "snnet_inference_time_ms",
            "Forward latency of the batch a request ran in, in milliseconds",
            m.inference_time.clone(),
        );
        r.register(
            "snnet_batch_size",
            "Images per forward",
            m.batch_size.clone(),
        );
        r.register("snnet_batches", "Forwards run", m.batches.clone());
        r.register(
            "snnet_batched_images",
            "Images run in forwards",
            m.batched_images.clone(),
        );
        r.register(
            "snnet_queue_depth",
            "Requests waiting for a forward",
            m.queue_depth.clone(),
        );
        r.register(
            "snnet_refused",
            "Requests refused without an answer (503), by reason",
            m.refused.clone(),
        );
        r.register(
            "snnet_deadline_on_time",
            "Requests with a deadline answered within it",
            m.on_time.clone(),
        );
        r.register(
            "snnet_deadline_late",
            "Requests with a deadline answered after it (the answer says so)",
            m.late.clone(),
        );
        r.register(
            "snnet_http_errors",
            "Error responses, by status code",
            m.errors.clone(),
        );
        r.register(
            "snnet_current_stitch",
            "The stitch requests without a choice run now (under a budget or SLO objective)",
            m.current_stitch.clone(),
        );
        r.register(
            "snnet_budget",
            "The objective in force, by kind (max_flops, max_latency_ms, slo_p95_ms, ...)",
            m.objective.clone(),
        );
        r.register(
            "snnet_slo_window_p95_ms",
            "The adaptive controller's window quantile in milliseconds (0 without an SLO)",
            m.slo_window_p95.clone(),
        );
        r.register(
            "snnet_deadline_late_margin",
            "The margin learned from lateness that the stitch choice rests on, as a share of the expected completion (0 without deadlines)",
            m.late_margin.clone(),
        );
        r.register(
            "snnet_deadline_refusal_margin",
            "The same at the refusals' share, which requests are answered at all rest on (0 without deadlines)",
            m.refusal_margin.clone(),
        );
        r.register(
            "snnet_deadline_refusal_share",
            "The share of completions the refusals' margin leaves above it, fixed or steered by lateness (0 without deadlines)",
            m.refusal_share.clone(),
        );
        r.register(
            "snnet_slo_moves",
            "Moves of the adaptive controller",
            m.slo_moves.clone(),
        );
        r.register(
            "snnet_ready",
            "1 once the frontier's stitches are warmed up",
            m.ready.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An answered request.
    pub(super) fn request(
        &self,
        stitch: StitchId,
        images: usize,
        queue: Duration,
        forward: Duration,
    ) {
        let label = StitchLabel {
            stitch: stitch.index(),
        };
        self.requests.get_or_create(&label).inc();
        self.images.get_or_create(&label).inc_by(images as u64);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        self.latency
            .get_or_create(&label)
            .observe(ms(queue.saturating_add(forward)));
        self.queue_time.observe(ms(queue));
        self.inference_time.observe(ms(forward));
    }

    /// A forward of `images` images.
    pub(super) fn batch(&self, images: usize) {
        self.batches.inc();
        self.batched_images.inc_by(images as u64);
        self.batch_size.observe(images as f64);
    }

    /// A request refused for `reason`.
    pub(super) fn refused(&self, reason: Refusal) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A request with a deadline answered, in time or not.
    pub(super) fn deadline(&self, on_time: bool) {
        if on_time {
            self.on_time.inc();
        } else {
            self.late.inc();
        }
    }

    /// An error response.
    pub(super) fn error(&self, status: StatusCode) {
        self.errors
            .get_or_create(&CodeLabel {
                code: status.as_u16(),
            })
            .inc();
    }

    /// A move of the adaptive controller.
    pub(super) fn slo_move(&self) {
        self.slo_moves.inc();
    }
}

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    let runtime = &state.runtime;
    let depth = i64::try_from(state.queue.depth()).unwrap_or(i64::MAX);
    m.queue_depth.set(depth);
    m.current_stitch
        .set(i64::try_from(runtime.current_stitch().index()).unwrap_or(i64::MAX));
    let (kind, value) = runtime.objective().json_key_value();
    m.objective.clear();
    // An unbounded budget (the most accurate stitch) has no finite value: no sample.
    if value.is_finite() {
        m.objective.get_or_create(&KindLabel { kind }).set(value);
    }
    let window = runtime
        .controller()
        .and_then(|c| c.window_quantile_ms())
        .unwrap_or(0.0);
    m.slo_window_p95.set(window);
    let model = runtime.latency_model();
    m.late_margin
        .set(model.map_or(0.0, |model| model.late_margin()));
    m.refusal_margin
        .set(model.map_or(0.0, |model| model.refusal_margin()));
    m.refusal_share
        .set(model.map_or(0.0, |model| model.refusal_share()));
    m.ready.set(i64::from(runtime.is_warm()));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

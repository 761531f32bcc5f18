//! The HTTP endpoints.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use snnet_core::StitchId;
use snnet_core::select::{Budget, CostKind};
use snnet_core::zoo::PretrainedConfig;
use tokio::sync::oneshot;

use super::api_error::ApiError;
use super::config::ServerConfig;
use super::metrics::{Metrics, metrics};
use super::queue::{Job, Queue, Target};
use crate::adaptive::Decision;
use crate::deadline::Deadline;
use crate::input::{Prediction, decode};
use crate::objective::{Choice, Objective, ObjectiveJson};
use crate::runtime::Runtime;

#[derive(Debug)]
pub(super) struct AppState {
    pub(super) runtime: Arc<Runtime>,
    pub(super) config: ServerConfig,
    pub(super) pretrained: PretrainedConfig,
    pub(super) queue: Arc<Queue>,
    pub(super) metrics: Arc<Metrics>,
}

pub(super) fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/classify", post(classify))
        .route("/v1/stitches", get(stitches))
        .route("/v1/budget", get(get_budget).put(put_budget))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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

/// Liveness: the server answers.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the frontier's stitches are warmed up (and, for deadlines, the latency profile
/// of this setup is loaded); 503 until then.
async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let runtime = &state.runtime;
    let warm = runtime.is_warm();
    let status = if warm {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if warm { "ready" } else { "warming up" },
        "warmed_up": warm,
        "profile_loaded": runtime.profile().is_some(),
        "profile_matches": runtime.profile_matches(),
        "deadlines": runtime.latency_model().is_some(),
    });
    (status, Json(body))
}

/// The query of `/v1/classify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyQuery {
    max_latency_ms: Option<f64>,
    /// Accepts `3000000000` and `3e9`.
    max_flops: Option<f64>,
    stitch: Option<usize>,
    /// Read as text so that a value that is not a number is refused naming the parameter.
    deadline_ms: Option<String>,
}

impl ClassifyQuery {
    /// The request's choice; `default_deadline` for a request that names none.
    fn choice(&self, default_deadline: Option<Deadline>) -> Result<Choice, ApiError> {
        let deadline_ms = self
            .deadline_ms
            .as_deref()
            .map(|text| {
                text.trim().parse::<f64>().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("invalid deadline_ms {text:?}: not a number of milliseconds"),
                    )
                })
            })
            .transpose()?;
        match (
            self.max_latency_ms,
            self.max_flops,
            self.stitch,
            deadline_ms,
        ) {
            (None, None, None, None) => {
                Ok(default_deadline.map_or(Choice::Default, Choice::Deadline))
            }
            (Some(ms), None, None, None) => Ok(Choice::Budget(Budget::latency_ms(ms))),
            (None, Some(n), None, None) => Ok(Choice::Budget(Budget::new(CostKind::Flops, n))),
            (None, None, Some(id), None) => Ok(Choice::Stitch(StitchId(id))),
            (None, None, None, Some(ms)) => Ok(Choice::Deadline(Deadline::from_ms(ms)?)),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give at most one of max_latency_ms, max_flops, stitch, deadline_ms",
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
    /// The request's deadline, in milliseconds (requests with a deadline only).
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline_ms: Option<f64>,
    /// What was left of the deadline when the answer was ready (negative: late).
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline_left_ms: Option<f64>,
    /// Whether the answer was ready within the deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_time: Option<bool>,
}

async fn classify(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ClassifyQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let arrived = Instant::now();
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
    let choice = query.choice(state.config.default_deadline)?;
    let runtime = &state.runtime;
    let model = runtime.latency_model();
    let (target, deadline) = match choice {
        Choice::Deadline(deadline) => {
            if model.is_none() {
                return Err(runtime.no_latency_model("a deadline").into());
            }
            let due = arrived.checked_add(deadline.duration()).unwrap_or(arrived);
            (Target::Deadline { due }, Some(deadline))
        }
        other => (Target::Stitch(runtime.resolve(other)?), None),
    };
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
    let [size, ..] = images.dims();
    let max_batch = state.config.max_batch;
    // The share of a full batch of the stitch it will (at best) run.
    let work_ms = model
        .and_then(|m| {
            let id = match target {
                Target::Stitch(id) => id,
                Target::Deadline { .. } => m.cheapest()?.id,
            };
            m.forward_ms(id, max_batch)
        })
        .map_or(0.0, |ms| ms * size as f64 / max_batch as f64);
    let (reply, answer) = oneshot::channel();
    let job = Job {
        images,
        size,
        target,
        queued: Instant::now(),
        work_ms,
        reply,
    };
    let refused = |e: ApiError| {
        if let Some(reason) = e.refusal {
            state.metrics.refused(reason);
        }
        e
    };
    state.queue.push(job, model).map_err(refused)?;
    let answer = answer
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request was dropped"))?
        .map_err(refused)?;
    let now = Instant::now();
    let total = now.saturating_duration_since(arrived);
    if let Some(model) = model {
        // What the request cost besides its forward, once off the queue.
        let completion = now.saturating_duration_since(answer.dequeued);
        model.observe_overhead(completion.saturating_sub(answer.latency));
        if let Some(expected) = answer.expected_ms {
            model.observe_completion(expected, completion);
        }
    }
    // The controller sees the whole request; at least queue + forward as the runtime's clock
    // reports them (a simulated load reports more than the wall time).
    let seen = total.max(answer.queue.saturating_add(answer.latency));
    if choice == Choice::Default
        && let Some(Decision::Moved { .. }) =
            runtime.observe_parts(answer.stitch, answer.latency, seen)
    {
        state.metrics.slo_move();
    }
    state.metrics.request(
        answer.stitch,
        answer.predictions.len(),
        answer.queue,
        answer.latency,
    );
    let (deadline_ms, deadline_left_ms, on_time) = match deadline {
        Some(d) => {
            let left = d.ms() - total.as_secs_f64() * 1e3;
            let on_time = total <= d.duration();
            state.metrics.deadline(on_time);
            if let Some(model) = model {
                model.observe_answer(on_time);
            }
            (Some(d.ms()), Some(left), Some(on_time))
        }
        None => (None, None, None),
    };
    Ok(Json(ClassifyResponse {
        stitch: answer.stitch.index(),
        description: runtime.describe(answer.stitch),
        latency_ms: answer.latency.as_secs_f64() * 1e3,
        queue_ms: answer.queue.as_secs_f64() * 1e3,
        batch: answer.batch,
        predictions: answer.predictions,
        deadline_ms,
        deadline_left_ms,
        on_time,
    }))
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

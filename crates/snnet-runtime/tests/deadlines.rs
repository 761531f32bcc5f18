//! Serving under load over real HTTP on 127.0.0.1: deadlines, admission control, readiness,
//! the metrics, and the adaptive controller climbing back, with one and two workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use snnet_core::StitchId;
use snnet_core::burn::tensor::Device;
use snnet_core::select::CostKind;
use snnet_runtime::{
    AdaptiveConfig, Deadline, DeadlineConfig, Objective, RefusalFeedback, Runtime, Server,
    ServerConfig, ServerHandle, SimulatedLoad,
};

use common::http::{agent, get, png, post, read};
use common::profiled;

fn start(runtime: &Arc<Runtime>, config: ServerConfig) -> ServerHandle {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        labels: (0..10).map(|i| format!("label{i}")).collect(),
        ..config
    };
    Server::new(runtime.clone(), config)
        .unwrap()
        .spawn(false)
        .unwrap()
}

fn url(server: &ServerHandle, path: &str) -> String {
    format!("http://{}{path}", server.addr())
}

fn runtime() -> Arc<Runtime> {
    let device = Device::default();
    let (net, table) = profiled(&device);
    Arc::new(Runtime::new(net, table, device).unwrap())
}

fn most_accurate_on_latency(runtime: &Runtime) -> StitchId {
    runtime
        .frontier(CostKind::LatencyMs)
        .unwrap()
        .most_accurate()
        .unwrap()
        .id
}

/// Status, `Retry-After` and JSON body of a classify request on `agent` (keep-alive).
fn classify(agent: &ureq::Agent, url: &str, body: &[u8]) -> (u16, Option<String>, Value) {
    let response = agent
        .post(url)
        .header("content-type", "image/png")
        .send(body)
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, json) = read(response);
    (status, retry, json)
}

fn deadlines_are_honoured_or_refused_fast(workers: usize) {
    let runtime = runtime();
    let server = start(
        &runtime,
        ServerConfig {
            workers,
            ..ServerConfig::default()
        },
    );
    let classify_url = url(&server, "/v1/classify");
    let body = png();
    let agent = agent();

    // A generous deadline: the most accurate stitch of the latency frontier, on time.
    let (status, _, answer) = classify(&agent, &format!("{classify_url}?deadline_ms=5000"), &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["stitch"].as_u64().unwrap() as usize,
        most_accurate_on_latency(&runtime).index()
    );
    assert_eq!(answer["deadline_ms"].as_f64(), Some(5000.0));
    let left = answer["deadline_left_ms"].as_f64().unwrap();
    assert!(left > 0.0 && left < 5000.0, "{answer}");
    assert_eq!(answer["on_time"], Value::Bool(true));
    assert_eq!(answer["predictions"][0].as_array().unwrap().len(), 5);

    // A deadline no stitch can meet: refused at once, with a reason and Retry-After, and the
    // same connection goes on serving.
    let started = Instant::now();
    let (status, retry, answer) =
        classify(&agent, &format!("{classify_url}?deadline_ms=0.001"), &body);
    assert_eq!(status, 503, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(answer["reason"], "deadline_unreachable", "{answer}");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    let (status, _, answer) = classify(&agent, &format!("{classify_url}?deadline_ms=5000"), &body);
    assert_eq!(status, 200, "{answer}");

    // Bad deadlines: 400 naming the parameter; the server keeps serving.
    for bad in ["0", "-5", "NaN", "inf", "60001", "soon", ""] {
        let (status, _, answer) =
            classify(&agent, &format!("{classify_url}?deadline_ms={bad}"), &body);
        assert_eq!(status, 400, "deadline_ms={bad}: {answer}");
        assert!(
            answer.to_string().contains("deadline_ms"),
            "deadline_ms={bad}: {answer}"
        );
    }
    let (status, _, answer) = classify(
        &agent,
        &format!("{classify_url}?deadline_ms=50&stitch=0"),
        &body,
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(get(&url(&server, "/healthz")).0, 200);
    server.shutdown().unwrap();
}

#[test]
fn deadlines_are_honoured_or_refused_fast_one_worker() {
    deadlines_are_honoured_or_refused_fast(1);
}

#[test]
fn deadlines_are_honoured_or_refused_fast_two_workers() {
    deadlines_are_honoured_or_refused_fast(2);
}

/// A burst far above capacity: every request is answered in time or refused at once (at
/// most a few late ones, and those say so), and the requests right after the burst are on
/// time again (no backlog).
fn recovers_right_after_a_burst(workers: usize) {
    let runtime = runtime();
    let deadline_ms = 100.0;
    let server = start(
        &runtime,
        ServerConfig {
            workers,
            default_deadline: Some(Deadline::from_ms(deadline_ms).unwrap()),
            ..ServerConfig::default()
        },
    );
    let classify_url = url(&server, "/v1/classify");
    let body = Arc::new(png());
    // Burst: 16 clients, 40 requests each, back to back (the clients share the CPU with the
    // server here: more of them would measure the test, not the server).
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (u, body) = (classify_url.clone(), body.clone());
            std::thread::spawn(move || {
                let agent = agent();
                (0..40)
                    .map(|_| {
                        let t = Instant::now();
                        let (status, _, answer) = classify(&agent, &u, &body);
                        (status, answer, t.elapsed())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(u16, Value, Duration)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let answered: Vec<&Value> = results
        .iter()
        .filter(|r| r.0 == 200)
        .map(|r| &r.1)
        .collect();
    let refused = results.iter().filter(|r| r.0 == 503).count();
    assert_eq!(answered.len() + refused, results.len(), "only 200 or 503");
    for (status, answer, _) in &results {
        if *status == 503 {
            assert!(
                ["deadline_unreachable", "queue_drain", "queue_full"]
                    .contains(&answer["reason"].as_str().unwrap()),
                "{answer}"
            );
        }
    }
    let late = answered
        .iter()
        .filter(|a| a["on_time"] == Value::Bool(false))
        .count();
    // The few late answers (a CPU shared with other work can stall any forward) say so.
    assert!(
        late <= 2 + answered.len() / 10,
        "{late} of {} answers late",
        answered.len()
    );
    // Right after the burst: calm requests are answered, on time.
    let agent = agent();
    let mut on_time = 0;
    for _ in 0..20 {
        let (status, _, answer) = classify(&agent, &classify_url, &body);
        assert_eq!(status, 200, "after the burst: {answer}");
        if answer["on_time"] == Value::Bool(true) {
            on_time += 1;
        }
    }
    assert!(on_time >= 19, "{on_time} of 20 on time after the burst");
    // Refusals and deadline outcomes are counted.
    let (_, metrics) = get(&url(&server, "/metrics"));
    let text = metrics.as_str().unwrap();
    let sample = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(sample("snnet_refused_total") as usize, refused, "{text}");
    assert_eq!(
        (sample("snnet_deadline_on_time_total") + sample("snnet_deadline_late_total")) as usize,
        answered.len() + 20,
        "{text}"
    );
    server.shutdown().unwrap();
}

#[test]
fn recovers_right_after_a_burst_one_worker() {
    recovers_right_after_a_burst(1);
}

#[test]
fn recovers_right_after_a_burst_two_workers() {
    recovers_right_after_a_burst(2);
}

#[test]
fn ready_only_after_warm_up() {
    let runtime = runtime();
    let server = start(
        &runtime,
        ServerConfig {
            warm_up: false,
            ..ServerConfig::default()
        },
    );
    let (status, body) = get(&url(&server, "/readyz"));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["warmed_up"], Value::Bool(false));
    assert_eq!(body["profile_loaded"], Value::Bool(true));
    // Alive all the same.
    assert_eq!(get(&url(&server, "/healthz")).0, 200);
    runtime.warm_up().unwrap();
    let (status, body) = get(&url(&server, "/readyz"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deadlines"], Value::Bool(true));
    server.shutdown().unwrap();

    // By default the server warms up on its own.
    let runtime = self::runtime();
    let server = start(&runtime, ServerConfig::default());
    let started = Instant::now();
    while get(&url(&server, "/readyz")).0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(runtime.is_warm());
}

/// Every metric a dashboard expects is there, and every sample's family has HELP and TYPE.
#[test]
fn every_metric_has_help_and_type() {
    let runtime = runtime();
    let server = start(&runtime, ServerConfig::default());
    let body = png();
    assert_eq!(
        post(&url(&server, "/v1/classify?deadline_ms=5000"), &body).0,
        200
    );
    assert_eq!(post(&url(&server, "/v1/classify"), &body).0, 200);
    assert_eq!(
        post(&url(&server, "/v1/classify?deadline_ms=0.001"), &body).0,
        503
    );
    let (status, metrics) = get(&url(&server, "/metrics"));
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    let mut described = BTreeSet::new();
    let mut typed = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described.insert(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
        }
    }
    let mut families = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_total", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "{family} has no TYPE:\n{text}");
        assert!(described.contains(family), "{family} has no HELP:\n{text}");
        families.insert(family.to_owned());
    }
    for expected in [
        "snnet_requests",
        "snnet_images",
        "snnet_request_latency_ms",
        "snnet_queue_time_ms",
        "snnet_inference_time_ms",
        "snnet_batch_size",
        "snnet_batches",
        "snnet_batched_images",
        "snnet_queue_depth",
        "snnet_refused",
        "snnet_deadline_on_time",
        "snnet_deadline_late",
        "snnet_deadline_late_margin",
        "snnet_deadline_refusal_margin",
        "snnet_deadline_refusal_share",
        "snnet_http_errors",
        "snnet_current_stitch",
        "snnet_slo_window_p95_ms",
        "snnet_slo_moves",
        "snnet_ready",
    ] {
        assert!(families.contains(expected), "{expected} missing:\n{text}");
    }
    assert!(text.contains("snnet_refused_total{reason=\"deadline_unreachable\"} 1"));
    assert!(text.contains("snnet_refused_total{reason=\"queue_drain\"} 0"));
    assert!(text.contains("snnet_deadline_on_time_total 1"), "{text}");
    assert!(text.contains("snnet_queue_time_ms_count 2"), "{text}");
    assert!(text.contains("snnet_inference_time_ms_count 2"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

/// The adaptive controller over HTTP: under a simulated load it steps down the frontier, and
/// once the load is gone it climbs back to the stitch it started on — the most accurate one
/// predicted within the objective — despite the real per-request overhead.
#[test]
fn the_controller_climbs_back_after_load_falls() {
    let device = Device::default();
    let (net, table) = profiled(&device);
    // Forwards report 1 ms per profiled 0.1 ms ... scaled by the load factor.
    let load = Arc::new(SimulatedLoad::fixed(
        table
            .iter()
            .filter_map(|r| r.latency_ms.map(|ms| (r.id, ms))),
    ));
    let frontier = table.frontier(CostKind::LatencyMs).unwrap();
    let top = frontier.most_accurate().unwrap();
    // An objective far above the top rung's profiled latency plus the HTTP overhead, on the
    // window's median (robust to a stalled request on a busy machine).
    let objective = (top.cost * 4.0).max(100.0);
    let runtime = Arc::new(
        Runtime::builder(net, table, device)
            .clock(load.clone())
            .adaptive(AdaptiveConfig {
                window: 10,
                min_samples: 5,
                quantile: 0.5,
                ..AdaptiveConfig::default()
            })
            .objective(Objective::SloP95Ms(objective))
            .build()
            .unwrap(),
    );
    let start_stitch = runtime.current_stitch();
    assert_eq!(start_stitch, top.id);
    let server = start(&runtime, ServerConfig::default());
    let classify_url = url(&server, "/v1/classify");
    let body = png();
    let agent = agent();
    let send = |n: usize| {
        (0..n)
            .map(|_| {
                let (status, _, answer) = classify(&agent, &classify_url, &body);
                assert_eq!(status, 200, "{answer}");
                StitchId(answer["stitch"].as_u64().unwrap() as usize)
            })
            .collect::<Vec<_>>()
    };
    // A load that makes the top rung 10x the objective: down.
    load.set_factor(objective * 10.0 / top.cost);
    let loaded = send(30);
    assert!(loaded.iter().any(|&s| s != top.id), "{loaded:?}");
    // Load gone: back up to the top, one rung per window.
    load.set_factor(1.0);
    let calm = send(frontier.len() * 8 + 20);
    assert_eq!(*calm.last().unwrap(), top.id, "{calm:?}");
    let (_, metrics) = get(&url(&server, "/metrics"));
    assert!(
        !metrics
            .as_str()
            .unwrap()
            .contains("snnet_slo_moves_total 0")
    );
}

/// With `refusal_feedback`, answers on time loosen the refusals' share (a dashboard sees it
/// move); without it the share stays where it was configured.
#[test]
fn answers_on_time_loosen_the_refusals_share() {
    let share = |feedback: Option<RefusalFeedback>| {
        let device = Device::default();
        let (net, table) = profiled(&device);
        let runtime = Arc::new(
            Runtime::builder(net, table, device)
                .deadline(DeadlineConfig {
                    refusal_feedback: feedback,
                    ..DeadlineConfig::default()
                })
                .build()
                .unwrap(),
        );
        let server = start(&runtime, ServerConfig::default());
        let (body, agent) = (png(), agent());
        let classify_url = url(&server, "/v1/classify?deadline_ms=5000");
        for _ in 0..100 {
            let (status, _, answer) = classify(&agent, &classify_url, &body);
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["on_time"], Value::Bool(true), "{answer}");
        }
        let (_, metrics) = get(&url(&server, "/metrics"));
        let text = metrics.as_str().unwrap().to_owned();
        server.shutdown().unwrap();
        let gauge = text
            .lines()
            .find_map(|l| l.strip_prefix("snnet_deadline_refusal_share "))
            .unwrap_or_else(|| panic!("no refusal share:\n{text}"));
        let gauge: f64 = gauge.parse().unwrap();
        let model = runtime.latency_model().unwrap().refusal_share();
        assert!((gauge - model).abs() < 1e-12, "{gauge} {model}");
        gauge
    };
    let start = DeadlineConfig::default().refusal_share;
    assert!((share(None) - start).abs() < 1e-12);
    // 100 answers on time: exp(100 · gain · late_target) times the start.
    let f = RefusalFeedback::default();
    let loosened = share(Some(f));
    let expected = start * (100.0 * f.gain * f.late_target).exp();
    assert!(
        (loosened / expected - 1.0).abs() < 1e-9,
        "{loosened} {expected}"
    );
}

//! `snnet serve` over real HTTP on 127.0.0.1 (ephemeral port), with a tiny SN-Net.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use snnet_core::StitchId;
use snnet_core::burn::tensor::Device;
use snnet_core::select::{Budget, CostKind, StitchTable};
use snnet_runtime::{Choice, Runtime, ServerConfig, ServerHandle, top_k};

use common::http::{get, local_config, png, post, put, spawn};
use common::{images, profiled, safetensors_body};

struct Fixture {
    runtime: Arc<Runtime>,
    table: StitchTable,
    server: ServerHandle,
    device: Device,
}

impl Fixture {
    fn start(max_batch: usize) -> Self {
        Fixture::with_limit(max_batch, 256 << 10)
    }

    fn with_limit(max_batch: usize, max_body_bytes: usize) -> Self {
        let device = Device::default();
        let (net, table) = profiled(&device);
        let runtime = Arc::new(Runtime::new(net, table.clone(), device.clone()).unwrap());
        let config = ServerConfig {
            max_batch,
            max_body_bytes,
            labels: (0..10).map(|i| format!("label{i}")).collect(),
            ..local_config()
        };
        let server = spawn(runtime.clone(), config);
        Fixture {
            runtime,
            table,
            server,
            device,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr())
    }
}

fn stitch_of(answer: &Value) -> StitchId {
    StitchId(answer["stitch"].as_u64().unwrap() as usize)
}

#[test]
fn classifies_images_and_tensors_within_budgets() {
    let f = Fixture::start(8);
    // The stitch of every classify answer, for the per-stitch metrics below.
    let mut served = Vec::new();
    let (status, health) = get(&f.url("/healthz"));
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    // A PNG: one image, five predictions with labels.
    let (status, answer) = post(&f.url("/v1/classify"), &png());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stitch_of(&answer), f.runtime.current_stitch());
    served.push(stitch_of(&answer));
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 1);
    let top5 = predictions[0].as_array().unwrap();
    assert_eq!(top5.len(), 5);
    assert!(top5[0]["label"].as_str().unwrap().starts_with("label"));
    assert!(top5[0]["prob"].as_f64().unwrap() >= top5[1]["prob"].as_f64().unwrap());
    assert!(answer["description"].as_str().unwrap().contains("vit"));
    assert!(answer["latency_ms"].as_f64().unwrap() > 0.0);

    // A safetensors batch of 3.
    let (status, answer) = post(
        &f.url("/v1/classify?stitch=4"),
        &safetensors_body(&images(3, &f.device)),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stitch_of(&answer), StitchId(4));
    served.push(stitch_of(&answer));
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 3);

    // A latency budget: the chosen stitch's profiled latency is within it.
    let frontier = f.runtime.frontier(CostKind::LatencyMs).unwrap().clone();
    for point in frontier.points() {
        let budget = point.cost * 1.0001;
        let (status, answer) = post(
            &f.url(&format!("/v1/classify?max_latency_ms={budget}")),
            &png(),
        );
        assert_eq!(status, 200, "{answer}");
        let row = f.table.get(stitch_of(&answer).index()).unwrap();
        assert!(row.latency_ms.unwrap() <= budget);
        // The most accurate frontier point within the budget: this point, or a later one whose
        // measured latency lies within the 0.01 % margin (two profiled medians that close).
        let expected = frontier
            .points()
            .iter()
            .rev()
            .find(|p| p.cost <= budget)
            .unwrap();
        assert!(expected.cost >= point.cost);
        assert_eq!(stitch_of(&answer), expected.id);
        served.push(stitch_of(&answer));
    }
    // A FLOPs budget.
    let cheapest = f
        .runtime
        .frontier(CostKind::Flops)
        .unwrap()
        .cheapest()
        .unwrap();
    let (status, answer) = post(
        &f.url(&format!("/v1/classify?max_flops={}", cheapest.cost as u64)),
        &png(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stitch_of(&answer), cheapest.id);
    served.push(stitch_of(&answer));

    // The table and the frontiers.
    let (status, stitches) = get(&f.url("/v1/stitches"));
    assert_eq!(status, 200);
    assert_eq!(stitches["stitches"].as_array().unwrap().len(), 23);
    assert!(
        stitches["frontiers"]["latency_ms"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    assert_eq!(stitches["profile_matches"], Value::Bool(true));

    // Metrics: requests per stitch, a histogram, the budget and stitch.
    let (status, metrics) = get(&f.url("/metrics"));
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    // Stitch 4 was asked for once; the budgets may have chosen it too (it depends on the
    // latencies profiled at the start), so count what the answers said.
    let fours = served.iter().filter(|&&s| s == StitchId(4)).count();
    assert!(fours >= 1);
    assert!(
        text.contains(&format!("snnet_requests_total{{stitch=\"4\"}} {fours}")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("snnet_request_latency_ms_bucket{")
                && l.contains("stitch=\"4\"")
                && l.contains("le=\"+Inf\"")
                && l.ends_with(&format!(" {fours}"))),
        "{text}"
    );
    assert!(text.contains("snnet_current_stitch "));
    // An unbounded budget has no finite value: no sample.
    assert!(!text.contains("snnet_budget{"), "{text}");
}

#[test]
fn budget_put_mid_stream_changes_the_next_requests_stitch() {
    let f = Fixture::start(8);
    let flops = f.runtime.frontier(CostKind::Flops).unwrap().clone();
    let (status, budget) = get(&f.url("/v1/budget"));
    assert_eq!(status, 200);
    assert_eq!(budget["budget"], Value::Null);
    let first = stitch_of(&post(&f.url("/v1/classify"), &png()).1);
    assert_eq!(flops.most_accurate().unwrap().id, first);

    let cheap = flops.cheapest().unwrap();
    let (status, budget) = put(
        &f.url("/v1/budget"),
        &format!("{{\"max_flops\": {}}}", cheap.cost as u64),
    );
    assert_eq!(status, 200, "{budget}");
    assert_eq!(budget["stitch"].as_u64(), Some(cheap.id.index() as u64));
    assert_eq!(
        budget["budget"]["max_flops"].as_u64(),
        Some(cheap.cost as u64)
    );
    for _ in 0..3 {
        assert_eq!(stitch_of(&post(&f.url("/v1/classify"), &png()).1), cheap.id);
    }
    // A request's own budget still wins.
    let (_, answer) = post(&f.url("/v1/classify?stitch=0"), &png());
    assert_eq!(stitch_of(&answer), StitchId(0));

    // A latency budget, then an SLO.
    let lat = f.runtime.frontier(CostKind::LatencyMs).unwrap().clone();
    let (status, budget) = put(
        &f.url("/v1/budget"),
        &format!("{{\"max_latency_ms\": {}}}", lat.points()[0].cost * 1.0001),
    );
    assert_eq!(status, 200, "{budget}");
    assert_eq!(
        stitch_of(&post(&f.url("/v1/classify"), &png()).1),
        lat.points()[0].id
    );
    let (status, budget) = put(&f.url("/v1/budget"), "{\"slo_p95_ms\": 10000}");
    assert_eq!(status, 200, "{budget}");
    assert_eq!(budget["budget"]["slo_p95_ms"].as_f64(), Some(10000.0));
    let (_, metrics) = get(&f.url("/metrics"));
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("snnet_budget{kind=\"slo_p95_ms\"} 10000.0")
    );
}

/// 200 concurrent requests while the budget changes three times: all answered, each by a
/// stitch that a budget in force during the request allowed.
#[test]
fn two_hundred_concurrent_requests_across_three_budget_changes() {
    let f = Fixture::start(8);
    let flops = f.runtime.frontier(CostKind::Flops).unwrap().clone();
    let n = flops.len();
    let budgets: Vec<Budget> = [0, n / 3, 2 * n / 3, n - 1]
        .iter()
        .map(|&i| Budget::new(CostKind::Flops, flops.points()[i].cost))
        .collect();
    let stitch_of_budget: Vec<StitchId> = budgets
        .iter()
        .map(|&b| f.runtime.select(b).unwrap())
        .collect();
    put(
        &f.url("/v1/budget"),
        &format!("{{\"max_flops\": {}}}", budgets[0].max as u64),
    );
    // Times at which each budget came into force.
    let changes: Arc<Mutex<Vec<(Instant, usize)>>> =
        Arc::new(Mutex::new(vec![(Instant::now(), 0)]));
    let body = Arc::new(safetensors_body(&images(1, &f.device)));
    let url = f.url("/v1/classify");
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis((i % 50) as u64 * 4));
                let start = Instant::now();
                let (status, answer) = post(&url, &body);
                (start, Instant::now(), status, answer)
            })
        })
        .collect();
    for (k, b) in budgets.iter().enumerate().skip(1) {
        std::thread::sleep(Duration::from_millis(60));
        let (status, _) = put(
            &url.replace("classify", "budget"),
            &format!("{{\"max_flops\": {}}}", b.max as u64),
        );
        assert_eq!(status, 200);
        changes.lock().unwrap().push((Instant::now(), k));
    }
    let changes = changes.lock().unwrap().clone();
    let mut answered = 0;
    let mut seen = BTreeSet::new();
    for client in clients {
        let (start, end, status, answer) = client.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        answered += 1;
        let stitch = stitch_of(&answer);
        seen.insert(stitch);
        // Budgets in force at some point of [start, end]: the last before start and every one
        // that came in before end.
        let first = changes.iter().rposition(|(t, _)| *t <= start).unwrap_or(0);
        let last = changes.iter().rposition(|(t, _)| *t <= end).unwrap_or(0);
        let allowed: Vec<StitchId> = changes[first..=last]
            .iter()
            .map(|&(_, k)| stitch_of_budget[k])
            .collect();
        // The PUT's answer comes after the switch: the next budget may already be in force.
        let allowed_next = changes.get(last + 1).map(|&(_, k)| stitch_of_budget[k]);
        assert!(
            allowed.contains(&stitch) || allowed_next == Some(stitch),
            "stitch {stitch} not allowed by {allowed:?}"
        );
    }
    assert_eq!(answered, 200);
    assert!(seen.len() >= 2, "{seen:?}");
    let (_, metrics) = get(&f.url("/metrics"));
    let text = metrics.as_str().unwrap().to_owned();
    let total: u64 = text
        .lines()
        .filter(|l| l.starts_with("snnet_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 200);
}

#[test]
fn bad_requests_get_a_4xx_and_the_server_stays_up() {
    let f = Fixture::start(8);
    let classify = f.url("/v1/classify");
    let x = images(1, &f.device);
    let wrong_shape = safetensors_body(&snnet_core::burn::tensor::Tensor::<4>::zeros(
        [1, 3, 16, 16],
        &f.device,
    ));
    type Request<'a> = Box<dyn Fn() -> (u16, Value) + 'a>;
    let (f, x, classify) = (&f, &x, classify.as_str());
    // A classify request with `body`; one with `query` and a valid body; a budget update.
    let raw = |body: Vec<u8>| -> Request<'_> { Box::new(move || post(classify, &body)) };
    let query = |query: &'static str| -> Request<'_> {
        Box::new(move || post(&format!("{classify}?{query}"), &safetensors_body(x)))
    };
    let budget =
        |body: &'static str| -> Request<'_> { Box::new(move || put(&f.url("/v1/budget"), body)) };
    let cases: Vec<(&str, u16, Request<'_>)> = vec![
        ("garbage", 400, raw(b"definitely not an image".to_vec())),
        ("empty body", 400, raw(Vec::new())),
        (
            "broken png",
            400,
            raw(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRxx".to_vec()),
        ),
        ("wrong shape", 400, raw(wrong_shape)),
        ("too large", 413, raw(vec![7u8; 300 << 10])),
        ("unknown stitch", 404, query("stitch=999")),
        ("infeasible budget", 422, query("max_flops=1")),
        ("negative budget", 422, query("max_latency_ms=-1")),
        ("two budgets", 400, query("max_flops=1&stitch=2")),
        ("bad query", 400, query("max_flops=lots")),
        ("bad json", 400, budget("{\"max_flops\": ")),
        ("unknown key", 422, budget("{\"max_gpus\": 1}")),
        ("no budget", 400, budget("{}")),
        ("infeasible put", 422, budget("{\"max_flops\": 1}")),
        ("bad slo", 400, budget("{\"slo_p95_ms\": 0}")),
        ("no such path", 404, Box::new(|| get(&f.url("/v2/nothing")))),
        ("wrong method", 405, Box::new(|| get(classify))),
    ];
    for (what, expected, request) in &cases {
        let (status, body) = request();
        assert_eq!(status, *expected, "{what}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
        // Still serving.
        assert_eq!(get(&f.url("/healthz")).0, 200, "after {what}");
    }
    let (status, answer) = post(classify, &safetensors_body(x));
    assert_eq!(status, 200, "{answer}");
    let (_, metrics) = get(&f.url("/metrics"));
    let text = metrics.as_str().unwrap().to_owned();
    assert!(
        text.contains("snnet_http_errors_total{code=\"413\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("snnet_http_errors_total{code=\"404\"} 2"),
        "{text}"
    );
}

/// Requests that queue up are batched, and each gets the answer it would get alone.
#[test]
fn dynamic_batching_keeps_every_answer() {
    let f = Fixture::start(16);
    let stitch = StitchId(7);
    let inputs: Vec<_> = (0..24).map(|_| images(1, &f.device)).collect();
    let url = format!("{}?stitch={}", f.url("/v1/classify"), stitch.index());
    let clients: Vec<_> = inputs
        .iter()
        .map(|x| {
            let (url, body) = (url.clone(), safetensors_body(x));
            std::thread::spawn(move || post(&url, &body))
        })
        .collect();
    let answers: Vec<Value> = clients
        .into_iter()
        .map(|c| {
            let (status, answer) = c.join().unwrap();
            assert_eq!(status, 200, "{answer}");
            answer
        })
        .collect();
    let max_batch = answers
        .iter()
        .map(|a| a["batch"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(max_batch > 1, "no request was batched");
    for (x, answer) in inputs.iter().zip(&answers) {
        let alone = f.runtime.infer(x.clone(), Choice::Stitch(stitch)).unwrap();
        let expected = top_k(alone.logits, 5, &[]).unwrap();
        let got = answer["predictions"][0].as_array().unwrap();
        for (e, g) in expected[0].iter().zip(got) {
            assert_eq!(g["index"].as_u64(), Some(e.index as u64));
            assert!((g["prob"].as_f64().unwrap() - f64::from(e.prob)).abs() < 1e-5);
        }
    }
}

/// Shutdown lets a request in flight finish, then stops listening.
#[test]
fn shutdown_drains_requests_in_flight() {
    let f = Fixture::with_limit(64, 4 << 20);
    let addr = f.server.addr();
    let url = f.url("/v1/classify?stitch=22");
    // A big batch keeps the forward busy for a while.
    let body = safetensors_body(&images(48, &f.device));
    let client = std::thread::spawn(move || post(&url, &body));
    std::thread::sleep(Duration::from_millis(150));
    let Fixture { server, .. } = f;
    server.shutdown().unwrap();
    let (status, answer) = client.join().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 48);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

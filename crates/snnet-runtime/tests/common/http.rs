//! HTTP helpers for the tests that start a real server on 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use snnet_runtime::Runtime;
use snnet_runtime::{Server, ServerConfig, ServerHandle};

/// A server config on a free port of 127.0.0.1, its queue allowed a minute to drain: tests that
/// are not about admission control must not see their bursts shed on a machine busy with
/// other work.
pub(crate) fn local_config() -> ServerConfig {
    ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        max_queue_ms: 60_000.0,
        ..ServerConfig::default()
    }
}

/// `runtime` served with `config`, running.
pub(crate) fn spawn(runtime: Arc<Runtime>, config: ServerConfig) -> ServerHandle {
    Server::new(runtime, config).unwrap().spawn(false).unwrap()
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Status and JSON (or text) body.
pub(crate) fn read(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

pub(crate) fn post(url: &str, body: &[u8]) -> (u16, Value) {
    read(
        agent()
            .post(url)
            .header("content-type", "application/octet-stream")
            .send(body)
            .unwrap(),
    )
}

pub(crate) fn put(url: &str, body: &str) -> (u16, Value) {
    read(
        agent()
            .put(url)
            .header("content-type", "application/json")
            .send(body)
            .unwrap(),
    )
}

pub(crate) fn get(url: &str) -> (u16, Value) {
    read(agent().get(url).call().unwrap())
}

pub(crate) fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, 90])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

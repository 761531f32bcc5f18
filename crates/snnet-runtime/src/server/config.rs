//! The server's settings.

use std::net::SocketAddr;

use crate::deadline::Deadline;

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
    /// Threads decoding request bodies (PNG/JPEG/safetensors) besides the workers; requests
    /// beyond them wait their turn (the CPU's cores by default).
    pub decode_threads: usize,
    /// Requests that may wait for a worker before new ones get 503.
    pub queue: usize,
    /// Predictions per image.
    pub top_k: usize,
    /// The deadline of requests that name no choice (no `stitch`, budget or `deadline_ms`);
    /// `None` runs them on the objective's stitch.
    pub default_deadline: Option<Deadline>,
    /// New requests are refused (503, `Retry-After`) while the queue is predicted to take
    /// longer than this to drain, in milliseconds (needs a latency profile to predict).
    pub max_queue_ms: f64,
    /// Run every frontier stitch once before `/readyz` says ready.
    pub warm_up: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_batch: 8,
            max_body_bytes: 16 << 20,
            labels: Vec::new(),
            workers: 1,
            decode_threads: std::thread::available_parallelism().map_or(2, usize::from),
            queue: 1024,
            top_k: 5,
            default_deadline: None,
            max_queue_ms: 1000.0,
            warm_up: true,
        }
    }
}

//! The README's Rust snippets, compiled and run by `cargo test --doc -p snnet-readme` (those that
//! need files a user brings — weights, an image — or minutes of training are `no_run`: compiled
//! only). `fixtures` here links to the workspace's `fixtures/`, so the README's relative paths
//! resolve as they do from the repository root.
#![doc = include_str!("../../../README.md")]

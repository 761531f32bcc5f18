#!/usr/bin/env bash
# The README's test command, on a fresh Debian/Ubuntu machine with a Rust toolchain: installs the
# system packages the tests use when they are missing (apt, via sudo when not root), then runs the
# whole workspace's tests. `.ci/run` calls this same script.
#
#   libopenblas-dev        the `lapack` least-squares backend (snnet-lstsq/lapack) links OpenBLAS
#   dataset-fashion-mnist  real data for the data, training and shipped-anchor tests
#
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p snnet-core`).
set -euo pipefail
cd "$(dirname "$0")/.."

HINT='install them, or run: cargo test --workspace (without the LAPACK backend)' scripts/apt_install.sh libopenblas-dev dataset-fashion-mnist

exec cargo test --workspace --locked --features snnet-core/lapack "$@"

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

PACKAGES=(libopenblas-dev dataset-fashion-mnist)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "scripts/test.sh: missing ${missing[*]} and no apt-get: install them, or run" >&2
        echo "  cargo test --workspace   (without the LAPACK backend)" >&2
        exit 1
    fi
    echo "installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${missing[@]}"
fi

exec cargo test --workspace --locked --features snnet-core/lapack "$@"

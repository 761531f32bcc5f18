#!/usr/bin/env bash
# The wgpu tests (issue 14), on a fresh Debian/Ubuntu machine with a Rust toolchain: installs
# Mesa's software Vulkan (lavapipe) and the Vulkan loader when they are missing (apt, via sudo when
# not root), then runs the device parity checks of snnet-device-check on `wgpu` — reduced DeiT,
# Swin and ResNet-50 forwards, the least-squares init, three SN-Net stitches and one training step
# (on one shard, and in two shards on the one adapter: the CLI's `--devices wgpu,wgpu`), each against the CPU and the committed references (max abs difference ≤ 1e-4). `.ci/run`
# calls it; on a machine with a GPU it runs on the GPU's own Vulkan driver instead.
#
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

HINT="install a Vulkan driver" scripts/apt_install.sh mesa-vulkan-drivers libvulkan1

export SNNET_TEST_DEVICE=${SNNET_TEST_DEVICE:-wgpu}
exec cargo test --locked -p snnet-device-check --features wgpu "$@" -- --nocapture

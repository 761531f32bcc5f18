#!/usr/bin/env bash
# The wgpu tests (issue 14), on a fresh Debian/Ubuntu machine with a Rust toolchain: installs
# Mesa's software Vulkan (lavapipe) and the Vulkan loader when they are missing (apt, via sudo when
# not root), then runs the device parity checks of snnet-device-check on `wgpu` — reduced DeiT,
# Swin and ResNet-50 forwards, the least-squares init, three SN-Net stitches and one training step,
# each against the CPU and the committed references (max abs difference ≤ 1e-4). `.ci/run`
# calls it; on a machine with a GPU it runs on the GPU's own Vulkan driver instead.
#
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(mesa-vulkan-drivers libvulkan1)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "scripts/test_wgpu.sh: missing ${missing[*]} and no apt-get: install a Vulkan driver" >&2
        exit 1
    fi
    echo "installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${missing[@]}"
fi

export SNNET_TEST_DEVICE=${SNNET_TEST_DEVICE:-wgpu}
exec cargo test --locked -p snnet-device-check --features wgpu "$@" -- --nocapture

#!/usr/bin/env bash
# The GPU check (issue 14): parity of one SN-Net code path on wgpu (Vulkan) and LibTorch-CUDA
# against the CPU and the committed references, the forward time of every DeiT-Ti/S/B stitch at
# batch 1/8/64, and one timed training step, on one shard and in two data-parallel shards on the
# GPU (as `snnet train --devices wgpu,wgpu`) — written as one markdown report.
#
#   scripts/gpu_check.sh build         build the wgpu binary (release) into target/gpu-check/
#   scripts/gpu_check.sh build-tch     build the LibTorch binary too (needs PyTorch: see
#                                      scripts/tch_setup.sh; run it there with the same torch)
#   scripts/gpu_check.sh run [ARGS]    run every binary built, one device per process, and write
#                                      target/gpu-check/report.md (ARGS go to each run: the default
#                                      is `--batches 1,8,64 --warmup 2 --iters 5` over all 71
#                                      stitches; e.g. `--batches 1 --iters 2` on lavapipe)
#
# Build where cargo works, then run on the GPU machine from the repository root (the fixtures
# are read from it): the folder target/gpu-check/ is all that must travel (the `*.xz` files and
# lib/; the device tool's `carry`). Devices:
#   wgpu          always; needs a Vulkan loader (libvulkan.so.1: a copy travels in
#                 target/gpu-check/lib) and the GPU's Vulkan driver (NVIDIA: libGLX_nvidia.so.0;
#                 an ICD file is written for it when the system has none)
#   tch:cuda:0    when the LibTorch binary was built and `python3 -c "import torch"` finds a CUDA
#                 build of the same torch version on the machine
# SNNET_GPU_DEVICES overrides the device list (e.g. "wgpu tch:cpu" to try it on a CPU machine).
# Exit status: 0 when every check that ran passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/gpu-check
mode=${1:-run}
shift || true

# The binaries travel stripped and xz-compressed (~13 MB instead of ~100 MB).
pack() {
    strip -o "$OUT/$2" "$1"
    xz -T0 -6 -f "$OUT/$2"
}
unpack() {
    local name=$1
    [ -f "$OUT/$name.xz" ] || return 0
    if [ ! -x "$OUT/bin/$name" ] || [ "$OUT/$name.xz" -nt "$OUT/bin/$name" ]; then
        mkdir -p "$OUT/bin"
        if command -v xz >/dev/null; then
            xz -dc "$OUT/$name.xz" > "$OUT/bin/$name"
        else
            python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
                "$OUT/$name.xz" "$OUT/bin/$name"
        fi
        chmod +x "$OUT/bin/$name"
    fi
}

case "$mode" in
build)
    cargo build --release --locked -p snnet-device-check --features wgpu
    mkdir -p "$OUT/lib"
    pack target/release/snnet-device-check snnet-device-check
    # The Vulkan loader, for machines that have the driver but not the loader.
    for lib in /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib64/libvulkan.so.1; do
        if [ -e "$lib" ]; then cp -L "$lib" "$OUT/lib/libvulkan.so.1"; break; fi
    done
    ls -la "$OUT" "$OUT/lib"
    ;;
build-tch)
    # LibTorch from PyPI's torch wheel (scripts/tch_setup.sh makes the venv).
    VENV=${SNNET_TCH_VENV:-$PWD/.venv-tch}
    export LIBTORCH_USE_PYTORCH=1 PATH="$VENV/bin:$PATH"
    CARGO_TARGET_DIR=target/tch cargo build --release --locked -p snnet-device-check --features wgpu,tch
    mkdir -p "$OUT"
    pack target/tch/release/snnet-device-check snnet-device-check-tch
    ;;
run)
    unpack snnet-device-check
    unpack snnet-device-check-tch
    [ -x "$OUT/bin/snnet-device-check" ] || { echo "no $OUT/snnet-device-check.xz: run 'scripts/gpu_check.sh build' first" >&2; exit 2; }
    # A Vulkan loader: the system's, else the copy that travelled.
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
        export LD_LIBRARY_PATH="$PWD/$OUT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "using the Vulkan loader in $OUT/lib" >&2
    fi
    # NVIDIA's Vulkan driver without an ICD file (containers often mount the libraries only).
    if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1 \
        && ldconfig -p 2>/dev/null | grep -q libGLX_nvidia.so.0; then
        printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3"}}\n' \
            > "$OUT/nvidia_icd.json"
        export VK_ICD_FILENAMES="$PWD/$OUT/nvidia_icd.json"
        echo "using $VK_ICD_FILENAMES" >&2
    fi
    devices=${SNNET_GPU_DEVICES:-}
    if [ -z "$devices" ]; then
        devices="wgpu"
        if [ -x "$OUT/bin/snnet-device-check-tch" ] \
            && python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
            devices="$devices tch:cuda:0"
        fi
    fi
    report="$OUT/report.md"
    {
        echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo
        command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/GPU: /'
        echo
    } > "$report"
    status=0
    for device in $devices; do
        bin="$OUT/bin/snnet-device-check"
        env=()
        case "$device" in
        tch*)
            bin="$OUT/bin/snnet-device-check-tch"
            torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
            env=(LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}")
            ;;
        esac
        echo "== $device ($bin)" >&2
        # One process per device: a driver that fails to start cannot take the others down.
        if ! env "${env[@]}" "$bin" --device "$device" --root . "$@" --out "$OUT/report-$device.md"; then
            status=1
            echo "## \`$device\`: FAILED (exit status above; see the log)" >> "$report"
        fi
        if [ -f "$OUT/report-$device.md" ]; then cat "$OUT/report-$device.md" >> "$report"; fi
    done
    echo "report: $report" >&2
    exit $status
    ;;
*)
    sed -n 2,22p "$0"
    exit 2
    ;;
esac

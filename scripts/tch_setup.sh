#!/usr/bin/env bash
# LibTorch for the `tch` feature (Burn's LibTorch backend), from PyPI's torch wheel: the version
# burn-tch 0.22.1's tch 0.22 expects (torch 2.9.0; the wheel carries the CUDA libraries, ~6 GB
# with its nvidia-* dependencies). Local only, never CI.
#
#   scripts/tch_setup.sh                  make .venv-tch (or $SNNET_TCH_VENV) with torch 2.9.0
#   source <(scripts/tch_setup.sh env)    export what a build and a run with `--features tch` need
#
# Then, e.g.:
#   cargo build --release -p snnet-cli --features tch && target/release/snnet forward --device tch:cpu ...
#   cargo test -p snnet-device-check --features tch -- --nocapture   (SNNET_TEST_DEVICE=tch:cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SNNET_TCH_VENV:-$PWD/.venv-tch}
TORCH=2.9.0

if [ "${1:-}" = "env" ]; then
    lib=$("$VENV/bin/python" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
    echo "export LIBTORCH_USE_PYTORCH=1"
    echo "export PATH=\"$VENV/bin:\$PATH\""
    echo "export LD_LIBRARY_PATH=\"$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
    exit 0
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "torch==$TORCH"
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'CUDA build', torch.version.cuda)"
echo "now: source <(scripts/tch_setup.sh env)" >&2

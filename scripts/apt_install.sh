#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are missing (apt, via sudo when not
# root); prints HINT (the environment variable) and exits 1 when some are missing and there is no
# apt-get. Used by scripts/test.sh and scripts/test_wgpu.sh.
#
#   HINT="install them, or ..." scripts/apt_install.sh PACKAGE...
set -euo pipefail

missing=()
for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "missing ${missing[*]} and no apt-get${HINT:+: $HINT}" >&2
    exit 1
fi
echo "installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"

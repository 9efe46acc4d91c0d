#!/usr/bin/env sh
# Installs NVRTC (CUDA 13.0, from NVIDIA's PyPI wheel) into DIR and prints the library
# directory to export as PROOFMILL_NVRTC_LIB_DIR (or to put on LD_LIBRARY_PATH).
# Idempotent: does nothing when the library is already there. No GPU or CUDA toolkit needed.
#
#   usage: scripts/nvrtc-setup.sh [DIR]        (default: .nvrtc)
#   e.g.   export PROOFMILL_NVRTC_LIB_DIR="$(scripts/nvrtc-setup.sh /opt/nvrtc)"
set -eu

VERSION="13.0.88"
DIR="${1:-.nvrtc}"
LIB_DIR="$DIR/nvidia/cu13/lib"

if ! ls "$LIB_DIR"/libnvrtc.so* >/dev/null 2>&1; then
    PIP="${PIP:-}"
    if [ -z "$PIP" ]; then
        if command -v pip3 >/dev/null 2>&1; then PIP="pip3"
        elif command -v pip >/dev/null 2>&1; then PIP="pip"
        else PIP="python3 -m pip"; fi
    fi
    mkdir -p "$DIR"
    # shellcheck disable=SC2086
    $PIP install --quiet --disable-pip-version-check --no-deps --target "$DIR" \
        "nvidia-cuda-nvrtc==$VERSION" >&2
fi

if ! ls "$LIB_DIR"/libnvrtc.so* >/dev/null 2>&1; then
    echo "nvrtc-setup: libnvrtc not found under $LIB_DIR after install" >&2
    exit 1
fi
cd "$LIB_DIR" && pwd

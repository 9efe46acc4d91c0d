#!/usr/bin/env sh
# Installs moto's S3-compatible test server (PyPI `moto[server]`) into a virtual environment
# at DIR and prints the path of its `moto_server`, for PROOFMILL_MOTO_SERVER: the job server's
# S3 proof-store test runs against it. Idempotent. Needs python3 with venv.
#
#   usage: scripts/moto-setup.sh [DIR]        (default: .moto)
set -eu

VERSION="5.1.22"
DIR="${1:-.moto}"
EXE="$DIR/bin/moto_server"

if [ ! -x "$EXE" ]; then
    python3 -m venv "$DIR" >&2
    "$DIR/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$VERSION" >&2
fi
if [ ! -x "$EXE" ]; then
    echo "moto-setup: $EXE missing after install" >&2
    exit 1
fi
cd "$(dirname "$EXE")" && echo "$(pwd)/moto_server"

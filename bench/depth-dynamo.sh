#!/usr/bin/env bash
# Deep pages on DynamoDB Local: `cargo bench -p colloquy-bench-depth-dynamo` (release settings)
# against DynamoDB Local. Uses the emulators of ENV_FILE when given (written by
# `scripts/emulators.sh start ENV_FILE`), else starts a set of its own and stops it at the end.
# Prints a Markdown table (docs/benchmarks.md, "Deep pages on DynamoDB Local").
#   bench/depth-dynamo.sh [ENV_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${1:-}" ]; then
    # shellcheck disable=SC1090
    . "$1"
else
    OWN_ENV=$(mktemp)
    trap './scripts/emulators.sh stop "$OWN_ENV"' EXIT
    ./scripts/emulators.sh start "$OWN_ENV"
    # shellcheck disable=SC1090
    . "$OWN_ENV"
fi
cargo bench --locked -p colloquy-bench-depth-dynamo

#!/usr/bin/env bash
# Resource probes of the local server (docs/benchmarks.md, "Under attack"): builds the release
# server and the probe, then runs bench/probe against a fresh server on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p colloquy -p colloquy-probe >&2
exec target/release/colloquy-probe "$(pwd)/target/release/colloquy"

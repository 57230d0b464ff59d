#!/usr/bin/env bash
# Benchmarks every Lambda function as Lambda runs it: builds release binaries for this
# machine (and, when it can, the arm64 deploy artefacts to report their size), starts the
# emulators, runs bench/runner, and prints the table recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
FUNCTIONS=$(ls functions)

echo "== release build (native, for running)" >&2
cargo build --release --locked $(for f in $FUNCTIONS hello-lambda hello-aws-lambda; do printf -- '-p %s ' "$f"; done) >&2

echo "== arm64 deploy build (cargo lambda), for binary sizes" >&2
CACHE="${COLLOQUY_EMULATOR_CACHE:-$HOME/.cache/colloquy-emulators}"
if [ ! -x "$CACHE/cargo-lambda/bin/cargo-lambda" ]; then
    python3 -m venv "$CACHE/cargo-lambda" && "$CACHE/cargo-lambda/bin/pip" install -q cargo-lambda
fi
PATH="$CACHE/cargo-lambda/bin:$PATH" cargo lambda build --release --arm64 --locked >&2
for f in $FUNCTIONS; do
    printf '%s %s\n' "$f" "$(stat -c %s "target/lambda/$f/bootstrap")"
done > target/lambda/arm64-sizes.txt

ENV_FILE=$(mktemp)
trap './scripts/emulators.sh stop "$ENV_FILE"' EXIT
./scripts/emulators.sh start "$ENV_FILE"
# shellcheck disable=SC1090
. "$ENV_FILE"
BENCH_BINARIES=target/release cargo run --release --locked -p colloquy-bench
echo
echo "arm64 stripped bootstrap sizes (bytes):"
cat target/lambda/arm64-sizes.txt

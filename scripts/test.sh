#!/usr/bin/env bash
# Runs every test: formatting, lints (code and template.yaml), unit tests, the black-box API
# suite on the embedded store and again on DynamoDB Local + moto, the port contract suites on
# every adapter, the provider fakes, every Lambda function binary under a local Runtime API,
# the speech engines (espeak-ng and PocketSphinx for real; Polly and Transcribe on moto), and the
# command-line program; then the official Dify SDKs and schemathesis against a fresh local server
# (tests/compat/run.sh); then the console in a real browser (tests/console: Debian's chromium,
# installed with apt when missing, driven by pinned playwright-core). Installs the speech engines
# and starts (and stops) the AWS emulators itself.
# `--quick`: formatting, clippy, unit tests and the API suite on the embedded store only.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the core crate depends on no store, SDK or HTTP client"
if cargo tree --locked -p colloquy-core -e normal --prefix none \
    | grep -E '^(aws-|rusqlite|reqwest|hyper|lambda_)'; then
    echo "colloquy-core must not depend on the crates above" >&2
    exit 1
fi

if [ "${1:-}" = "--quick" ]; then
    # The inner loop: no emulators, no speech engines, no SDK suites.
    echo "== unit tests"
    cargo test --workspace --locked --lib --bins
    echo "== API suite on the embedded store (speech_local needs scripts/speech-engines.sh)"
    cargo test --locked -p colloquy-tests --test api -- --skip speech_local
    exit 0
fi
echo "== build the tests and every Lambda function binary"
cargo test --workspace --locked --no-run
cargo build --workspace --bins --locked

echo "== lint template.yaml (cfn-lint, sam validate --lint)"
CACHE="${COLLOQUY_EMULATOR_CACHE:-$HOME/.cache/colloquy-emulators}"
if [ ! -x "$CACHE/lint/bin/sam" ]; then
    python3 -m venv "$CACHE/lint" && "$CACHE/lint/bin/pip" install -q cfn-lint aws-sam-cli
fi
"$CACHE/lint/bin/cfn-lint" template.yaml
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 "$CACHE/lint/bin/sam" validate --lint --template template.yaml

echo "== local speech engines (espeak-ng, lame, PocketSphinx; found where installed, no variable)"
./scripts/speech-engines.sh >/dev/null

echo "== start DynamoDB Local and moto"
ENV_FILE=$(mktemp)
trap './scripts/emulators.sh stop "$ENV_FILE"' EXIT
./scripts/emulators.sh start "$ENV_FILE"
# shellcheck disable=SC1090
. "$ENV_FILE"

# The API suite on DynamoDB runs first: DynamoDB Local slows down for everything after the
# 10,000-message purge test has run in it.
echo "== API suite on DynamoDB Local + moto"
COLLOQUY_TEST_STORE=dynamodb cargo test --workspace --locked --test api
# Then the Lambda functions, and the contract suites last: their 10,000-message purge test
# (and the app-wide index's many queries) slow DynamoDB Local for whatever runs after them.
echo "== unit tests of every crate, the program, and the API suite on the embedded store"
cargo test --workspace --locked --exclude colloquy-tests
cargo test --locked -p colloquy-tests --lib --test api
echo "== fresh emulators for the functions and the contracts"
# DynamoDB Local (in memory) slows down as its stream-enabled table fills: after the API suite's
# large erasures and purges its transactions can time out waiting for a lock ("this request
# will succeed in actual DynamoDB"). The suites below start on an empty one.
./scripts/emulators.sh stop "$ENV_FILE"
./scripts/emulators.sh start "$ENV_FILE"
. "$ENV_FILE"
echo "== every Lambda function binary under a local Runtime API"
cargo test --locked -p colloquy-tests --test functions
echo "== the port contracts on every adapter"
cargo test --locked -p colloquy-tests --test contracts

echo "== the official Dify clients (PyPI and npm dify-client) and schemathesis against a fresh local server"
./tests/compat/run.sh
echo "== the console in a real browser (Debian's chromium, playwright-core and axe-core, pinned)"
if [ ! -x /usr/bin/chromium ]; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
        || { $SUDO apt-get update -q >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
( cd tests/console && npm ci -q --no-audit --no-fund >/dev/null )
node --test tests/console/console.test.mjs

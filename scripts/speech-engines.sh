#!/usr/bin/env bash
# Installs the local speech engines the embedded default uses, when missing:
# espeak-ng and lame (Debian packages) for text to speech, and PyPI `pocketsphinx` (5.x, which
# ships its English model) in a virtualenv for speech to text, at
# $COLLOQUY_EMULATOR_CACHE/speech (default ~/.cache/colloquy-emulators/speech), where
# `colloquy serve` looks for it without any variable. Prints the virtualenv's Python.
set -euo pipefail

CACHE="${COLLOQUY_EMULATOR_CACHE:-$HOME/.cache/colloquy-emulators}"
POCKETSPHINX_VERSION=5.1.1

log() { echo "[speech] $*" >&2; }

if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v lame >/dev/null 2>&1; then
    log "installing espeak-ng and lame (apt)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng lame >/dev/null
fi
if ! "$CACHE/speech/bin/python" -c "import pocketsphinx" >/dev/null 2>&1; then
    log "installing pocketsphinx==$POCKETSPHINX_VERSION"
    python3 -m venv "$CACHE/speech"
    "$CACHE/speech/bin/pip" install -q "pocketsphinx==$POCKETSPHINX_VERSION"
fi
echo "$CACHE/speech/bin/python"

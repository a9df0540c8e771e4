#!/usr/bin/env bash
# Install the pinned Codex CLI for the e2e tests into <repo>/.e2e-codex/ (gitignored), unless it is
# already there at that version, and print the path of its `codex` binary on the last line.
#
# The npm package ships a self-contained native binary through an optional dependency
# (@openai/codex-<platform>). Needs node and npm on PATH and the npm registry; safe to run again.
set -euo pipefail

CODEX_VERSION=0.171.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=$repo/.e2e-codex
bin=$dir/node_modules/.bin/codex

die() {
    echo "install-codex.sh: $*" >&2
    exit 1
}

installed() {
    [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^codex-cli $CODEX_VERSION$"
}

if ! installed; then
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (needed to install Codex $CODEX_VERSION)"
    mkdir -p "$dir" || die "cannot create $dir"
    echo "installing @openai/codex@$CODEX_VERSION into $dir" >&2
    npm install --prefix "$dir" --no-save --no-audit --no-fund --include=optional \
        "@openai/codex@$CODEX_VERSION" >&2 \
        || die "npm install @openai/codex@$CODEX_VERSION failed (see npm's output above)"
    installed || die "$bin is not Codex $CODEX_VERSION after installing (got: $("$bin" --version 2>&1 || true))"
fi

echo "$bin"

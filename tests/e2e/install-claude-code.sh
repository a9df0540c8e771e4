#!/usr/bin/env bash
# Install the pinned Claude Code CLI for the e2e tests into <repo>/.e2e/ (gitignored), unless it is
# already there at that version, and print the path of its `claude` binary on the last line.
#
# The npm package ships a self-contained native linux-x64/darwin binary through an optional
# dependency (@anthropic-ai/claude-code-<platform>), so Node >= 22 is not needed (Node 20 works).
# Needs node and npm on PATH and access to the npm registry; safe to run again (no-op when installed).
set -euo pipefail

CC_VERSION=2.1.332
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=$repo/.e2e
bin=$dir/node_modules/.bin/claude

die() {
    echo "install-claude-code.sh: $*" >&2
    exit 1
}

installed() {
    [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^$CC_VERSION "
}

if ! installed; then
    command -v node >/dev/null 2>&1 || die "node is not on PATH (needed to install Claude Code $CC_VERSION)"
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (needed to install Claude Code $CC_VERSION)"
    mkdir -p "$dir" || die "cannot create $dir"
    echo "installing @anthropic-ai/claude-code@$CC_VERSION into $dir" >&2
    npm install --prefix "$dir" --no-save --no-audit --no-fund --include=optional \
        "@anthropic-ai/claude-code@$CC_VERSION" >&2 \
        || die "npm install @anthropic-ai/claude-code@$CC_VERSION failed (see npm's output above)"
    # The postinstall step puts the native binary in place of the bin/claude.exe stub. Newer npm
    # versions may skip or only warn about install scripts, so run it explicitly; it is idempotent.
    installer=$dir/node_modules/@anthropic-ai/claude-code/install.cjs
    if [ -f "$installer" ]; then
        (cd "$dir" && node "$installer") >&2 \
            || die "the Claude Code postinstall ($installer) failed"
    fi
    installed || die "$bin is not Claude Code $CC_VERSION after installing (got: $("$bin" --version 2>&1 || true))"
fi

echo "$bin"

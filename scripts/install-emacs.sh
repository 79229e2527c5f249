#!/usr/bin/env bash
# Install the Emacs builds the editor tests drive.
#
#   Emacs 28.2 + elpa-eglot 1.9   Debian bookworm packages, installed system-wide with apt-get
#                                 (needs root or sudo; skipped when already installed)
#   Emacs 30.x (eglot built in)   bookworm-backports packages, downloaded with a private apt
#                                 configuration (into the cache, not the system) and unpacked with
#                                 dpkg-deb -x; run with EMACSLOADPATH/EMACSDATA/--dump-file
#                                 pointing into the unpacked tree.
#
# Result: $CACHE/bin/emacs-28 and $CACHE/bin/emacs-30 (wrapper scripts). Idempotent: a second run
# only checks that both start. CACHE defaults to ~/.cache/coder-lsp-dev. Set
# CODER_LSP_SKIP_EMACS30=1 to install only the Debian one.
set -euo pipefail

CACHE="${CODER_LSP_DEV_CACHE:-$HOME/.cache/coder-lsp-dev}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
log() { echo "==> install-emacs: $*" >&2; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# --- Emacs 28 + eglot from bookworm (system) -------------------------------------------
if ! { [ -x /usr/bin/emacs ] && ls -d /usr/share/emacs/site-lisp/elpa/eglot-* >/dev/null 2>&1; }; then
  log "apt-get install emacs-nox elpa-eglot"
  $sudo apt-get update -q >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    emacs-nox elpa-eglot >&2
fi
cat > "$BIN/emacs-28" <<'WRAP'
#!/bin/sh
exec /usr/bin/emacs "$@"
WRAP
chmod +x "$BIN/emacs-28"
"$BIN/emacs-28" --version | head -n1 >&2

# --- Emacs 30 from bookworm-backports, unpacked privately ------------------------------
if [ "${CODER_LSP_SKIP_EMACS30:-}" = "1" ]; then exit 0; fi
APT="$CACHE/apt-bpo"
ROOT="$CACHE/emacs-30"
if ! [ -x "$ROOT/usr/bin/emacs-nox" ] || ! ls "$ROOT"/usr/libexec/emacs/3[0-9].*/*/*.pdmp >/dev/null 2>&1; then
  log "downloading Emacs from bookworm-backports into $APT"
  mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/cache" \
    "$APT/etc/sources.list.d" "$APT/etc/preferences.d"
  mirror="$({ grep -rhoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    || true; } | sed -n '1s/ //gp')"
  mirror="${mirror:-http://deb.debian.org/debian}"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "${mirror%/}" bookworm \
    "$keyring" "${mirror%/}" bookworm-backports > "$APT/etc/sources.list"
  # The real dpkg status: only what the system lacks is downloaded (bookworm's own libraries
  # are ABI-compatible with backports builds).
  opts=(-o "Dir::Etc::SourceList=$APT/etc/sources.list" -o "Dir::Etc::SourceParts=$APT/etc/sources.list.d"
    -o "Dir::Etc::PreferencesParts=$APT/etc/preferences.d" -o "Dir::State::Lists=$APT/lists"
    -o "Dir::Cache=$APT/cache" -o "Dir::Cache::archives=$APT/archives"
    -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" -o APT::Install-Recommends=false)
  apt-get "${opts[@]}" -q update >&2
  rm -f "$APT"/archives/*.deb
  apt-get "${opts[@]}" -q -y -t bookworm-backports install --download-only emacs-nox >&2
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  for deb in "$APT"/archives/*.deb; do
    case "$(basename "$deb")" in emacs-el_*) continue ;; esac  # sources only; .elc are in emacs-common
    dpkg-deb -x "$deb" "$ROOT"
  done
fi
# The wrapper is written on every run, so an older one is replaced too.
ver="$(ls "$ROOT/usr/share/emacs" | grep -E '^[0-9]+\.[0-9]+$' | sort -V | tail -n1)"
arch="$(ls -d "$ROOT/usr/libexec/emacs/$ver"/*/ | head -n1)"
pdmp="$(ls "$arch"*.pdmp | head -n1)"
loadpath="$(find "$ROOT/usr/share/emacs/$ver/lisp" -type d | sort | tr '\n' ':')"
# The system's dynamic loader with --library-path, not LD_LIBRARY_PATH: the private
# libraries are for Emacs alone; the language server it starts must not inherit them.
# --argv0 names a launcher next to emacs-nox as Emacs's own executable: the Emacs processes
# it starts itself (native compilation) go through the launcher too, and Emacs finds its
# preloaded native code relative to it (../lib/emacs/$ver/native-lisp).
loader="$(readlink -f /lib64/ld-linux-x86-64.so.2)"
launcher="$ROOT/usr/bin/emacs-coder-lsp"
cat > "$launcher" <<WRAP
#!/bin/sh
# Emacs $ver unpacked from bookworm-backports; -Q keeps the system's site-start (Emacs 28's
# elpa packages) out of its load-path.
export EMACSPATH="$arch" EMACSDATA="$ROOT/usr/share/emacs/$ver/etc" EMACSLOADPATH="$loadpath"
exec "$loader" --argv0 "$launcher" --library-path "$ROOT/usr/lib/x86_64-linux-gnu" "$ROOT/usr/bin/emacs-nox" --dump-file="$pdmp" "\$@"
WRAP
chmod +x "$launcher"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$launcher" > "$BIN/emacs-30"
chmod +x "$BIN/emacs-30"
"$BIN/emacs-30" --version | head -n1 >&2

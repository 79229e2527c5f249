# Sourced by the install-*.sh scripts: download a Debian sid package with its whole closure
# through a private apt configuration (sid sources on the mirror the system already uses, an
# empty dpkg status so sid's libc comes along) and unpack every .deb into a folder with
# dpkg-deb -x. Nothing is installed into the system. Needs a `log` function.

# sid_unpack PACKAGE APT_DIR ROOT: download PACKAGE's closure into APT_DIR, unpack into ROOT.
sid_unpack() {
  local package="$1" apt="$2" root="$3" mirror keyring
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/cache" \
    "$apt/etc/sources.list.d" "$apt/etc/preferences.d"
  : > "$apt/status"
  # The mirror the system already uses (Debian's own when no other is configured).
  mirror="$({ grep -rhoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    || true; } | sed -n '1s/ //gp')"
  mirror="${mirror:-http://deb.debian.org/debian}"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb [signed-by=$keyring] ${mirror%/} sid main" > "$apt/etc/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
    -o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d" -o "Dir::State::Lists=$apt/lists"
    -o "Dir::State::status=$apt/status" -o "Dir::Cache=$apt/cache" -o "Dir::Cache::archives=$apt/archives"
    -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" -o APT::Architecture=amd64
    -o APT::Architectures=amd64 -o APT::Install-Recommends=false)
  log "downloading Debian sid's $package into $apt"
  apt-get "${opts[@]}" -q update >&2
  rm -f "$apt"/archives/*.deb  # stale versions would be unpacked over the new ones
  apt-get "${opts[@]}" -q -y install --download-only "$package" >&2
  rm -rf "$root"
  mkdir -p "$root"
  local deb
  for deb in "$apt"/archives/*.deb; do dpkg-deb -x "$deb" "$root"; done
}

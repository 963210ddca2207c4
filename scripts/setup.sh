#!/usr/bin/env bash
# Installs everything rdmaq needs on a Debian 12 machine with Node 20, then builds it.
# Idempotent: a second run only checks and skips. Used by `make demo`, `make test` and `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;36m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31msetup failed:\033[0m %s\n' "$*" >&2; exit 1; }

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]" 2>/dev/null || echo 10.34.9)
APT_PACKAGES=(
  build-essential pkg-config python3 # node-gyp toolchain for the native addon
  clang libclang-rt-14-dev           # libFuzzer + sanitizers for the native fuzz targets (pnpm test:fuzz)
  libfabric-dev libfabric-bin        # the fabric transport (libfabric 1.17) and fi_info / fi_pingpong
  ucx-utils sockperf                 # C peers the benchmarks compare against (../shared/bench/baselines.sh)
  iproute2 procps time openssl       # network namespaces for fault tests, process figures, test TLS certs
  chromium                           # browser tests (Playwright drives Debian's chromium)
  prometheus prometheus-alertmanager # real Prometheus / Alertmanager the integration tests talk to
  victoria-metrics                   # the TSDB the hub's remote-write / PromQL history tests talk to
)

# --- Node ---------------------------------------------------------------------------------------
command -v node >/dev/null || die "Node.js 20 is not installed. Install Node 20 (e.g. from nodesource or nvm), then re-run."
node_ok=$(node -p 'const [M, m] = process.versions.node.split(".").map(Number); M === 20 && m >= 15')
[ "$node_ok" = true ] || die "Node.js 20.15 or later 20.x is required (found $(node -v)); rdmaq pins Node 20 (.nvmrc). Switch with 'nvm use 20' and re-run."

# --- privileges for apt / global npm ------------------------------------------------------------
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else die "need root for: $* — run as root or install sudo"; fi
}

# --- apt packages -------------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found: rdmaq's set-up targets Debian 12; install ${missing[*]} by hand"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/rdmaq-apt.log 2>&1 || {
    as_root apt-get update -q >>/tmp/rdmaq-apt.log 2>&1 || die "apt-get update failed (see /tmp/rdmaq-apt.log): is a Debian mirror reachable?"
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/rdmaq-apt.log 2>&1 ||
      die "could not install ${missing[*]} (see /tmp/rdmaq-apt.log)"
  }
else
  say "Debian packages present (${#APT_PACKAGES[@]} checked)"
fi
pkg-config --exists libfabric || die "libfabric-dev is installed but pkg-config cannot find libfabric"

# --- pnpm ---------------------------------------------------------------------------------------
# Corepack's signature check fails against this registry, so pnpm comes from npm at the pinned version.
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION with npm"
  if [ -w "$(npm prefix -g)/lib" ] 2>/dev/null; then npm install -g --silent "pnpm@$PNPM_VERSION";
  else as_root npm install -g --silent "pnpm@$PNPM_VERSION"; fi
  command -v pnpm >/dev/null || die "pnpm was installed but is not on PATH ($(npm prefix -g)/bin)"
else
  say "pnpm $PNPM_VERSION present"
fi

# --- dependencies and build ---------------------------------------------------------------------
say "installing dependencies (pnpm install --frozen-lockfile)"
CI=1 pnpm install --frozen-lockfile --reporter=append-only | grep -vE '^(Progress|Packages:|\+|$)' || die "pnpm install failed (see above)"
say "building (native addon, packages, dashboard) — cached by turbo after the first run"
pnpm turbo run build --output-logs=errors-only || die "build failed (see above)"
say "set-up complete"

#!/usr/bin/env bash
# Installs what `make test` needs and this machine lacks: PostgreSQL and nats-server (for the
# real-services test harness), Prometheus (remote write and promtool), Chromium and Node.js/npm (the
# console's checks and browser tests), Vulkan with Mesa's lavapipe
# (the GPU tests), and the rustfmt/clippy components. Uses apt when run as root.
set -euo pipefail

missing=()
have_bin() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null
}
have_bin initdb || missing+=(postgresql)
have_bin nats-server || missing+=(nats-server)
# Real Prometheus: remote write into goose-sla, promtool for the generated SLO rules.
have_bin prometheus || missing+=(prometheus)
# Chromium: the web console's browser tests (driven by playwright-core from npm).
have_bin chromium || missing+=(chromium)
# Node.js and npm: the console's checks (prettier, tsc, esbuild) and playwright-core, installed
# by `npm ci` from the pinned package-lock.json.
have_bin npm || missing+=(npm)
# Vulkan and Mesa's lavapipe (a CPU Vulkan driver): the analytics GPU tests run on it.
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || compgen -G "/usr/share/vulkan/icd.d/lvp_icd*.json" >/dev/null || missing+=(mesa-vulkan-drivers)
ldconfig -p 2>/dev/null | grep -q "libvulkan.so.1" || missing+=(libvulkan1)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing OS packages: ${missing[*]}" >&2
        echo "install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run again" >&2
        exit 1
    fi
fi

if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
fi

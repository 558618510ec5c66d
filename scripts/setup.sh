#!/usr/bin/env bash
# Installs everything crid and its test suite need on Debian 12, idempotently:
# the Debian packages (runc, conmon, CNI plugins, docker-registry, busybox-static,
# iptables, make), uv, and the workspace's virtual environment.
# Quick when everything is present already, so `make run` and `make test` call it each time.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: installing Debian packages needs root (run as root or with sudo)" >&2
        exit 1
    fi
}

packages=(runc conmon containernetworking-plugins docker-registry busybox-static iptables iproute2 make util-linux systemd dbus catatonit ca-certificates golang-github-containers-common umoci skopeo gnupg gpgv openssl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    need_root
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts docker-registry as a system service on install; crid's tests run their own.
if command -v service >/dev/null 2>&1 && pgrep -x docker-registry >/dev/null 2>&1; then
    service docker-registry stop >/dev/null 2>&1 || true
fi

# uv: from PATH, else from a tools venv next to the checkout (Debian's Python refuses
# system-wide pip installs, so a private venv is the portable way).
if ! command -v uv >/dev/null 2>&1; then
    if [ ! -x .tools/bin/uv ]; then
        echo "setup: installing uv into .tools/"
        if ! python3 -m venv .tools >/dev/null 2>&1; then
            need_root
            apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
            python3 -m venv .tools
        fi
        cert_args=()
        [ -f /etc/ssl/certs/ca-certificates.crt ] && cert_args=(--cert /etc/ssl/certs/ca-certificates.crt)
        .tools/bin/pip install -q "${cert_args[@]}" uv
    fi
    export PATH="$PWD/.tools/bin:$PATH"
fi

# Trust the system's CA store (Debian's ca-certificates), as apt and git do.
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"
# Bytecode is compiled at install (third-party packages by uv, the workspace's own
# editable sources by compileall), so the first run of every command starts as fast
# as later ones instead of compiling ~0.4 s of modules first.
uv sync --frozen --all-packages -q --compile-bytecode
.venv/bin/python -m compileall -q -j 0 packages/*/src >/dev/null

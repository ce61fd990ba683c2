#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine, as root.
# Installs the system packages the tests use (tshark, an independent dissector; iproute2 and
# nftables for the namespace lab and Accept_Mode; keepalived for the interop suite), then runs
# tox (tests, interop, ruff, mypy --strict) from a private virtualenv, which brings every
# Python package.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v keepalived >/dev/null 2>&1 || need_apt+=(keepalived)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "run-tests: installing Debian packages: ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

venv=.venv-tox
if [ ! -x "$venv/bin/tox" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip tox
fi
exec "$venv/bin/tox" -e tests,lint,typing "$@"

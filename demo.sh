#!/usr/bin/env bash
# A live failover on this machine, in network namespaces (fresh Debian, as root).
# Installs what it needs (iproute2, python3-venv; vrrpy and its Python packages in a private
# virtualenv), then runs `python -m vrrpy.demo`: two vrrpyd routers and a client on a bridge,
# the Master killed with SIGKILL and its link pulled, the takeover measured on the wire.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "demo: installing Debian packages: ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

venv=.venv-demo
if [ ! -x "$venv/bin/vrrpyd" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q .
fi
exec "$venv/bin/python" -m vrrpy.demo "$@"

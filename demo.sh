#!/usr/bin/env bash
# A live failover on this machine, in network namespaces (fresh Debian, as root).
# Installs what it needs (iproute2, nftables, python3-venv; vrrpy and its Python packages in a
# private virtualenv), then runs `python -m vrrpy.demo`: two vrrpyd routers and a client on a
# bridge, the Master killed with SIGKILL and its link pulled, the takeover measured on the wire.
set -euo pipefail
cd "$(dirname "$0")"
. tools/debian.sh
ensure_debian_packages python3:python3 ip:iproute2 nft:nftables
ensure_venv .venv-demo vrrpyd -e .
exec .venv-demo/bin/python -m vrrpy.demo "$@"

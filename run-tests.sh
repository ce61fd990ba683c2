#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine, as root.
# Installs the system packages the tests use (tshark, an independent dissector; iproute2 and
# nftables for the namespace lab and Accept_Mode; keepalived for the interop suite;
# ucarp for its interop suite; user-mode-linux, drbd-utils, kmod and e2fsprogs for the DRBD test
# in a UML guest, ipvsadm as the oracle of the IPVS test in one; prometheus for promtool, which
# checks and unit-tests the alert rules, and for a real Prometheus server scraping vrrpyd;
# chromium-headless-shell, the browser that reads the status page; systemd for
# systemd-analyze, util-linux's setpriv and strace, which check the systemd unit), then runs
# tox (tests, interop, ruff, mypy --strict) from a private virtualenv, which brings every
# Python package.
set -euo pipefail
cd "$(dirname "$0")"
. tools/debian.sh
ensure_debian_packages python3:python3 tshark:tshark ip:iproute2 nft:nftables keepalived:keepalived \
  linux:user-mode-linux drbdadm:drbd-utils modprobe:kmod mkfs.ext4:e2fsprogs ucarp:ucarp \
  ipvsadm:ipvsadm promtool:prometheus chromium-headless-shell:chromium-headless-shell \
  systemd-analyze:systemd setpriv:util-linux strace:strace
ensure_venv .venv-tox tox tox
exec .venv-tox/bin/tox -e tests,lint,typing "$@"

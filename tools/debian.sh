# Sourced by run-tests.sh and demo.sh: install the Debian packages a fresh machine lacks,
# and make a private virtualenv. (Bash; root; Debian's apt.)

# ensure_debian_packages CMD:PACKAGE ...  installs PACKAGE when CMD is not on PATH,
# and python3-venv when Python cannot make a virtualenv.
ensure_debian_packages() {
  local need=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || need+=("${spec#*:}")
  done
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -q
    # Without recommends: drbd-utils would bring a mail server, keepalived ipvsadm.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
}

# ensure_venv DIR EXECUTABLE PIP-ARGS...  creates DIR with pip-installed PIP-ARGS unless
# DIR/bin/EXECUTABLE already exists.
ensure_venv() {
  local dir=$1 exe=$2
  shift 2
  if [ ! -x "$dir/bin/$exe" ]; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --upgrade pip
    "$dir/bin/pip" install -q "$@"
  fi
}

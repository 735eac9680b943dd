#!/bin/sh
# Debian's python3 creates virtual environments only with the python3-venv package
# (ensurepip is split out of the interpreter). Install it when missing, as root.
set -eu
python=${1:-python3}

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "error: memwarden needs Python 3.11 or newer; $python is $("$python" -V 2>&1)" >&2
    exit 1
}
"$python" -c 'import ensurepip, venv' 2>/dev/null && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian package: python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    exit 0
fi

echo "error: $python cannot create a virtual environment; install it with:" >&2
echo "  sudo apt-get install python3-venv" >&2
exit 1

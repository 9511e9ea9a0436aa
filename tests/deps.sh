#!/usr/bin/env bash
# Installs what the test suites need, idempotently: Debian packages that are
# missing, and a Python venv with the reference kickstart validator
# (pykickstart, the oracle of the kickstart corpus test).
set -euo pipefail

: "${HVNODE_CACHE:=$HOME/.cache/hvnode}"
: "${HVNODE_VENV:=$HVNODE_CACHE/venv}"
PYKICKSTART_VERSION=3.78

# Debian packages the tests use. Only the missing ones are installed.
APT_PACKAGES=(python3 python3-venv openssh-server openssh-client)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

stamp="$HVNODE_VENV/.pykickstart-$PYKICKSTART_VERSION"
if [ ! -e "$stamp" ]; then
    echo "deps: creating venv $HVNODE_VENV with pykickstart $PYKICKSTART_VERSION" >&2
    rm -rf "$HVNODE_VENV"
    mkdir -p "$(dirname "$HVNODE_VENV")"
    python3 -m venv "$HVNODE_VENV"
    "$HVNODE_VENV/bin/pip" install -q --disable-pip-version-check "pykickstart==$PYKICKSTART_VERSION"
    touch "$stamp"
fi

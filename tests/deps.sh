#!/usr/bin/env bash
# Installs what the test suites need, idempotently: Debian packages that are
# missing, and a Python venv with the reference kickstart validator
# (pykickstart, the oracle of the kickstart corpus test) and stomp.py (a STOMP
# client of its own, the engine link's second client: crates/vdsm/tests/stomp_py.rs).
#
# A suite with needs of its own adds a script to tests/deps.d/: each is
# sourced here, after the apt helpers below are defined, in name order.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HVNODE_CACHE:=$HOME/.cache/hvnode}"
: "${HVNODE_VENV:=$HVNODE_CACHE/venv}"
export HVNODE_CACHE HVNODE_VENV
PYKICKSTART_VERSION=3.78
STOMP_PY_VERSION=9.0.0

# Debian packages the tests use. Only the missing ones are installed.
APT_PACKAGES=(python3 python3-venv openssh-server openssh-client)

# need_apt PKG...: queue Debian packages for installation.
need_apt() { APT_PACKAGES+=("$@"); }

# Programs the tests run on this machine, each with the package that has it
# ("program:package"): checked on the PATH at the end, so that a missing one
# fails here in one line that names it, not deep inside a test.
PROGRAMS=()
# need_prog PKG PROG...: queue PKG and check that it brought each PROG.
need_prog() {
    local pkg=$1 prog
    shift
    need_apt "$pkg"
    for prog in "$@"; do PROGRAMS+=("$prog:$pkg"); done
}

APT_UPDATED=""
# missing_packages: the queued packages that are not installed, one a line.
missing_packages() {
    local p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done | sort -u
}
# apt_install_missing: installs the queued packages that are not installed.
# An install can remove a package it conflicts with (Debian's qemu-system-x86
# takes out a backported qemu-utils), so it is repeated until everything
# queued is there, at most three times.
apt_install_missing() {
    local missing round sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    for round in 1 2 3; do
        mapfile -t missing < <(missing_packages)
        ((${#missing[@]})) || return 0
        echo "deps: installing ${missing[*]}" >&2
        if [ -z "$APT_UPDATED" ]; then
            $sudo apt-get update -qq
            APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    done
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]})); then
        echo "deps: still not installed after three rounds: ${missing[*]} (see /var/log/apt/history.log for what removed them)" >&2
        return 1
    fi
}

for f in tests/deps.d/*.sh; do
    case "$f" in *.post.sh) continue ;; esac
    [ -e "$f" ] || continue
    # shellcheck source=/dev/null
    . "$f"
done
apt_install_missing

stamp="$HVNODE_VENV/.pykickstart-$PYKICKSTART_VERSION"
if [ ! -e "$stamp" ]; then
    echo "deps: creating venv $HVNODE_VENV with pykickstart $PYKICKSTART_VERSION" >&2
    rm -rf "$HVNODE_VENV"
    mkdir -p "$(dirname "$HVNODE_VENV")"
    python3 -m venv "$HVNODE_VENV"
    "$HVNODE_VENV/bin/pip" install -q --disable-pip-version-check "pykickstart==$PYKICKSTART_VERSION"
    touch "$stamp"
fi
# Added to a venv made before it was needed, as to a new one.
stamp="$HVNODE_VENV/.stomp-py-$STOMP_PY_VERSION"
if [ ! -e "$stamp" ]; then
    echo "deps: installing stomp.py $STOMP_PY_VERSION into venv $HVNODE_VENV" >&2
    "$HVNODE_VENV/bin/pip" install -q --disable-pip-version-check "stomp-py==$STOMP_PY_VERSION"
    touch "$stamp"
fi

# Steps that need the packages above (npm installs, services) go in
# tests/deps.d/*.post.sh, run last.
for f in tests/deps.d/*.post.sh; do
    [ -e "$f" ] || continue
    # shellcheck source=/dev/null
    . "$f"
done

# Last: every program the tests call is on the PATH.
absent=()
for entry in "${PROGRAMS[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || absent+=("${entry%%:*} (Debian package ${entry#*:})")
done
if ((${#absent[@]})); then
    printf 'deps: not on the PATH: %s\n' "${absent[@]}" >&2
    exit 1
fi
echo "deps: ${#PROGRAMS[@]} programs present" >&2

#!/usr/bin/env bash
# Sets up everything ctop needs on a Debian or Ubuntu machine (as root), then runs what you ask:
#   ./setup.sh run [CTOP ARGS...]   set up, then start ctop
#   ./setup.sh test [PYTEST ARGS...] set up, then run the whole test suite (lint, unit and system tests)
#   ./setup.sh bench | soak         set up, then run the benchmarks / the long soak
#   ./setup.sh guest v2|v1 [PYTEST ARGS...]  build once the Debian 12 guest image, boot it in pure cgroup v2 or v1
#                                   under qemu and run the tests there (guest/run.py; README "Pure v2 and v1 guests")
#   ./setup.sh guest-test [PYTEST ARGS...]   inside that guest: set up offline ($CTOP_WHEELHOUSE), run pytest
#   ./setup.sh                      set up only
# Idempotent: packages already present are not reinstalled; the virtualenv is reused.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
here=$PWD
action=${1:-setup}
[ $# -gt 0 ] && shift

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh installs packages and needs root: run it with sudo." >&2
    exit 1
fi

# The guest run needs only qemu and debootstrap on this host; everything else is inside the guest image.
if [ "$action" = guest ]; then
    missing_guest=()
    for p in qemu-system-x86 qemu-utils debootstrap; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_guest+=("$p")
    done
    if [ ${#missing_guest[@]} -gt 0 ]; then
        echo "setup: installing ${missing_guest[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing_guest[@]}" >/dev/null
    fi
    guest/build-image.sh
    exec /usr/bin/python3 guest/run.py "$@"
fi

# Distribution packages. bcc comes from here (python3-bpfcc), never from PyPI.
packages=(python3 python3-venv python3-bpfcc python3-zstandard bpftool linux-headers-amd64 docker.io containerd runc
          busybox-static prometheus tmux iproute2 procps curl make gcc systemd debootstrap
          podman crun catatonit lxc lxc-templates systemd-container uidmap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian docker.io package enables a system dockerd; ctop's tests start their own private daemons instead.

# A virtualenv that sees the distribution's bcc.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import bcc' 2>/dev/null; then
    rm -rf .venv
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
# An editable install: the ctop that runs and is tested is always this working tree.
pipq=(.venv/bin/pip install -q --disable-pip-version-check --root-user-action=ignore)
# Offline (the guest): every Python package comes from a wheelhouse made by guest/build-image.sh.
[ -n "${CTOP_WHEELHOUSE:-}" ] && pipq+=(--no-index --find-links "$CTOP_WHEELHOUSE")
if [ "$action" = guest-test ] && [ -x .venv/bin/pytest ] && [ -x .venv/bin/ctop ]; then
    :  # pip runs at emulated speed in the guest: a virtualenv set up by an earlier guest-test is reused
elif [ "$action" = test ] || [ "$action" = guest-test ] || [ "$action" = bench ] || [ "$action" = soak ]; then
    "${pipq[@]}" -e ".[test]"
else
    "${pipq[@]}" -e .
fi
ln -sf "$here/.venv/bin/ctop" /usr/local/bin/ctop

case "$action" in
    setup) echo "setup: done; run 'sudo ctop'." ;;
    run) exec /usr/local/bin/ctop "$@" ;;
    test)
        .venv/bin/ruff check ctop bpf exporters tests bench
        .venv/bin/mypy
        exec .venv/bin/pytest "$@" ;;
    guest-test) exec .venv/bin/pytest "$@" ;;  # lint is the same on every host: `make lint` runs it here
    bench) exec .venv/bin/python bench/run.py "$@" ;;
    soak) exec .venv/bin/pytest -m soak tests/system/test_soak.py "$@" ;;
    *) echo "setup.sh: unknown action '$action' (use run, test, bench, soak, guest or guest-test)." >&2; exit 2 ;;
esac

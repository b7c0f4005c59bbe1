#!/usr/bin/env bash
# Install the optional GPAW backend (extra `dft-periodic`) into the venv whose pip is $1.
# GPAW builds from source against libxc: it needs Debian's libxc-dev and CC=g++.
# Without libxc (and no root to install it) the periodic backend is left out and
# its tests are skipped; everything else works.
set -u
PIP="$1"
have_libxc() { [ -e /usr/include/xc.h ] || pkg-config --exists libxc 2>/dev/null; }
if ! have_libxc && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing libxc-dev for GPAW (apt-get)"
    (apt-get install -y -qq libxc-dev >/dev/null 2>&1 || \
     (apt-get update -qq && apt-get install -y -qq libxc-dev >/dev/null)) || true
fi
if have_libxc; then
    CC=g++ $PIP install -q -c constraints.txt -e ".[dft-periodic]" || {
        echo "warning: GPAW did not build; the gpaw backend is unavailable" >&2; exit 0; }
else
    echo "note: libxc not found (apt-get install libxc-dev); skipping the optional GPAW backend"
fi

#!/usr/bin/env bash
# The Python SDK as a user gets it: installed with pip (from client/python, no network) into
# a fresh venv, then its tests against a real local cluster (the tests start and stop it with
# deploy/local/cluster). TAP on stdout. Args: SOURCE_ROOT BUILD_ROOT
set -uo pipefail
src="$1" build="$2"
tmp="$(mktemp -d /tmp/dvec-pysdk-XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! "$py" -m venv --system-site-packages "$tmp/venv" >"$tmp/venv.log" 2>&1; then
    echo "1..1"; echo "not ok 1 - python3 -m venv failed (Debian: python3-venv)"; sed 's/^/# /' "$tmp/venv.log"; exit 1
fi
# from a copy: setuptools writes build/ and *.egg-info next to the sources
cp -r "$src/client/python" "$tmp/pkg"
if ! "$tmp/venv/bin/pip" install --no-build-isolation --no-index --quiet "$tmp/pkg" >"$tmp/pip.log" 2>&1; then
    echo "1..1"; echo "not ok 1 - pip install client/python failed"; sed 's/^/# /' "$tmp/pip.log"; exit 1
fi
cd "$tmp"  # import the installed package, not the source folder
DVEC_INSTALLED=1 DVEC_BUILD="$build" PYTHONWARNINGS=error::ResourceWarning \
    "$tmp/venv/bin/python" "$src/tests/client/python/run_tap.py" "$src/client/python/tests/test_client.py"

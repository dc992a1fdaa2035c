#!/bin/sh
# image.sh - the container image built and run: deploy/docker/build-image.sh --smoke (a
# debootstrap base imported into podman, the Dockerfile's two stages, then the image started
# as a one-coordinator cluster: uid 10001, read-only root, dvecctl answers). TAP output.
# Skipped without root, podman, runc or debootstrap, and when Debian's mirror cannot be
# reached (the base and the build stage download packages); any other failure fails.
#
# Usage: image.sh SOURCE_ROOT
set -u
src=$(cd "$1" && pwd)
skip() { echo "1..0 # SKIP $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (podman)"
for t in podman runc debootstrap; do
    command -v $t >/dev/null 2>&1 || skip "$t not found (scripts/install-deps installs it)"
done
log=$(mktemp /tmp/dvec-image-test-XXXXXX)
trap 'rm -f "$log"' EXIT
echo "1..1"
"$src/deploy/docker/build-image.sh" --smoke >"$log" 2>&1
rc=$?
if [ $rc = 0 ]; then
    echo "ok 1 - the image builds and runs: $(grep 'runs:' "$log" | sed 's/^build-image: //')"
elif [ $rc = 3 ] || grep -q -E "Temporary failure resolving|Could not connect|Failed to fetch|Unable to fetch" "$log"; then
    echo "ok 1 - the image # SKIP Debian's mirror unreachable: $(grep -m1 -E 'resolving|connect|fetch' "$log")"
else
    echo "not ok 1 - the image builds and runs (exit $rc)"
    tail -40 "$log" | sed 's/^/# /'
fi

#!/usr/bin/env bash
# build-image.sh - builds dvec's container image (deploy/docker/Dockerfile) with podman where no
# image can be pulled: the Debian 12 base is made with debootstrap from Debian's mirror and
# imported as localhost/debian:12 (and :12-slim), then `podman build --pull=never`.
#
#   deploy/docker/build-image.sh [--tag TAG] [--smoke]
#
# --smoke then starts the image as a one-coordinator cluster (no network, read-only root, its
# own host name) and checks that it runs as user 10001, elects itself and answers dvecctl.
# Needs root, podman, runc and debootstrap (scripts/install-deps installs them). Uses
# runc: crun refuses machines whose cgroups are mounted in hybrid mode (v1 controllers and a
# v2 tree), as some VMs are. With docker, `docker build -f deploy/docker/Dockerfile .` does the
# same from the official debian images.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=localhost/dvec:0.1.0
smoke=0
while [ $# -gt 0 ]; do
    case $1 in
    --tag) tag=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    *) echo "usage: $0 [--tag TAG] [--smoke]" >&2; exit 2 ;;
    esac
done

P=(podman --runtime runc)
# The limits podman would otherwise copy from this shell may be above what it may set.
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

if ! "${P[@]}" image exists localhost/debian:12; then
    base=$(mktemp -d /var/tmp/dvec-base.XXXXXX)
    echo "build-image: debootstrap bookworm (minbase) into $base" >&2
    if ! debootstrap --variant=minbase bookworm "$base/root" http://deb.debian.org/debian \
        >"$base/debootstrap.log" 2>&1; then
        tail -20 "$base/debootstrap.log" >&2
        rm -rf "$base"
        exit 3
    fi
    tar -C "$base/root" -c . | "${P[@]}" import - localhost/debian:12 >/dev/null
    rm -rf "$base"
    "${P[@]}" tag localhost/debian:12 localhost/debian:12-slim
fi

echo "build-image: podman build -t $tag" >&2
"${P[@]}" build --pull=never --network host "${LIMITS[@]}" -f deploy/docker/Dockerfile \
    -t "$tag" .

if [ $smoke = 1 ]; then
    name=dvec-smoke-$$
    cleanup() { "${P[@]}" rm -f "$name" >/dev/null 2>&1 || true; }
    trap cleanup EXIT
    "${P[@]}" run -d --name "$name" --network none --read-only --tmpfs /tmp "${LIMITS[@]}" \
        --hostname dvec-coord-0 --add-host dvec-coord-0.dvec-coord:127.0.0.1 \
        -e DVEC_COORD_REPLICAS=1 "$tag" coord >/dev/null
    ok=0
    for _ in $(seq 50); do
        if out=$("${P[@]}" exec "$name" dvecctl --coordinators tcp://127.0.0.1:7300 status \
            2>&1) && grep -q "leader: coordinator 1" <<<"$out"; then
            ok=1
            break
        fi
        sleep 0.2
    done
    [ $ok = 1 ] || { echo "$out" >&2; "${P[@]}" logs "$name" >&2; exit 1; }
    uid=$("${P[@]}" exec "$name" id -u)
    [ "$uid" = 10001 ] || { echo "build-image: runs as uid $uid, not 10001" >&2; exit 1; }
    echo "build-image: $tag runs: coordinator 1 leads, as uid $uid, read-only root" >&2
fi

#!/usr/bin/env bash
# bench/move.sh - how long moving one partition takes, and what searches get during the move.
#
#   bench/move.sh [--bin build] [--dir /tmp/dvec-move] [--port 27300] [--n 100000] [--dim 128]
#                 [--clients 2] [--rates "0 64MiB 16MiB 8MiB"] [--keep]
#
# A local cluster (deploy/local/cluster: 1 coordinator, 2 nodes on 127.0.0.1) and a
# collection of one partition holding N x DIM vectors (bench/datasets/random, clustered,
# with exact ground truth). Automatic rebalancing is off; the partition is moved from node to
# node (drain the node holding it, apply the plan, undrain), once per rate limit, while
# `dvecctl bench` searches in 1-second samples with CLIENTS threads (ef 64, k 10). Samples
# taken while a move was copying or catching up at both ends count as "during"; five taken
# right before each move as "before" (medians of each). Prints a table: rate limit, move
# time, write pause, QPS before and during, and their ratio. Only processes this script
# started are stopped.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="$root/build" dir="/tmp/dvec-move" port=27300 n=100000 dim=128 clients=2
rates="0 64MiB 16MiB 8MiB" keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --dim) dim="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --rates) rates="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "move.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
bin="$(cd "$bin" && pwd)"
ctl="$bin/client/dvecctl/dvecctl"
data="$root/data/random-$n-$dim"
"$here/datasets/random" "$data" --n "$n" --dim "$dim" --queries 1000 --k 10 >/dev/null

cluster() { "$root/deploy/local/cluster" "$@" --dir "$dir"; }
cleanup() { [ "$keep" = 1 ] || cluster stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
rm -rf "$dir"
cluster start --coords 1 --nodes 2 --port "$port" --bin "$bin" >/dev/null
# shellcheck disable=SC1091
. "$dir/cluster.env"
export DVEC_COORDINATORS="$COORD_URLS"
C=bench

"$ctl" rebalance set --auto off >/dev/null
"$ctl" collections create "$C" --dim "$dim" --partitions 1 --fsync never >/dev/null
"$ctl" points load "$C" "$data/base.fvecs" >/dev/null
holder() { "$ctl" collections info "$C" --json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["partitions"][0]["nodes"][0])'; }
moving() { "$ctl" rebalance status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for m in d["moves"] if m["state"] not in ("done", "failed")))'; }
sample() { # one 1-second bench sample: QPS
    "$ctl" bench "$C" --queries "$data/queries.fvecs" --gt "$data/gt.ivecs" --k 10 --ef 64 \
        --clients "$clients" --duration 1 --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["qps"])'
}

median() { python3 -c 'import sys, statistics; print(round(statistics.median(float(x) for x in sys.stdin)))'; }

printf '%-10s %10s %12s %12s %12s %12s %8s\n' "rate" "move s" "paused ms" "QPS before" \
    "QPS during" "samples" "ratio"
for rate in $rates; do
    "$ctl" rebalance set --rate "$rate" >/dev/null
    from=$(holder)
    # wait for the previous move's old replica to go (grace period)
    for _ in $(seq 1 100); do
        [ "$(moving)" = 0 ] && break
        sleep 0.2
    done
    "$ctl" node undrain "$([ "$from" = node-1 ] && echo node-2 || echo node-1)" >/dev/null 2>&1 || true
    # QPS right before this move (the machine is shared: absolute numbers drift)
    before=()
    for _ in 1 2 3 4 5; do before+=("$(sample)"); done
    qps_before=$(printf '%s\n' "${before[@]}" | median)
    "$ctl" node drain "$from" >/dev/null
    "$ctl" rebalance apply >/dev/null
    during=()
    while :; do
        m1=$(moving)
        q=$(sample)
        m2=$(moving)
        [ "$m1" != 0 ] && [ "$m2" != 0 ] && during+=("$q")
        [ "$m2" = 0 ] && break
    done
    read -r secs paused < <("$ctl" rebalance status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = [m for m in d["moves"] if m["state"] == "done"][-1]
print(m["elapsed_ms"] / 1000.0, m["writes_paused_ms"])')
    if [ "${#during[@]}" -gt 0 ]; then
        qd=$(printf '%s\n' "${during[@]}" | median)
        ratio=$(python3 -c "print(f'{$qd / $qps_before:.2f}x')")
    else
        qd="-" ratio="-"
    fi
    [ "$(holder)" != "$from" ] || { echo "move.sh: the partition did not move" >&2; exit 1; }
    printf '%-10s %10.1f %12s %12.0f %12s %12s %8s\n' "${rate/#0/unlimited}" "$secs" "$paused" \
        "$qps_before" "$qd" "${#during[@]}" "$ratio"
    sleep 6 # the old replica's grace period
done
echo "# $n x $dim vectors in one partition, $clients search clients, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

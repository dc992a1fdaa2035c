#!/usr/bin/env bash
# bench/repl.sh - upsert throughput of replicated collections: replication factor 1, 2 and 3
# on the same cluster, alternated round by round, as ratios to rf 1.
#
#   bench/repl.sh [--bin build] [--rounds 3] [--n 50000] [--dim 64] [--batch 500]
#                 [--parallel 8] [--nodes 3] [--dir /tmp/dvec-repl-bench] [--port 27600]
#                 [--only upsert,catchup,rejoin,search] [--down N]
#
# Starts a local cluster (deploy/local/cluster: 1 coordinator, --nodes nodes on 127.0.0.1),
# writes --n random vectors of --dim dimensions to an .fvecs file once, and in each round,
# for rf = 1, 2, 3: creates a collection of 6 partitions with that replication factor, loads
# the file with `dvecctl points load` (--batch points per request, --parallel requests in
# flight, fsync always) and drops it. Alternating rf within each round lets the three share
# the machine's drift (it is shared and noisy). Prints every load and the medians, with the
# ratio to rf 1. Then catch-up: the file loaded with rf 1, the factor set to 3 (`dvecctl
# collections set`), and the time until every new replica is in sync (copied from the
# primaries: snapshot, then WAL), as points/s and MB/s of vectors. Last, search QPS of one
# partition with rf 1 and with rf 3 (reads spread over the in-sync replicas), `dvecctl bench`
# with 8 clients for 5 s each, alternated over --rounds (needs numpy for the data set:
# bench/datasets/random). Between the two, rejoin: the time a killed node's replicas of an
# rf 3 collection take to be in sync again after a restart, by WAL delta and by full copy.
# Only processes this script started are stopped.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="$root/build" rounds=3 n=50000 dim=64 batch=500 parallel=8 nodes=3
dir=/tmp/dvec-repl-bench port=27600 only=upsert,catchup,rejoin,search down=
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --dim) dim="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --down) down="$2"; shift 2 ;;
    *) echo "repl.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
bin="$(cd "$bin" && pwd)"
cluster() { "$root/deploy/local/cluster" "$@" --dir "$dir"; }
trap 'cluster stop >/dev/null 2>&1 || true' EXIT
rm -rf "$dir"
mkdir -p "$dir"
cluster start --coords 1 --nodes "$nodes" --port "$port" --bin "$bin" >/dev/null
# shellcheck disable=SC1091
. "$dir/cluster.env"
ctl() { "$bin/client/dvecctl/dvecctl" --coordinators "$COORD_URLS" "$@"; }

data="$dir/base.fvecs"
python3 - "$data" "$n" "$dim" <<'EOF'
import random, struct, sys
path, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(1)
with open(path, "wb") as f:
    head = struct.pack("<i", dim)
    for _ in range(n):
        f.write(head + struct.pack("<%df" % dim, *(rng.gauss(0, 1) for _ in range(dim))))
EOF
want() { case ",$only," in *",$1,"*) return 0 ;; esac; return 1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

if want upsert; then
declare -A rates
echo "| round | rf | points/s |"
echo "|---|---|---|"
for r in $(seq 1 "$rounds"); do
    for rf in 1 2 3; do
        name="rf$rf"
        ctl collections create "$name" --dim "$dim" --partitions 6 --replication "$rf" >/dev/null
        line="$(ctl points load "$name" "$data" --batch "$batch" --parallel "$parallel")"
        rate="$(echo "$line" | sed -n 's/.*(\([0-9]*\) points\/s).*/\1/p')"
        ctl collections drop "$name" --yes >/dev/null
        rates[$rf]="${rates[$rf]:-} $rate"
        echo "| $r | $rf | $rate |"
    done
done
m1="$(echo "${rates[1]}" | median)"
echo
echo "| rf | median points/s | ratio to rf 1 |"
echo "|---|---|---|"
for rf in 1 2 3; do
    m="$(echo "${rates[$rf]}" | median)"
    awk -v rf="$rf" -v m="$m" -v b="$m1" 'BEGIN { printf "| %d | %d | %.2f |\n", rf, m, m / b }'
done
fi

if want catchup; then
echo
ctl collections create catchup --dim "$dim" --partitions 6 --replication 1 >/dev/null
ctl points load catchup "$data" --batch "$batch" --parallel "$parallel" >/dev/null
t0=$(date +%s.%N)
ctl collections set catchup --replication-factor 3 >/dev/null
while :; do
    active=$(ctl status --json | python3 -c 'import json,sys
d=json.load(sys.stdin)
print(next((c["replica_states"]["active"] for c in d["collections"] if c["name"]=="catchup"), 0))')
    [ "$active" -ge 18 ] && break
    sleep 0.2
done
t1=$(date +%s.%N)
awk -v n="$n" -v d="$dim" -v a="$t0" -v b="$t1" 'BEGIN {
    s = b - a; p = 2 * n
    printf "catch-up: 12 new replicas (%d points copied) in sync %.2f s after the factor went 1 -> 3: %.0f points/s, %.1f MB/s of vectors\n", p, s, p / s, p * d * 4 / s / 1e6 }'
ctl collections drop catchup --yes >/dev/null
fi

# Rejoin: a node of an rf 3 collection killed (kill -9), --down points (default 1% of --n)
# written while it is down, the node restarted; time until all its replicas are in sync
# again. First as dvec does it (the node resumes from its own replicas, the WAL delta, unless
# the delta holds more than 3% of a replica's points: then a snapshot), then with the node's
# replicas deleted before the restart (a full copy of every one), the same number of writes.
if want rejoin; then
echo
down="${down:-$((n / 100))}"
python3 - "$dir/extra1.fvecs" "$dir/extra2.fvecs" "$down" "$dim" <<'EOF2'
import random, struct, sys
n, dim = int(sys.argv[3]), int(sys.argv[4])
for k, path in enumerate(sys.argv[1:3]):
    rng = random.Random(10 + k)
    with open(path, "wb") as f:
        head = struct.pack("<i", dim)
        for _ in range(n):
            f.write(head + struct.pack("<%df" % dim, *(rng.gauss(0, 1) for _ in range(dim))))
EOF2
ctl collections create rejoin --dim "$dim" --partitions 6 --replication 3 >/dev/null
ctl points load rejoin "$data" --batch "$batch" --parallel "$parallel" >/dev/null
active_of() {
    ctl status --json | python3 -c 'import json,sys
d=json.load(sys.stdin)
print(next((c["replica_states"]["active"] for c in d["collections"] if c["name"]==sys.argv[1]), 0))' "$1"
}
victim="$dir/run/node-$nodes.pid"
vhttp="http://127.0.0.1:$((port + 100 + 10 * (nodes - 1) + 1))"
# $1: extra file, $2: "keep" or "wipe", $3: first id; prints "A B": seconds from the restart
# until the node is ready (it opened its replicas: WAL replay after kill -9) and from then
# until all its replicas are in sync
rejoin() {
    kill -9 "$(cat "$victim")"
    sleep 1
    # (a write that meets the failover may fail: loading again is idempotent by id)
    until ctl points load rejoin "$1" --batch "$batch" --parallel "$parallel" --id-offset "$3" \
        >/dev/null 2>&1; do sleep 0.5; done
    [ "$2" = wipe ] && rm -rf "$dir/node-$nodes/replicas"
    local t0 t1 t2
    t0=$(date +%s.%N)
    # (a start may meet "Address in use" for a moment after the kill: try again)
    local tries=0
    until cluster start --coords 1 --nodes "$nodes" --port "$port" --bin "$bin" >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 30 ] || { echo "repl.sh: node-$nodes does not start" >&2; exit 1; }
        sleep 1
    done
    until curl -sf "$vhttp/readyz" >/dev/null 2>&1; do sleep 0.05; done
    t1=$(date +%s.%N)
    while [ "$(active_of rejoin)" -lt 18 ]; do sleep 0.1; done
    t2=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.2f %.2f", b - a, c - b }'
}
t_delta="$(rejoin "$dir/extra1.fvecs" keep "$n")"
resumed="$(curl -s "$vhttp/metrics" | awk '/^dvec_shard_pulls_resumed_total/ {print $2}')"
t_full="$(rejoin "$dir/extra2.fvecs" wipe "$((n + down))")"
echo "| rejoin after kill -9 (rf 3, $n points, $down written while down) | node ready after restart (s) | in sync after ready (s) |"
echo "|---|---|---|"
echo "| resumed from its own replicas (WAL delta; ${resumed:-0} replicas resumed) | ${t_delta% *} | ${t_delta#* } |"
echo "| replicas deleted before the restart (full copy) | ${t_full% *} | ${t_full#* } |"
ctl collections drop rejoin --yes >/dev/null
fi

if want search; then
echo
ds="$dir/ds"
"$root/bench/datasets/random" "$ds" --n "$n" --dim "$dim" --queries 1000 --k 10 >/dev/null
declare -A qps
echo "| round | rf | QPS (1 partition, 8 clients) | recall@10 |"
echo "|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
    for rf in 1 3; do
        name="s$rf"
        ctl collections create "$name" --dim "$dim" --partitions 1 --replication "$rf" >/dev/null
        ctl points load "$name" "$ds/base.fvecs" --batch "$batch" --parallel "$parallel" >/dev/null
        out="$(ctl bench "$name" --queries "$ds/queries.fvecs" --gt "$ds/gt.ivecs" --clients 8 \
            --duration 5 --json)"
        q="$(echo "$out" | python3 -c 'import json,sys
d=json.load(sys.stdin); r=d["results"][0]
print("%.0f %.4f" % (r["qps"], r.get("recall", 0)))')"
        ctl collections drop "$name" --yes >/dev/null
        qps[$rf]="${qps[$rf]:-} ${q%% *}"
        echo "| $r | $rf | ${q%% *} | ${q##* } |"
    done
done
q1="$(echo "${qps[1]}" | median)"
q3="$(echo "${qps[3]}" | median)"
awk -v a="$q1" -v b="$q3" 'BEGIN { printf "search QPS of one partition: rf 1 %d, rf 3 %d (%.2fx)\n", a, b, b / a }'
fi

#!/usr/bin/env bash
# bench/rest_ab.sh - REST search QPS of two builds, alternated round by round on one machine.
#
#   bench/rest_ab.sh --a BUILD_A --b BUILD_B [--rounds 3] [--n 50000] [--dim 128]
#                    [--queries 3000] [--clients 1,8] [--dir /tmp/dvec-rest-ab] [--port 27400]
#
# Each round starts a local cluster (deploy/local/cluster: 1 coordinator, 1 node on
# 127.0.0.1) with build A's binaries, runs `dvec-bench rest` (synthetic clustered vectors,
# loaded once, then searches one per REST request with each client count), stops it, and does
# the same with build B on the same data directory (the data are loaded once, by build A,
# before the first round). Alternating A and B round by round lets both share the machine's
# drift (it is shared and noisy). Besides QPS it reads the coordinator's CPU time
# (/proc/PID/stat, user + system) around each round's searches: CPU microseconds per REST
# search, which the machine's noise moves much less than QPS. Prints every row of every
# round; the medians per build last. Only processes this script started are stopped.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
a="" b="" rounds=3 n=50000 dim=128 queries=3000 clients=1,8 dir=/tmp/dvec-rest-ab port=27400
while [ $# -gt 0 ]; do
    case "$1" in
    --a) a="$2"; shift 2 ;;
    --b) b="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --dim) dim="$2"; shift 2 ;;
    --queries) queries="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    *) echo "rest_ab.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
[ -n "$a" ] && [ -n "$b" ] || { echo "rest_ab.sh: --a BUILD and --b BUILD are required" >&2; exit 2; }
a="$(cd "$a" && pwd)" b="$(cd "$b" && pwd)"
cluster() { "$root/deploy/local/cluster" "$@" --dir "$dir"; }
trap 'cluster stop >/dev/null 2>&1 || true' EXIT
rm -rf "$dir"
out="$dir.out"
: >"$out"
ticks() { awk '{print $14 + $15}' "/proc/$(cat "$dir/run/coord-1.pid")/stat"; }
hz=$(getconf CLK_TCK)
ncl=$(echo "$clients" | tr ',' ' ' | wc -w)
cluster start --coords 1 --nodes 1 --port "$port" --bin "$a" >/dev/null
"$a/bench/dvec-bench" rest --url "http://127.0.0.1:$((port + 2))" --n "$n" --dim "$dim" \
    --queries 100 --clients 1 --rounds 1 >/dev/null
cluster stop >/dev/null
for r in $(seq 1 "$rounds"); do
    for which in A B; do
        bin=$a
        [ "$which" = B ] && bin=$b
        cluster start --coords 1 --nodes 1 --port "$port" --bin "$bin" >/dev/null
        t0=$(ticks)
        "$bin/bench/dvec-bench" rest --url "http://127.0.0.1:$((port + 2))" --n "$n" \
            --dim "$dim" --queries "$queries" --clients "$clients" --rounds 1 --skip-load |
            sed "s/^/$which round $r: /" | tee -a "$out"
        t1=$(ticks)
        echo "$which round $r: cpu_us_per_search $(((t1 - t0) * 1000000 / hz / (queries * ncl)))" |
            tee -a "$out"
        cluster stop >/dev/null
    done
done
echo "# medians (QPS) per build and clients:"
python3 - "$out" <<'PY'
import re, statistics, sys
v = {}
for line in open(sys.argv[1]):
    m = re.match(r"([AB]) round \d+: \| REST[^|]*\| (\d+) \| (\d+) \|", line)
    if m:
        v.setdefault((m.group(2), m.group(1)), []).append(int(m.group(3)))
for (c, w) in sorted(v, key=lambda k: (int(k[0]), k[1])):
    q = v[(c, w)]
    print(f"{w} clients {c}: median {statistics.median(q):.0f} of {q}")
cpu = {}
for line in open(sys.argv[1]):
    m = re.match(r"([AB]) round \d+: cpu_us_per_search (\d+)", line)
    if m:
        cpu.setdefault(m.group(1), []).append(int(m.group(2)))
for w in sorted(cpu):
    print(f"{w} coordinator CPU per REST search: median {statistics.median(cpu[w]):.0f} us of {cpu[w]}")
if "A" in cpu and "B" in cpu:
    print(f"CPU per search: B / A = {statistics.median(cpu['B']) / statistics.median(cpu['A']):.3f}")
for c in sorted({k[0] for k in v}, key=int):
    if (c, "A") in v and (c, "B") in v:
        print(f"clients {c}: B / A = {statistics.median(v[(c, 'B')]) / statistics.median(v[(c, 'A')]):.3f}")
PY

#!/usr/bin/env bash
# The README's first command in a reduced form: scripts/quickstart on a small synthetic set
# (made by bench/datasets/random) with this build, twice (the second run loads nothing), its
# curl example, then `quickstart stop`. TAP on stdout. Args: SOURCE_ROOT BUILD_ROOT
set -uo pipefail
src="$1" build="$2"
tmp="$(mktemp -d /tmp/dvec-qs-XXXXXX)"
# a block of 120 ports below the ephemeral range (32768-), moved on when one is taken
port=$((26000 + ($$ % 50) * 120))
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$2" | tail -30; }
cleanup() { "$src/scripts/quickstart" stop --dir "$tmp/var" >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
echo "1..6"
cd "$src"
if bench/datasets/random "$tmp/small" --n 2000 --dim 64 --queries 100 --k 100 --seed 11 >"$tmp/data.log" 2>&1; then
    ok "a small data set (2000 x 64, 100 queries)"
else
    bad "bench/datasets/random" "$tmp/data.log"; exit 1
fi
run() { scripts/quickstart --data "$tmp/small" --dir "$tmp/var" --port "$port" --build "$build" >"$1" 2>&1; }
first_ok=0
for attempt in 1 2 3; do
    if run "$tmp/first.log"; then first_ok=1; break; fi
    grep -q "Address in use" "$tmp/first.log" || break
    "$src/scripts/quickstart" stop --dir "$tmp/var" >/dev/null 2>&1
    rm -rf "$tmp/var"
    port=$(( (port - 26000 + 1200) % 6000 + 26000 ))
done
if [ $first_ok = 1 ]; then ok "quickstart starts a cluster, loads and searches"; else bad "quickstart (first run)" "$tmp/first.log"; fi
# the bench table: the 1-client line's recall column
recall=$(awk '$1 == "1" && NF == 7 {print $7}' "$tmp/first.log" | head -1)
if awk -v r="${recall:-0}" 'BEGIN {exit !(r >= 0.95)}'; then ok "recall@10 $recall >= 0.95"; else bad "recall@10 '${recall}'" "$tmp/first.log"; fi
if run "$tmp/second.log" && grep -q "already holds all 2000 points" "$tmp/second.log"; then
    ok "a second run reuses the cluster and the data"
else
    bad "quickstart (second run)" "$tmp/second.log"
fi
# the curl example it printed: count through the REST API
url=$(sed -n 's/^REST_URL=//p' "$tmp/var/cluster.env")
count=$(curl -s -X POST "$url/collections/small/points/count" -H 'Content-Type: application/json' -d '{}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["count"])' 2>"$tmp/curl.log")
if [ "$count" = 2000 ]; then ok "the printed curl call counts 2000 points"; else echo "count: '$count'" >>"$tmp/curl.log"; bad "curl count" "$tmp/curl.log"; fi
scripts/quickstart stop --dir "$tmp/var" >"$tmp/stop.log" 2>&1
left=0
for f in "$tmp"/var/run/*.pid; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && left=$((left + 1)); done
if grep -q "stopped 6 processes" "$tmp/stop.log" && [ $left = 0 ]; then ok "quickstart stop stops all 6 processes"; else bad "stop" "$tmp/stop.log"; fi
[ $failed = 0 ]

#!/bin/bash
# bench_node.sh - `dvec-bench node` on a small data set: it starts a real dvec-shard, loads
# through it, runs the interleaved passes and prints every row with sane values. A benchmark
# that no longer runs, or whose node rows lose recall, fails here rather than on the day its
# numbers are needed. (Timings are not asserted: that is the benchmark's job, not a test's.)
#
#   bench_node.sh DVEC_BENCH          (TAP output; ports 26000-26999)
set -u
bench=$1
dir=$(mktemp -d /tmp/dvec-bench-node-test.XXXXXX)
trap 'rm -rf "$dir" "$dir/node.inproc"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }

# Three free ports in a row (the node's, the TCP echo server's, the node's search port, which
# dvec-bench transport takes after the node has stopped).
free() {
    python3 -c 'import socket,sys
for p in (int(sys.argv[1]), int(sys.argv[1]) + 1, int(sys.argv[1]) + 2):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", p)); s.close()' "$1" 2>/dev/null
}
port=0
for i in $(seq 0 99); do
    p=$((26000 + (($$ + i) % 100) * 10))
    if free "$p"; then port=$p; break; fi
done
if [ "$port" = 0 ]; then
    echo "1..1"; nok "no three free ports in 26000-26999"; exit 1
fi

echo "1..8"
out=$("$bench" node --n 3000 --dim 16 --queries 300 --rounds 1 --qbatch 8,32 --port "$port" \
    --dir "$dir/node" 2>"$dir/err")
rc=$?
if [ $rc = 0 ]; then ok "dvec-bench node exits 0"; else nok "dvec-bench node exits $rc: $(tail -3 "$dir/err")"; fi
echo "$out" | sed 's/^/# /'

# Rows: | path | threads | queries per request | QPS | p50 | p99 | recall | ratio |
rows() { echo "$out" | awk -F'|' -v p="$1" '$2 ~ p { gsub(/ /, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $5); gsub(/ /, "", $8); print $3, $4, $5, $8 }'; }
local_rows=$(rows "in-process part_search")
node_rows=$(rows "dvec-shard over loopback")
if [ "$(echo "$local_rows" | grep -c .)" = 2 ] && [ "$(echo "$node_rows" | grep -c .)" = 6 ]; then
    ok "2 in-process rows and 6 node rows (1, 8 and 32 queries per request, 1 and 2 threads)"
else
    nok "rows: in-process [$local_rows] node [$node_rows]"
fi
bad=$(echo "$local_rows
$node_rows" | awk '$3 <= 0 || $4 < 0.9 { print }')
if [ -z "$bad" ]; then ok "every search row has QPS > 0 and recall@10 >= 0.9 against brute force"; else nok "rows below: $bad"; fi
if [ "$(echo "$local_rows" | awk '{print $4}' | sort -u)" = "$(echo "$node_rows" | awk '{print $4}' | sort -u)" ]; then
    ok "the node returns the same recall as the same replica in-process"
else
    nok "recall differs: in-process [$local_rows] node [$node_rows]"
fi
sport_rows=$(rows "search port")
if [ "$(echo "$sport_rows" | grep -c .)" = 2 ] &&
    [ "$(echo "$sport_rows" | awk '{print $4}' | sort -u)" = "$(echo "$local_rows" | awk '{print $4}' | sort -u)" ] &&
    [ -z "$(echo "$sport_rows" | awk '$3 <= 0 { print }')" ]; then
    ok "the node's search port (plain TCP) answers with the in-process recall, 1 and 2 threads"
else
    nok "search port rows: [$sport_rows], in-process [$local_rows]"
fi
floors=$(echo "$out" | grep -c -E '^\| (empty request \(hello\) through dvec-shard|plain TCP ping-pong)[^|]*\| [12] \| [1-9][0-9]* \|')
if [ "$floors" = 4 ]; then ok "round-trip floors: hello through the node and plain TCP, 1 and 2 threads"; else nok "floor rows: $floors of 4"; fi
if echo "$out" | grep -q -E '^\| second half \| 2 \| [1-9][0-9]* \|' && [ ! -e "$dir/node.inproc" ]; then
    ok "upsert rows printed and the in-process copy removed"
else
    nok "upsert rows or the in-process copy left behind"
fi

# dvec-bench transport: dvec's NNG path and plain TCP, every row answered.
tout=$("$bench" transport --requests 300 --clients 1,2 --work-us 0,20 --port $((port + 2)) 2>"$dir/terr")
rc=$?
echo "$tout" | sed 's/^/# /'
trows=$(echo "$tout" | grep -c -E '^\| [0-9]+ \| [12] \| [1-9][0-9]* \| [0-9.]+ \| [1-9][0-9]* \| [0-9.]+ \| [0-9.]+x \|$')
if [ $rc = 0 ] && [ "$trows" = 4 ]; then
    ok "dvec-bench transport: 4 rows with both transports answering"
else
    nok "dvec-bench transport exits $rc with $trows rows: $(tail -3 "$dir/terr")"
fi

#!/usr/bin/env bash
# disk_full.sh - a node whose disk fills (issue 17): a local cluster (deploy/local/cluster: 1
# coordinator, 2 nodes, a collection with rf 2) whose node-1 keeps its data on a 16 MiB tmpfs.
# The tmpfs is filled with dd while points are written through REST: writes whose primary is
# node-1 get 507 naming the node, the partition and "no space left on device", the others are
# acknowledged; node-1 does not crash; reads (retrieve, search, scroll, count) give every value
# written before; node-1 restarts on the full disk and serves; once space is freed writes
# succeed again without a restart, node-1's replicas catch up (count with consistency=all),
# and after kill -9 and a start every acknowledged write is there on both nodes.
#
#   disk_full.sh BUILD_ROOT SOURCE_ROOT        (TAP; needs root for mount: else 1..0 # SKIP)
set -u
build=$1
src=$2
if [ "$(id -u)" != 0 ]; then
    echo "1..0 # SKIP not root (mounting a tmpfs needs it)"
    exit 0
fi
port=$((24000 + ($$ % 88) * 10)) # coordinator port..port+2, nodes port+100..port+111
dir=$(mktemp -d /tmp/dvec-disk-full.XXXXXX)
n1=$dir/node-1
mkdir -p "$n1"
if ! mount -t tmpfs -o size=16m tmpfs "$n1" 2>/dev/null; then
    rmdir "$n1" "$dir"
    echo "1..0 # SKIP cannot mount a tmpfs"
    exit 0
fi
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
fail() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
}
check() { if [ "$2" = 1 ]; then ok "$1"; else fail "$1"; fi; }

cleanup() {
    "$src/deploy/local/cluster" stop --dir "$dir" >/dev/null 2>&1
    if grep -l -E 'Sanitizer|runtime error:' "$dir"/log/*.log >/dev/null 2>&1; then
        fail "sanitizer reports in the cluster's logs"
        grep -h -A20 -E 'Sanitizer|runtime error:' "$dir"/log/*.log | head -60 | sed 's/^/# /'
    fi
    umount "$n1" 2>/dev/null || umount -l "$n1" 2>/dev/null
    echo "1..$n"
    if [ "$failed" -eq 0 ] && [ -z "${DVEC_KEEP_LOGS:-}" ]; then
        rm -rf "$dir"
    else
        echo "# logs kept in $dir/log"
    fi
}
trap cleanup EXIT

start() {
    if ! "$src/deploy/local/cluster" start --bin "$build" --dir "$dir" --port "$port" \
        --coords 1 --nodes 2 >>"$dir/start.log" 2>&1; then
        fail "cluster starts"
        sed 's/^/# /' "$dir/start.log" | tail -20
        exit 1
    fi
}
start
ok "cluster of 1 coordinator and 2 nodes, node-1 on a 16 MiB tmpfs, port $port"
REST=http://127.0.0.1:$((port + 2))
NODE1_HTTP=http://127.0.0.1:$((port + 101))

# call METHOD URL [BODY]: sets $status and $body.
call() {
    local m=$1 u=$2 out
    if [ $# -ge 3 ]; then
        out=$(curl -sS -m 30 -X "$m" -H 'Content-Type: application/json' --data-binary "$3" \
            -w '\n%{http_code}' "$u" 2>&1)
    else
        out=$(curl -sS -m 30 -X "$m" -w '\n%{http_code}' "$u" 2>&1)
    fi
    status=${out##*$'\n'}
    body=${out%$'\n'*}
}

# point ID: one point as JSON (about 6 KB), its vector and payload derived from the id.
point() {
    python3 -c 'import sys, json, math, random
i = int(sys.argv[1])
v = [math.sin(i * 7.1 + d) for d in range(32)]
pad = random.Random(i).randbytes(3000).hex()  # incompressible: each write takes new pages
print(json.dumps({"points": [{"id": i, "vector": v, "payload": {"v": i, "pad": pad}}]}))' "$1"
}

acked=()
# put ID: upserts one point; 200 adds it to acked[].
put() {
    call PUT "$REST/collections/c/points?wait=true" "$(point "$1")"
    [ "$status" = 200 ] && acked+=("$1")
}

# verify [QUERY]: every acknowledged id comes back (retrieve) with its payload; sets $bad.
verify() {
    local ids
    ids=$(printf '%s,' "${acked[@]}")
    call POST "$REST/collections/c/points${1:-}" "{\"ids\": [${ids%,}], \"with_payload\": [\"v\"]}"
    bad=$(python3 -c 'import sys, json
want = set(int(x) for x in sys.argv[2].split(",") if x)
try:
    got = {p["id"]: p["payload"]["v"] for p in json.loads(sys.argv[1])["result"]}
except Exception as e:
    print("bad answer: %s" % sys.argv[1][:200]); sys.exit()
miss = sorted(want - set(got)); wrong = sorted(i for i in got if got[i] != i)
if miss or wrong: print("missing %s wrong %s" % (miss[:10], wrong[:10]))' "$body" "$ids")
}

# count_all: the count read from every replica (consistency=all); "" when not all in sync.
count_all() {
    call POST "$REST/collections/c/points/count?consistency=all" '{"exact": true}'
    if [ "$status" = 200 ]; then
        python3 -c 'import sys, json; print(json.loads(sys.argv[1])["result"]["count"])' "$body"
    fi
}

node1_pid() { cat "$dir/run/node-1.pid"; }

call PUT "$REST/collections/c" \
    '{"vectors": {"size": 32, "distance": "Euclid"}, "shard_number": 4, "replication_factor": 2}'
check "collection with 4 partitions, rf 2" "$([ "$status" = 200 ] && echo 1)"
for i in $(seq 0 59); do put "$i"; done
check "60 points written before the disk fills" "$([ ${#acked[@]} = 60 ] && echo 1)"

# Fill node-1's disk.
dd if=/dev/zero of="$n1/fill" bs=64k >/dev/null 2>&1
avail=$(df --output=avail -k "$n1" | tail -1 | tr -d ' ')
check "node-1's disk is full (avail ${avail} KiB)" "$([ "$avail" -lt 64 ] && echo 1)"

codes=""
full_msg=""
for i in $(seq 100 139); do
    put "$i"
    codes="$codes $status"
    if [ "$status" = 507 ] && [ -z "$full_msg" ]; then full_msg=$body; fi
done
n507=$(echo "$codes" | tr ' ' '\n' | grep -c '^507$')
nother=$(echo "$codes" | tr ' ' '\n' | grep -v -c -E '^(200|507|)$')
check "writes on the full disk: 507 or acknowledged ($n507 x 507, $nother others)" \
    "$([ "$n507" -gt 0 ] && [ "$nother" = 0 ] && echo 1)"
echo "# $full_msg"
check "the 507 names node-1, a partition and 'no space left on device'" \
    "$(echo "$full_msg" | grep -q 'Insufficient storage: partition [0-9]* on node node-1: no space left on device' && echo 1)"
check "node-1 still runs" "$(kill -0 "$(node1_pid)" 2>/dev/null && echo 1)"

verify
check "retrieve: every acknowledged point with its payload ${bad:+($bad)}" "$([ -z "$bad" ] && echo 1)"
call POST "$REST/collections/c/points/count" '{"exact": true}'
check "count: ${#acked[@]} points" "$(echo "$body" | grep -q "\"count\":${#acked[@]}}" && echo 1)"
call POST "$REST/collections/c/points/search" \
    "{\"vector\": $(point 5 | python3 -c 'import sys, json; print(json.load(sys.stdin)["points"][0]["vector"])'), \"limit\": 3}"
check "search: the nearest point is the one searched for" \
    "$(echo "$body" | grep -q '"result":\[{"id":5,' && echo 1)"
call POST "$REST/collections/c/points/scroll" '{"limit": 1000, "with_payload": false}'
got=$(python3 -c 'import sys, json; print(len(json.loads(sys.argv[1])["result"]["points"]))' "$body" 2>/dev/null)
check "scroll: ${#acked[@]} points" "$([ "$got" = "${#acked[@]}" ] && echo 1)"

# Restart node-1 on the full disk: it starts and serves.
kill -9 "$(node1_pid)"
for _ in $(seq 1 100); do kill -0 "$(node1_pid)" 2>/dev/null || break; sleep 0.05; done
start
ready=""
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$NODE1_HTTP/readyz")" = 200 ] && ready=1 && break
    sleep 0.1
done
check "node-1 starts again on the full disk and is ready" "$ready"
verify
check "retrieve after the restart: every acknowledged point ${bad:+($bad)}" "$([ -z "$bad" ] && echo 1)"

# Free the space: writes succeed again, without a restart.
rm -f "$n1/fill"
codes=""
for i in $(seq 200 239); do
    put "$i"
    codes="$codes $status"
done
nbad=$(echo "$codes" | tr ' ' '\n' | grep -v -c -E '^(200|)$')
check "space freed: every write acknowledged (codes:$(echo "$codes" | tr ' ' '\n' | sort | uniq -c | tr -s ' \n' ' '))" \
    "$([ "$nbad" = 0 ] && echo 1)"

# node-1's replicas that fell out of sync catch up (recovery); every replica then agrees.
want=${#acked[@]}
got=""
for _ in $(seq 1 120); do
    got=$(count_all)
    [ "$got" = "$want" ] && break
    sleep 0.5
done
check "every replica in sync again: count with consistency=all is $want (got '$got')" \
    "$([ "$got" = "$want" ] && echo 1)"

# kill -9 and start: every acknowledged write is there, on every replica.
kill -9 "$(node1_pid)"
for _ in $(seq 1 100); do kill -0 "$(node1_pid)" 2>/dev/null || break; sleep 0.05; done
start
got=""
for _ in $(seq 1 120); do
    got=$(count_all)
    [ "$got" = "$want" ] && break
    sleep 0.5
done
check "after kill -9 and a start: count with consistency=all is $want (got '$got')" \
    "$([ "$got" = "$want" ] && echo 1)"
verify "?consistency=all"
check "after kill -9: every acknowledged point on every replica ${bad:+($bad)}" \
    "$([ -z "$bad" ] && echo 1)"
check "node-1 logged the full disk as code=full" \
    "$(grep -q 'code=full' "$dir/log/node-1.log" && echo 1)"

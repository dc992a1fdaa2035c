#!/usr/bin/env bash
# rest.sh - the REST API of a real local cluster (deploy/local/cluster: 3 coordinators, 2 nodes
# on 127.0.0.1), driven with curl: every call, its status and JSON body (checked with python3's
# json), bad input of each kind with Qdrant's 4xx errors, the cluster still serving after it,
# /metrics through promtool, and every curl example of docs/api.md.
#
#   rest.sh BUILD_ROOT SOURCE_ROOT          (TAP output; ports 23000-23999 from the PID)
set -u
build=$1
src=$2
port=$((23000 + ($$ % 88) * 10)) # coordinators use port..port+22, nodes port+100..port+111
dir=$(mktemp -d /tmp/dvec-rest-test.XXXXXX)
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
fail() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
}

cleanup() {
    "$src/deploy/local/cluster" stop --dir "$dir" >/dev/null 2>&1
    # A sanitizer report of any process fails the run (ASan/UBSan builds).
    if grep -l -E 'Sanitizer|runtime error:' "$dir"/log/*.log >/dev/null 2>&1; then
        n=$((n + 1))
        echo "not ok $n - sanitizer reports in the cluster's logs"
        grep -h -A20 -E 'Sanitizer|runtime error:' "$dir"/log/*.log | head -60 | sed 's/^/# /'
        failed=$((failed + 1))
    fi
    echo "1..$n"
    if [ "$failed" -eq 0 ]; then
        rm -rf "$dir"
    else
        echo "# logs kept in $dir/log"
    fi
}
trap cleanup EXIT

if ! "$src/deploy/local/cluster" start --bin "$build" --dir "$dir" --port "$port" --coords 3 \
    --nodes 2 >"$dir/start.log" 2>&1; then
    fail "cluster starts (deploy/local/cluster)"
    sed 's/^/# /' "$dir/start.log"
    exit 1
fi
ok "cluster of 3 coordinators and 2 nodes started on port $port"
REST=http://127.0.0.1:$((port + 2))
REST2=http://127.0.0.1:$((port + 12))
REST3=http://127.0.0.1:$((port + 22))

# call METHOD URL [BODY]: sets $status and $body (BODY '@file' sends a file).
call() {
    local m=$1 u=$2 out
    if [ $# -ge 3 ]; then
        out=$(curl -sS -m 60 -X "$m" -H 'Content-Type: application/json' --data-binary "$3" \
            -w '\n%{http_code}' "$u" 2>&1)
    else
        out=$(curl -sS -m 60 -X "$m" -w '\n%{http_code}' "$u" 2>&1)
    fi
    status=${out##*$'\n'}
    body=${out%$'\n'*}
}

# call_until200 METHOD URL: call, retried for up to 2 s while not 200 (a map change made through
# one coordinator reaches the others with raft's next heartbeat).
call_until200() {
    local i
    for i in $(seq 1 40); do
        call "$@"
        [ "$status" = 200 ] && return
        sleep 0.05
    done
}

# field PYEXPR: the value of PYEXPR over the last answer (res = its result).
field() {
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); res=r.get("result"); print(eval(sys.argv[2]))' "$body" "$1"
}

# check DESC STATUS [PYEXPR]: the last answer has STATUS, is JSON in Qdrant's envelope, and
# PYEXPR (over r = the whole answer, res = r["result"]) is true.
check() {
    local desc=$1 want=$2 expr=${3:-True}
    local why
    why=$(python3 - "$want" "$status" "$expr" "$body" <<'PY'
import json, math, sys
want, got, expr, text = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if got != want:
    print(f"status {got}, wanted {want}: {text[:300]}")
    sys.exit(1)
try:
    r = json.loads(text)
except ValueError as e:
    print(f"not JSON ({e}): {text[:300]}")
    sys.exit(1)
if isinstance(r, dict) and "status" in r and "time" in r:
    if int(want) < 300 and r["status"] != "ok":
        print(f"status member {r['status']!r}")
        sys.exit(1)
    if int(want) >= 400 and not (isinstance(r["status"], dict) and isinstance(r["status"].get("error"), str)):
        print(f"not an error envelope: {text[:300]}")
        sys.exit(1)
res = r.get("result") if isinstance(r, dict) else None
err = r["status"].get("error", "") if isinstance(r, dict) and isinstance(r.get("status"), dict) else ""
try:
    okay = eval("(" + expr + ")", {"r": r, "res": res, "err": err, "math": math})
except Exception as e:
    print(f"{expr}: {type(e).__name__}: {e}: {text[:300]}")
    sys.exit(1)
if not okay:
    print(f"{expr} is false: {text[:400]}")
    sys.exit(1)
PY
    )
    if [ $? -eq 0 ]; then ok "$desc"; else fail "$desc: $why"; fi
}

# ---- service ----------------------------------------------------------------------------------
call GET "$REST/"
check "GET / names dvec and its version" 200 "r['title'].startswith('dvec') and r['version']"
for u in "$REST" "$REST2" "$REST3"; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$u/healthz")" = 200 ] &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$u/readyz")" = 200 ] &&
        ok "$u: /healthz and /readyz 200" || fail "$u: /healthz and /readyz 200"
done

# ---- collections ------------------------------------------------------------------------------
call GET "$REST/collections"
check "GET /collections: none yet" 200 "res == {'collections': []}"
call PUT "$REST2/collections/c1" '{"vectors":{"size":4,"distance":"Cosine","on_disk":false},
  "shard_number":4,"replication_factor":2,"write_consistency_factor":1,"on_disk_payload":true,
  "hnsw_config":{"m":12,"ef_construct":64,"full_scan_threshold":100},"wal_config":{"wal_capacity_mb":8},
  "optimizers_config":{"deleted_threshold":0.2}}'
check "PUT /collections/c1 through a follower or the leader: true" 200 "res is True"
call PUT "$REST/collections/c1" '{"vectors":{"size":4,"distance":"Cosine"}}'
check "PUT an existing collection: 409" 409 "'already exists' in err"
call_until200 GET "$REST3/collections/c1"
check "GET /collections/c1 (another coordinator): CollectionInfo" 200 \
    "res['status'] == 'green' and res['points_count'] == 0 and res['segments_count'] == 4 and
     res['config']['params']['vectors'] == {'size': 4, 'distance': 'Cosine'} and
     res['config']['params']['shard_number'] == 4 and res['config']['params']['replication_factor'] == 2 and
     res['config']['hnsw_config']['m'] == 12 and res['config']['hnsw_config']['ef_construct'] == 64 and
     res['optimizer_status'] == 'ok' and res['payload_schema'] == {} and res['config']['quantization_config'] is None"
call PUT "$REST/collections/w2" '{"vectors":{"size":4,"distance":"Dot"},"replication_factor":2,"write_consistency_factor":2}'
check "PUT with write_consistency_factor 2" 200 "res is True"
# (the factor is a second map command: a follower may show it a heartbeat later)
for _ in $(seq 1 50); do
    call GET "$REST2/collections/w2"
    case "$body" in *'"write_consistency_factor":2'*) break ;; esac
    sleep 0.1
done
check "GET reports write_consistency_factor 2" 200 \
    "res['config']['params']['write_consistency_factor'] == 2 and res['config']['params']['replication_factor'] == 2"
call PUT "$REST/collections/w9" '{"vectors":{"size":4,"distance":"Dot"},"write_consistency_factor":9}'
check "write_consistency_factor 9: 422 naming it" 422 "'write_consistency_factor' in err"
call DELETE "$REST/collections/w2"
check "DELETE /collections/w2" 200 "res is True"
for d in Euclid Dot Manhattan; do
    call PUT "$REST/collections/m_$d" "{\"vectors\":{\"size\":3,\"distance\":\"$d\"},\"shard_number\":2}"
    check "PUT /collections/m_$d ($d, 3 dims)" 200 "res is True"
done
call PUT "$REST/collections/q8" '{"vectors":{"":{"size":8,"distance":"Dot"}},"quantization_config":{"scalar":{"type":"int8","quantile":0.99}}}'
check "PUT with the default vector name and scalar int8 quantization" 200 "res is True"
call GET "$REST/collections/q8"
check "q8 reports scalar int8 quantization" 200 "res['config']['quantization_config']['scalar']['type'] == 'int8'"
call GET "$REST/collections"
check "GET /collections lists all five" 200 \
    "sorted(c['name'] for c in res['collections']) == ['c1', 'm_Dot', 'm_Euclid', 'm_Manhattan', 'q8']"
call GET "$REST/collections/c1/exists"
check "GET .../c1/exists: true" 200 "res == {'exists': True}"
call GET "$REST/collections/zz/exists"
check "GET .../zz/exists: false" 200 "res == {'exists': False}"

# ---- aliases ----------------------------------------------------------------------------------
alias() { call POST "$1/collections/aliases" "{\"actions\":[$2]}"; }
names="[(a['alias_name'], a['collection_name']) for a in res['aliases']]"
call GET "$REST/aliases"
check "GET /aliases: none yet" 200 "res == {'aliases': []}"
call PUT "$REST/collections/c1b" '{"vectors":{"size":4,"distance":"Cosine"},"shard_number":2}'
check "PUT /collections/c1b (a second collection of 4 dimensions)" 200 "res is True"
alias "$REST2" '{"create_alias":{"collection_name":"c1","alias_name":"live"}},
  {"create_alias":{"collection_name":"c1","alias_name":"old"}}'
check "POST /collections/aliases through any coordinator: two aliases in one request" 200 "res is True"
call GET "$REST2/aliases"
check "GET /aliases: both, by name" 200 "$names == [('live', 'c1'), ('old', 'c1')]"
call GET "$REST3/collections/c1/aliases"
check "GET /collections/c1/aliases (another coordinator)" 200 "$names == [('live', 'c1'), ('old', 'c1')]"
call GET "$REST/collections/c1b/aliases"
check "GET /collections/c1b/aliases: none" 200 "res == {'aliases': []}"
call GET "$REST/collections/zz/aliases"
check "GET /collections/zz/aliases: 404" 404 "err == 'Not found: Collection \`zz\` doesn\\'t exist!'"
alias "$REST" '{"create_alias":{"collection_name":"c1","alias_name":"x1"}},
  {"create_alias":{"collection_name":"zz","alias_name":"x2"}}'
check "an unknown collection in the 2nd action: 404 naming it" 404 "'zz' in err and 'action 1 (create_alias)' in err"
call GET "$REST/aliases"
check "... and the 1st action was not applied (all or nothing)" 200 "$names == [('live', 'c1'), ('old', 'c1')]"
alias "$REST" '{"create_alias":{"collection_name":"c1","alias_name":"c1b"}}'
check "an alias named like a collection: 409" 409 "'collection is named \"c1b\"' in err"
alias "$REST" '{"create_alias":{"collection_name":"c1b","alias_name":"live"}}'
check "an alias that exists: 409" 409 "'alias \"live\" exists' in err"
alias "$REST" '{"delete_alias":{"alias_name":"ghost"}}'
check "deleting an unknown alias: 404" 404 "'alias \"ghost\" not found' in err"
alias "$REST" '{"rename_alias":{"old_alias_name":"old","new_alias_name":"live"}}'
check "renaming onto an alias that exists: 409" 409 "'live' in err"
alias "$REST" '{"create_alias":{"collection_name":"c1","alias_name":"bad name"}}'
check "a bad alias name: 400" 400 "'bad alias name' in err"
alias "$REST" '{"make_alias":{"alias_name":"y"}}'
check "an unknown action: 400" 400 "'actions[0]: unknown action' in err"
alias "$REST" '{"create_alias":{"alias_name":"y"}}'
check "a missing field: 400 naming it" 400 "'actions[0].create_alias: \"collection_name\" is missing' in err"
call POST "$REST/collections/aliases" '{"action":[]}'
check "no actions: 400" 400 "'actions' in err"
call PUT "$REST/collections/live" '{"vectors":{"size":4,"distance":"Cosine"}}'
check "a collection named like an alias: 409" 409 "'live' in err"
call GET "$REST3/collections/live"
check "GET /collections/live: c1's info" 200 \
    "res['config']['params']['shard_number'] == 4 and res['config']['hnsw_config']['m'] == 12"
call PATCH "$REST/collections/live" '{"params":{"write_consistency_factor":1}}'
check "PATCH /collections/live: c1's update" 200 "res is True"
call DELETE "$REST/collections/live"
check "DELETE /collections/live: false (an alias is not deleted as a collection)" 200 "res is False"
call GET "$REST/collections/c1"
check "... and c1 is still there" 200 "res['points_count'] == 0"
alias "$REST" '{"rename_alias":{"old_alias_name":"old","new_alias_name":"older"}}'
check "rename_alias" 200 "res is True"
call GET "$REST/aliases"
check "GET /aliases after the rename" 200 "$names == [('live', 'c1'), ('older', 'c1')]"
# Swapping "live" between c1 and c1b (delete + create in one request) while searches run through
# it on another coordinator: none may see "not found".
(
    for _ in $(seq 1 80); do
        curl -sS -m 20 -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
            --data-binary '{"vector":[1,0,0,0],"limit":3}' "$REST3/collections/live/points/search"
    done >"$dir/swap.codes"
) &
swapper=$!
to=c1b
for _ in $(seq 1 10); do
    alias "$REST" "{\"delete_alias\":{\"alias_name\":\"live\"}},
      {\"create_alias\":{\"collection_name\":\"$to\",\"alias_name\":\"live\"}}"
    [ "$status" = 200 ] || break
    if [ $to = c1b ]; then to=c1; else to=c1b; fi
done
check "10 swaps of live between c1 and c1b" 200 "res is True"
wait $swapper
codes=$(sort "$dir/swap.codes" | uniq -c | tr '\n' ' ')
[ "$(grep -c -v '^200$' "$dir/swap.codes")" = 0 ] && [ "$(wc -l <"$dir/swap.codes")" = 80 ] &&
    ok "80 searches through live during the swaps: all 200 ($codes)" ||
    fail "searches through live during the swaps: $codes"
call GET "$REST/collections/c1/aliases"
check "live is c1's after an even number of swaps" 200 "$names == [('live', 'c1'), ('older', 'c1')]"
alias "$REST" '{"create_alias":{"collection_name":"c1b","alias_name":"b"}}'
check "alias b of c1b" 200 "res is True"
call PUT "$REST2/collections/b/points?wait=true" '{"points":[{"id":1,"vector":[1,0,0,0],"payload":{"k":"a"}},
  {"id":2,"vector":[0,1,0,0]},{"id":3,"vector":[0.9,0.1,0,0]}]}'
check "upsert through alias b" 200 "res['status'] == 'completed'"
call POST "$REST3/collections/b/points/search" '{"vector":[1,0,0,0],"limit":2,"with_payload":true}'
check "search through alias b: c1b's points" 200 "[h['id'] for h in res] == [1, 3] and res[0]['payload'] == {'k': 'a'}"
call POST "$REST/collections/b/points/count" '{"exact":true}'
check "count through alias b" 200 "res['count'] == 3"
call GET "$REST/collections/b/points/2"
check "get a point through alias b" 200 "res['id'] == 2"
call POST "$REST/collections/b/points/scroll" '{"limit":10}'
check "scroll through alias b" 200 "[p['id'] for p in res['points']] == [1, 2, 3]"
call POST "$REST/collections/b/points/delete?wait=true" '{"points":[2]}'
check "delete through alias b" 200 "res['status'] == 'completed'"
call POST "$REST/collections/b/points/payload?wait=true" '{"payload":{"n":1},"points":[3]}'
check "set payload through alias b" 200 "res['status'] == 'completed'"
call PUT "$REST/collections/b/index?wait=true" '{"field_name":"k","field_schema":"keyword"}'
check "payload index through alias b" 200 "res['status'] == 'completed'"
call GET "$REST/collections/c1b"
check "c1b's payload_schema names the keyword index" 200 \
    "res['payload_schema'] == {'k': {'data_type': 'keyword', 'points': 2}}"
call DELETE "$REST/collections/b/index/k?wait=true"
check "drop the index through alias b" 200 "res['status'] == 'completed'"
call GET "$REST/collections/b"
check "payload_schema empty again" 200 "res['payload_schema'] == {}"
call DELETE "$REST/collections/c1b"
check "DELETE c1b" 200 "res is True"
call GET "$REST/aliases"
check "its alias b went with it" 200 "$names == [('live', 'c1'), ('older', 'c1')]"
alias "$REST" '{"delete_alias":{"alias_name":"live"}},{"delete_alias":{"alias_name":"older"}}'
check "delete_alias x2" 200 "res is True"
call GET "$REST/aliases"
check "GET /aliases: none left" 200 "res == {'aliases': []}"

# ---- telemetry, livez ---------------------------------------------------------------------------
call GET "$REST2/telemetry"
check "GET /telemetry: id, app, collections, cluster" 200 \
    "res['app']['name'] == 'dvec' and res['app']['version'] and isinstance(res['id'], str) and
     res['collections']['number_of_collections'] == 5 and
     sorted(c['id'] for c in res['collections']['collections']) == ['c1', 'm_Dot', 'm_Euclid', 'm_Manhattan', 'q8'] and
     res['cluster']['enabled'] is True and res['cluster']['status']['role'] in ('Leader', 'Follower')"
for u in "$REST" "$REST2" "$REST3"; do
    [ "$(curl -s -w '%{http_code}' "$u/livez")" = "livez check passed
200" ] && ok "$u: /livez 200" || fail "$u: /livez 200"
done

# ---- points: a deterministic data set, checked against a brute-force oracle -------------------
python3 - "$dir" <<'PY'
import json, random, sys, uuid
d = sys.argv[1]
rnd = random.Random(7)
pts = []
for i in range(300):
    pid = i if i % 10 else str(uuid.UUID(int=rnd.getrandbits(128)))
    vec = [round(rnd.uniform(-1, 1), 4) for _ in range(4)]
    pts.append({"id": pid, "vector": vec, "payload": {"n": i, "color": ["red", "green", "blue"][i % 3], "tags": [i % 2, i % 5]}})
json.dump({"points": pts[:200]}, open(f"{d}/up1.json", "w"))
batch = {"ids": [p["id"] for p in pts[200:]], "vectors": [p["vector"] for p in pts[200:]],
         "payloads": [p["payload"] for p in pts[200:]]}
json.dump({"batch": batch}, open(f"{d}/up2.json", "w"))
json.dump(pts, open(f"{d}/points.json", "w"))
PY
call PUT "$REST/collections/c1/points?wait=true" "@$dir/up1.json"
check "upsert 200 points (points form, wait=true)" 200 "res['status'] == 'completed' and isinstance(res['operation_id'], int)"
call PUT "$REST2/collections/c1/points?wait=false" "@$dir/up2.json"
check "upsert 100 points (batch form, wait=false)" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/count" '{"exact":true}'
check "count: 300" 200 "res == {'count': 300}"
call POST "$REST/collections/c1/points/count" '{"filter":{"must":[{"key":"color","match":{"value":"red"}}]}}'
check "count with a filter: 100 red" 200 "res == {'count': 100}"
call POST "$REST/collections/c1/points/count"
check "count with no body: 300" 200 "res == {'count': 300}"
# Qdrant's read consistency (c1 has 2 replicas per partition, both in sync)
call POST "$REST/collections/c1/points/count?consistency=all" '{"exact":true}'
check "count?consistency=all: 300" 200 "res == {'count': 300}"
call POST "$REST2/collections/c1/points/count?consistency=majority"
check "count?consistency=majority: 300" 200 "res == {'count': 300}"
call POST "$REST/collections/c1/points/scroll?consistency=2" '{"limit":50}'
check "scroll?consistency=2: a page of 50 in id order" 200 \
    "len(res['points']) == 50 and res['next_page_offset'] is not None"
call POST "$REST/collections/c1/points/count?consistency=3"
check "consistency=3 with 2 replicas: 503 naming the partition" 503 \
    "'read consistency 3' in err and 'partition' in err"
call POST "$REST/collections/c1/points/count?consistency=most"
check "consistency=most: 400 naming it" 400 "'consistency' in err"
call GET "$REST/collections/c1"
check "points_count 300" 200 "res['points_count'] == 300"

UUID0=$(python3 -c "import json;print(json.load(open('$dir/points.json'))[0]['id'])")
call POST "$REST/collections/c1/points" "{\"ids\":[1,\"$UUID0\",999999,2],\"with_vector\":true}"
check "retrieve by ids: found ones in order, payload and vector" 200 \
    "[p['id'] for p in res] == [1, '$UUID0', 2] and res[0]['payload']['n'] == 1 and len(res[0]['vector']) == 4 and
     abs(sum(x*x for x in res[0]['vector']) - 1) < 1e-4"
call POST "$REST/collections/c1/points" '{"ids":[1],"with_payload":{"include":["color"]}}'
check "retrieve with_payload include" 200 "res == [{'id': 1, 'payload': {'color': 'green'}}]"
call POST "$REST/collections/c1/points" '{"ids":[1],"with_payload":{"exclude":["color","tags"]}}'
check "retrieve with_payload exclude" 200 "res == [{'id': 1, 'payload': {'n': 1}}]"
call POST "$REST/collections/c1/points" '{"ids":[1],"with_payload":false}'
check "retrieve without payload" 200 "res == [{'id': 1}]"
call GET "$REST/collections/c1/points/$UUID0"
check "GET a point by UUID" 200 "res['id'] == '$UUID0' and res['payload']['n'] == 0 and len(res['vector']) == 4"
UPPER=$(echo "$UUID0" | tr 'a-f' 'A-F' | tr -d '-')
call GET "$REST/collections/c1/points/$UPPER"
check "GET a point by an upper-case UUID without dashes" 200 "res['id'] == '$UUID0'"
call GET "$REST/collections/c1/points/12345"
check "GET a missing point: 404" 404 "'No point with id 12345' in err"

# Search against brute force: exact top results on a small collection (ef covers it all).
oracle() { # METRIC QUERY K FILTERCOLOR -> ids and scores as JSON
    python3 - "$dir" "$@" <<'PY'
import json, math, sys
d, metric, q, k, color = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pts = json.load(open(f"{d}/points.json"))
def score(v):
    if metric == "Cosine":
        nv = math.sqrt(sum(x*x for x in v)); nq = math.sqrt(sum(x*x for x in q))
        return sum(a*b for a, b in zip(v, q)) / (nv * nq)
    if metric == "Dot":
        return sum(a*b for a, b in zip(v, q))
    if metric == "Euclid":
        return math.sqrt(sum((a-b)**2 for a, b in zip(v, q)))
    return sum(abs(a-b) for a, b in zip(v, q))
rev = metric in ("Cosine", "Dot")
c = [(score(p["vector"]), p["id"]) for p in pts if color == "-" or p["payload"]["color"] == color]
c.sort(key=lambda t: -t[0] if rev else t[0])
print(json.dumps([[i, s] for s, i in c[:k]]))
PY
}
Q='[0.3,-0.2,0.8,0.1]'
EXP=$(oracle Cosine "$Q" 5 -)
call POST "$REST/collections/c1/points/search" "{\"vector\":$Q,\"limit\":5,\"params\":{\"hnsw_ef\":400}}"
check "search (Cosine): the oracle's top 5, cosine similarity scores" 200 \
    "[p['id'] for p in res] == [e[0] for e in $EXP] and all(abs(p['score'] - e[1]) < 1e-4 for p, e in zip(res, $EXP)) and
     all(p['version'] == 0 and 'payload' not in p and 'vector' not in p for p in res)"
call POST "$REST3/collections/c1/points/search?consistency=all" "{\"vector\":$Q,\"limit\":5,\"params\":{\"hnsw_ef\":400}}"
check "search?consistency=all: the same top 5" 200 "[p['id'] for p in res] == [e[0] for e in $EXP]"
EXP=$(oracle Cosine "$Q" 6 blue)
call POST "$REST2/collections/c1/points/search" "{\"vector\":$Q,\"limit\":4,\"offset\":2,\"with_payload\":true,\"with_vector\":true,
  \"filter\":{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"blue\"}}]},\"params\":{\"exact\":true}}"
check "search with filter, offset, payload and vector" 200 \
    "[p['id'] for p in res] == [e[0] for e in $EXP][2:] and all(p['payload']['color'] == 'blue' and len(p['vector']) == 4 for p in res)"
EXP=$(oracle Cosine "$Q" 300 -)
call POST "$REST/collections/c1/points/search" "{\"vector\":$Q,\"limit\":300,\"score_threshold\":0.8,\"params\":{\"hnsw_ef\":600}}"
check "search with score_threshold 0.8 (Cosine keeps >=)" 200 \
    "len(res) == len([e for e in $EXP if e[1] >= 0.8]) and all(p['score'] >= 0.8 for p in res)"
call POST "$REST/collections/c1/points/search" "{\"vector\":$Q,\"limit\":5,\"params\":{\"hnsw_ef\":200000}}"
check "hnsw_ef over the limit: 422 at once, naming the field and the limit" 422 \
    "'hnsw_ef' in err and '100000' in err"
call POST "$REST/collections/c1/points/search" "{\"vector\":{\"name\":\"\",\"vector\":$Q},\"limit\":1}"
check "search with a NamedVector of the default name" 200 "len(res) == 1"
call POST "$REST/collections/c1/points/search/batch" "{\"searches\":[{\"vector\":$Q,\"limit\":2},
  {\"vector\":[1,0,0,0],\"limit\":3,\"filter\":{\"must\":[{\"key\":\"n\",\"range\":{\"lt\":50}}]},\"with_payload\":[\"n\"]}]}"
check "search/batch: one list per search" 200 \
    "len(res) == 2 and len(res[0]) == 2 and len(res[1]) == 3 and all(p['payload']['n'] < 50 and list(p['payload']) == ['n'] for p in res[1])"
for d in Euclid Dot Manhattan; do
    python3 - "$dir" > "$dir/m.json" <<'PY'
import json, sys
pts = json.load(open(f"{sys.argv[1]}/points.json"))
print(json.dumps({"points": [{"id": p["id"], "vector": p["vector"][:3], "payload": p["payload"]} for p in pts]}))
PY
    call PUT "$REST/collections/m_$d/points?wait=true" "@$dir/m.json"
    check "upsert 300 points into m_$d" 200 "res['status'] == 'completed'"
    EXP=$(python3 - "$dir" "$d" <<'PY'
import json, math, sys
d, metric = sys.argv[1], sys.argv[2]
pts = json.load(open(f"{d}/points.json")); q = [0.5, -0.5, 0.25]
def s(v):
    v = v[:3]
    if metric == "Dot": return sum(a*b for a, b in zip(v, q))
    if metric == "Euclid": return math.sqrt(sum((a-b)**2 for a, b in zip(v, q)))
    return sum(abs(a-b) for a, b in zip(v, q))
c = sorted(((s(p["vector"]), p["id"]) for p in pts), key=lambda t: -t[0] if metric == "Dot" else t[0])
print(json.dumps([[i, sc] for sc, i in c[:5]]))
PY
    )
    call POST "$REST3/collections/m_$d/points/query" '{"query":[0.5,-0.5,0.25],"limit":5,"params":{"hnsw_ef":400}}'
    check "query (m_$d): the oracle's top 5 with Qdrant's $d scores" 200 \
        "[p['id'] for p in res['points']] == [e[0] for e in $EXP] and all(abs(p['score'] - e[1]) < 1e-4 for p, e in zip(res['points'], $EXP))"
done
call POST "$REST/collections/m_Euclid/points/search" '{"vector":[0.5,-0.5,0.25],"limit":300,"score_threshold":0.5}'
check "score_threshold with Euclid keeps distances <= it" 200 "len(res) > 0 and all(p['score'] <= 0.5 for p in res)"

EXP=$(oracle Cosine "$Q" 3 -)
call POST "$REST/collections/c1/points/query" "{\"query\":{\"nearest\":$Q},\"limit\":3,\"with_payload\":true,\"params\":{\"hnsw_ef\":400}}"
check "query {nearest: vector}" 200 "[p['id'] for p in res['points']] == [e[0] for e in $EXP] and 'payload' in res['points'][0]"
call POST "$REST/collections/c1/points/query" '{"query":7,"limit":3,"params":{"hnsw_ef":400}}'
check "query by point id: the point itself is not a result" 200 "len(res['points']) == 3 and all(p['id'] != 7 for p in res['points'])"
call POST "$REST/collections/c1/points/query" "{\"query\":{\"nearest\":\"$UUID0\"},\"limit\":2}"
check "query {nearest: uuid}" 200 "len(res['points']) == 2 and all(p['id'] != '$UUID0' for p in res['points'])"
call POST "$REST/collections/c1/points/query" '{"limit":3,"offset":2,"filter":{"must":[{"key":"color","match":{"value":"red"}}]}}'
check "query without query: points in id order" 200 "[p['id'] for p in res['points']] == [9, 12, 15] and all(p['score'] == 0 for p in res['points'])"
call POST "$REST/collections/c1/points/query/batch" "{\"searches\":[{\"query\":$Q,\"limit\":1},{\"query\":3,\"limit\":2,\"with_vector\":true}]}"
check "query/batch: one {points} per query" 200 "len(res) == 2 and len(res[0]['points']) == 1 and len(res[1]['points']) == 2 and len(res[1]['points'][0]['vector']) == 4"
call POST "$REST/collections/c1/points/query" '{"query":{"formula":{"sum":[1]}},"limit":2}'
check "query kinds dvec does not serve: 400 naming them" 400 "'formula' in err"
call POST "$REST/collections/c1/points/query" '{"query":[1,0,0,0],"using":"image"}'
check "query using a named vector: 400" 400 "'image' in err"
call POST "$REST/collections/c1/points/query" '{"query":424242}'
check "query by a missing point id: 404" 404 "'424242' in err"

# Scroll through everything in pages of 7: every id once, integers then UUIDs, in order.
python3 - "$REST" "$dir" <<'PY' > "$dir/scroll.out"
import json, sys, urllib.request
url, d = sys.argv[1], sys.argv[2]
seen, off, pages = [], None, 0
while True:
    body = {"limit": 7, "with_payload": ["n"]}
    if off is not None:
        body["offset"] = off
    req = urllib.request.Request(f"{url}/collections/c1/points/scroll", data=json.dumps(body).encode(), method="POST")
    res = json.load(urllib.request.urlopen(req))["result"]
    seen += [p["id"] for p in res["points"]]
    pages += 1
    off = res["next_page_offset"]
    if off is None or pages > 100:
        break
pts = json.load(open(f"{d}/points.json"))
ints = sorted(p["id"] for p in pts if isinstance(p["id"], int))
uuids = sorted(p["id"] for p in pts if isinstance(p["id"], str))
print("ok" if seen == ints + uuids and pages == 43 else f"bad: {pages} pages, {len(seen)} ids")
PY
[ "$(cat "$dir/scroll.out")" = ok ] && ok "scroll in pages of 7: all 300 ids once, in id order" ||
    fail "scroll in pages of 7: $(cat "$dir/scroll.out")"
call POST "$REST/collections/c1/points/scroll" '{"offset":290,"limit":100,"filter":{"must":[{"key":"n","range":{"gte":290}}]},"with_vector":true,"with_payload":false}'
check "scroll from an offset with a filter" 200 \
    "[p['id'] for p in res['points'][:9]] == [291,292,293,294,295,296,297,298,299] and res['next_page_offset'] is None and
     all('payload' not in p and len(p['vector']) == 4 for p in res['points'])"

# ---- payloads, indexes, deletes ----------------------------------------------------------------
call PUT "$REST/collections/c1/index?wait=true" '{"field_name":"color","field_schema":"keyword"}'
check "create a keyword payload index" 200 "res['status'] == 'completed'"
call PUT "$REST/collections/c1/index" '{"field_name":"n","field_schema":{"type":"integer","lookup":true,"range":true}}'
check "create an integer payload index ({type: integer})" 200 "res['status'] == 'completed'"
call PUT "$REST/collections/c1/index" '{"field_name":"g","field_schema":"geo"}'
check "a geo index" 200 "res['status'] == 'completed'"
call PUT "$REST/collections/c1/index" '{"field_name":"g2","field_schema":"vector"}'
check "an unknown index type: 400 naming it" 400 "'vector' in err"
call PUT "$REST/collections/c1/index" '{"field_name":"t","field_schema":{"type":"text","tokenizer":"nope"}}'
check "a bad tokenizer: 400 naming it" 400 "'tokenizer' in err"
call POST "$REST/collections/c1/points/count" '{"filter":{"must":[{"key":"color","match":{"value":"green"}},{"key":"n","range":{"lt":30}}]}}'
check "count through the indexes" 200 "res == {'count': 10}"
call POST "$REST/collections/c1/points/payload?wait=true" '{"payload":{"flag":1,"color":"pink"},"points":[1,2]}'
check "set payload by ids" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points" '{"ids":[1,2]}'
check "set payload merged keys" 200 "res[0]['payload'] == {'n': 1, 'color': 'pink', 'tags': [1, 1], 'flag': 1} and res[1]['payload']['flag'] == 1"
call PUT "$REST/collections/c1/points/payload" '{"payload":{"only":true},"points":[2]}'
check "overwrite payload by ids" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/payload/delete" '{"keys":["flag","tags"],"points":[1]}'
check "delete payload keys by ids" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points" '{"ids":[1,2]}'
check "payloads after overwrite and key delete" 200 "res[0]['payload'] == {'n': 1, 'color': 'pink'} and res[1]['payload'] == {'only': True}"
call POST "$REST/collections/c1/points/payload/clear" '{"points":[2]}'
check "clear payload by ids" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points" '{"ids":[2]}'
check "a cleared payload is {}" 200 "res == [{'id': 2, 'payload': {}}]"
call POST "$REST/collections/c1/points/payload" '{"payload":{"grp":"x"},"filter":{"must":[{"key":"n","range":{"gte":100,"lt":130}}]}}'
check "set payload by filter (30 points)" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/count" '{"filter":{"must":[{"key":"grp","match":{"value":"x"}}]}}'
check "set payload by filter reached exactly the 30" 200 "res == {'count': 30}"
call POST "$REST/collections/c1/points/payload/delete" '{"keys":["grp"],"filter":{"must":[{"key":"n","range":{"gte":100,"lt":110}}]}}'
check "delete payload keys by filter" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/payload/clear" '{"filter":{"must":[{"key":"n","range":{"gte":120,"lt":125}}]}}'
check "clear payload by filter" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/count" '{"filter":{"must":[{"key":"grp","match":{"value":"x"}}]}}'
check "grp left on the 15 others" 200 "res == {'count': 15}"
call PUT "$REST/collections/c1/points/payload" '{"payload":{"grp":"y"},"filter":{"must":[{"key":"grp","match":{"value":"x"}}]}}'
check "overwrite payload by filter (changes whether points match)" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/count" '{"filter":{"must":[{"key":"grp","match":{"value":"y"}}]}}'
check "overwrite by filter visited each match once" 200 "res == {'count': 15}"
call POST "$REST/collections/c1/points/payload" '{"payload":{"a":1},"points":[777777]}'
check "set payload of a missing point: 404" 404 "'777777' in err"
call POST "$REST/collections/c1/points/delete?wait=true" '{"points":[3,4,5,"'"$UUID0"'"]}'
check "delete points by ids" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/count" '{"filter":{"must":[{"key":"color","match":{"value":"blue"}}]}}'
blue=$(field "res['count']")
call POST "$REST/collections/c1/points/delete" '{"filter":{"must":[{"key":"color","match":{"value":"blue"}}]}}'
check "delete points by filter ($blue blue ones)" 200 "res['status'] == 'completed'"
left=$((296 - blue))
call POST "$REST/collections/c1/points/count"
check "count after the deletes: 296 - $blue = $left" 200 "res == {'count': $left}"
call POST "$REST/collections/c1/points/scroll" '{"limit":300,"filter":{"must":[{"key":"color","match":{"value":"blue"}}]}}'
check "no blue point is left" 200 "res['points'] == [] and res['next_page_offset'] is None"
call DELETE "$REST/collections/c1/index/n"
check "delete a payload index" 200 "res['status'] == 'completed'"

# ---- cluster ----------------------------------------------------------------------------------
call GET "$REST2/cluster"
check "GET /cluster: Qdrant's ClusterStatus, and dvec's rebalancing with its moves" 200 \
    "res['status'] == 'enabled' and res['peer_id'] == 2 and len(res['peers']) == 5 and
     all(k in res['peers'] for k in ('1', '2', '3', '1000001', '1000002')) and
     res['raft_info']['leader'] in (1, 2, 3) and res['raft_info']['role'] in ('Leader', 'Follower') and
     res['raft_info']['is_voter'] is True and res['consensus_thread_status']['consensus_thread_status'] == 'working' and
     res['message_send_failures'] == {} and
     res['rebalance']['auto_rebalance'] is True and res['rebalance']['paused'] is False and
     res['rebalance']['moves_per_node'] == 2 and isinstance(res['rebalance']['moves'], list)"
call GET "$REST/collections/c1/cluster"
check "GET /collections/c1/cluster: 4 shards x 2 replicas, Active, on node peers" 200 \
    "res['peer_id'] == 1 and res['shard_count'] == 4 and res['local_shards'] == [] and len(res['remote_shards']) == 8 and
     sorted(set(s['shard_id'] for s in res['remote_shards'])) == [0, 1, 2, 3] and
     all(s['state'] == 'Active' and s['peer_id'] in (1000001, 1000002) for s in res['remote_shards']) and
     res['shard_transfers'] == []"

# ---- bad input of every kind: Qdrant-style 4xx, nothing written --------------------------------
call PUT "$REST/collections/c1/points" '{"points":[{"id":1,"vector":[1,2,3]'
check "malformed JSON: 400" 400 "err.startswith('Format error in JSON body')"
call PUT "$REST/collections/c1/points" '[1,2,3]'
check "a JSON array as the body: 400" 400 "'Format error' in err"
call PUT "$REST/collections/c1/points" ''
check "an empty body: 400" 400 "'EOF' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":900,"vector":[1,2,NaN,4]}]}'
check "NaN in a vector (not JSON): 400" 400 "'Format error' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":900,"vector":[1,2,1e39,4]}]}'
check "a value beyond float32: 400" 400 "'float32' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":900,"vector":[1,2,3,4]},{"id":901,"vector":[1,2,3]}]}'
check "wrong dimension in upsert: 400 Vector dimension error" 400 "'Vector dimension error: expected dim: 4, got 3' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":900,"vector":"abc"}]}'
check "a vector of the wrong type: 400" 400 "'Format error' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":-5,"vector":[1,2,3,4]}]}'
check "a negative id: 400" 400 "'Format error' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":"not-a-uuid","vector":[1,2,3,4]}]}'
check "a string id that is not a UUID: 400" 400 "'UUID' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":1.5,"vector":[1,2,3,4]}]}'
check "a real id: 400" 400 "'Format error' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":18446744073709551615,"vector":[1,2,3,4]}]}'
check "an id above 2^63-1: 400" 400 "'Format error' in err"
call PUT "$REST/collections/c1/points" '{"points":[{"id":900,"vector":[1,2,3,4],"payload":[1]}]}'
check "a payload that is not an object: 400" 400 "'payload' in err"
python3 -c "import json;print(json.dumps({'points':[{'id':900,'vector':[1,2,3,4],'payload':{'a':json.loads('['*70+']'*70)}}]}))" > "$dir/deep.json"
call PUT "$REST/collections/c1/points" "@$dir/deep.json"
check "a payload nested 70 deep: 400" 400 "'deeper' in err"
python3 -c "import json;print(json.dumps({'points':[{'id':900,'vector':[1,2,3,4]}]+[{}]*100000}))" > "$dir/novec.json"
call PUT "$REST/collections/c1/points" "@$dir/novec.json"
check "100,000 points without a vector after a good one: 400" 400 "True"
call PUT "$REST/collections/c1/points" '{"batch":{"ids":[900,901],"vectors":[[1,2,3,4]]}}'
check "a batch with fewer vectors than ids: 400" 400 "'equal' in err"
call PUT "$REST/collections/c1/points" '{"pts":[]}'
check "neither points nor batch: 400" 400 "'Format error' in err"
call GET "$REST/collections/c1/points/900"
check "none of the refused points was written" 404 "True"
call PUT "$REST/collections/nope/points" '{"points":[{"id":1,"vector":[1,2,3,4]}]}'
check "upsert into an unknown collection: 404" 404 "err == 'Not found: Collection \`nope\` doesn\\'t exist!'"
for p in "points/search:{\"vector\":[1,2,3,4],\"limit\":1}" "points/query:{\"query\":[1,2,3,4]}" \
    "points/scroll:{}" "points/count:{}" "points/delete:{\"points\":[1]}" "points:{\"ids\":[1]}"; do
    call POST "$REST/collections/nope/${p%%:*}" "${p#*:}"
    check "POST .../nope/${p%%:*}: 404" 404 "'nope' in err"
done
call GET "$REST/collections/nope"
check "GET an unknown collection: 404" 404 "'nope' in err"
call GET "$REST/collections/nope/cluster"
check "GET an unknown collection's cluster: 404" 404 "True"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3],"limit":3}'
check "search with the wrong dimension: 400" 400 "'expected dim: 4, got 3' in err"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3,4]}'
check "search without limit: 400 missing field" 400 "'limit' in err"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3,4],"limit":0}'
check "limit 0: 422" 422 "err.startswith('Validation error')"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3,4],"limit":"ten"}'
check "limit of the wrong type: 400" 400 "'limit' in err"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3,4],"limit":3,"filter":{"must":[{"key":"a","range":{"gt":"x"}}]}}'
check "a bad filter: 400" 400 "'filter' in err"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3,4],"limit":3,"filter":[1]}'
check "a filter of the wrong type: 400" 400 "'filter' in err"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3,4],"limit":3,"with_payload":5}'
check "with_payload of the wrong type: 400" 400 "'with_payload' in err"
call POST "$REST/collections/c1/points/search" '{"vector":[1,2,3,4],"limit":3,"shard_key":"a"}'
check "shard_key: 400 (not supported)" 400 "'shard_key' in err"
call POST "$REST/collections/c1/points/search/batch" '{"searches":[{"vector":[1,2,3,4],"limit":1},{"vector":[1],"limit":1}]}'
check "a bad search in a batch fails the batch: 400" 400 "'dim' in err"
call POST "$REST/collections/c1/points/scroll" '{"offset":{"a":1}}'
check "scroll offset of the wrong type: 400" 400 "'offset' in err"
call POST "$REST/collections/c1/points/count" '{"exact":"yes"}'
check "count exact of the wrong type: 400" 400 "'exact' in err"
call PUT "$REST/collections/x1" '{"vectors":{"size":4,"distance":"Cosinus"}}'
check "an unknown distance: 400" 400 "'distance' in err"
call PUT "$REST/collections/x1" '{"vectors":{"size":70000,"distance":"Cosine"}}'
check "a dimension too large: 422" 422 "'size' in err"
call PUT "$REST/collections/x1" '{"vectors":{"size":4,"distance":"Cosine"},"hnsw_config":{"ef_construct":2}}'
check "ef_construct 2: 422" 422 "'ef_construct' in err"
call PUT "$REST/collections/x1" '{"vectors":{"size":4,"distance":"Cosine"},"shard_number":5000}'
check "shard_number beyond dvec's limit: 400" 400 "True"
call PUT "$REST/collections/x1" '{"vectors":{"a":{"size":4,"distance":"Cosine"},"b":{"size":0,"distance":"Dot"}}}'
check "a named vector of size 0: 422 naming it" 422 "'vectors.b.size' in err"
call PUT "$REST/collections/x1" '{"vectors":{"a":{"size":4,"distance":"Cosine"}},"sparse_vectors":{"a":{}}}'
check "a name both dense and sparse: 400" 400 "'names a dense and a sparse' in err"
call PUT "$REST/collections/x1" '{"vectors":{"a":{"size":4,"distance":"Cosine","multivector_config":{"comparator":"sum"}}}}'
check "an unknown multivector comparator: 400" 400 "'multivector_config' in err"
call PUT "$REST/collections/x1" '{"vectors":{}}'
check "a collection without vectors: 400" 400 "'at least one vector' in err"
call PUT "$REST/collections/bad%2Fname" '{"vectors":{"size":4,"distance":"Cosine"}}'
check "a collection name dvec refuses: 400" 400 "True"
call PUT "$REST/collections/x1" '{"vectors":{"size":4,"distance":"Cosine"},"sparse_vectors":{"s":{}}}'
check "sparse vectors beside an unnamed vector: 400" 400 "'sparse' in err"
call PUT "$REST/collections/x1" '{"sparse_vectors":{"s":{"modifier":"bm42"}}}'
check "an unknown sparse modifier: 400" 400 "'modifier' in err"
call GET "$REST/collections/x1/exists"
check "no refused collection was created" 200 "res == {'exists': False}"
call PUT "$REST/collections/c1/points?wait=perhaps" '{"points":[]}'
check "wait=perhaps: 400" 400 "'wait' in err"
call GET "$REST/collections/c1/points/not-an-id"
check "a point id in the path that is no id: 400" 400 "True"
call DELETE "$REST/collections"
check "a method the path does not serve: 405 with the JSON envelope" 405 "True"
call GET "$REST/no/such/path"
check "an unknown path: 404 with the JSON envelope" 404 "True"
call POST "$REST/metrics"
check "POST /metrics: 405" 405 "True"
head -c $((64 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$dir/big.json"
call PUT "$REST/collections/c1/points" "@$dir/big.json"
check "a body over max_message: 413" 413 "'Payload too large' in err"
rm -f "$dir/big.json"
# A large body within the limit is served (20,000 points of 4 dims, several MB).
python3 - "$dir" <<'PY'
import json, sys
json.dump({"points": [{"id": 100000 + i, "vector": [i % 7, 1, 2, 3], "payload": {"k": "v" * 50}} for i in range(20000)]},
          open(f"{sys.argv[1]}/large.json", "w"))
PY
call PUT "$REST3/collections/c1/points?wait=true" "@$dir/large.json"
check "a large upsert (20,000 points, $(($(stat -c %s "$dir/large.json") / 1024)) KiB) through REST" 200 "res['status'] == 'completed'"
call POST "$REST/collections/c1/points/count"
check "count after it: $left + 20,000" 200 "res == {'count': $((left + 20000))}"
# Raw garbage and half requests on the socket: the server shrugs them off.
python3 - "$((port + 2))" <<'PY'
import socket, sys
port = int(sys.argv[1])
for raw in [b"GARBAGE\r\n\r\n", b"POST /collections/c1/points/search HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"vec",
            b"PUT /collections/c1/points HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n", b"\x00\xff" * 100]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(raw)
    s.shutdown(socket.SHUT_WR)
    try:
        s.recv(4096)
    except OSError:
        pass
    s.close()
PY
ok "garbage, truncated bodies and bad lengths on raw sockets"

# ---- still serving ---------------------------------------------------------------------------
for u in "$REST" "$REST2" "$REST3"; do
    call POST "$u/collections/c1/points/search" "{\"vector\":$Q,\"limit\":3}"
    check "$u still serves searches after the bad input" 200 "len(res) == 3"
done
alive=0
for f in "$dir"/run/*.pid; do kill -0 "$(cat "$f")" 2>/dev/null && alive=$((alive + 1)); done
[ $alive -eq 5 ] && ok "all 5 processes alive" || fail "all 5 processes alive ($alive)"

# ---- a search whose node does not answer -------------------------------------------------------
# Searches are started on the HTTP thread (the fast path); one that meets a node that does not
# answer is handed to a worker, which reads the other replica (c1 has 2 per partition): the
# same answer, once.
call POST "$REST/collections/c1/points/search" "{\"vector\":$Q,\"limit\":5}"
before=$(field "[p['id'] for p in res]")
stopped=$(cat "$dir/run/node-1.pid")
kill -STOP "$stopped"
all_same=1
for i in 1 2 3; do
    call POST "$REST/collections/c1/points/search?timeout=1" "{\"vector\":$Q,\"limit\":5}"
    [ "$status" = 200 ] && [ "$(field "[p['id'] for p in res]")" = "$before" ] || {
        all_same=0
        echo "# search $i: $status $body"
    }
done
kill -CONT "$stopped"
[ $all_same = 1 ] && ok "searches with node-1 stopped: 200 and the same 5 ids, 3 times" ||
    fail "searches with node-1 stopped: $status $body (before: $before)"

# ---- metrics ----------------------------------------------------------------------------------
curl -s "$REST/metrics" >"$dir/metrics.txt"
grep -q '^dvec_rest_fast_searches_total{outcome="answered"} [1-9]' "$dir/metrics.txt" &&
    grep -q '^dvec_rest_fast_searches_total{outcome="requeued"} [1-9]' "$dir/metrics.txt" &&
    ok "/metrics: searches answered on the HTTP thread, and requeued when a node did not answer" ||
    fail "/metrics: fast searches: $(grep fast_searches "$dir/metrics.txt" | tr '\n' ' ')"
grep -q '^dvec_rest_requests_total{op="search",code="2xx"} [1-9]' "$dir/metrics.txt" &&
    grep -q '^dvec_rest_request_duration_seconds_count{op="upsert"} [1-9]' "$dir/metrics.txt" &&
    ok "/metrics counts and times REST requests" || fail "/metrics counts and times REST requests"
if command -v promtool >/dev/null 2>&1; then
    if out=$(promtool check metrics <"$dir/metrics.txt" 2>&1); then
        ok "promtool check metrics accepts /metrics"
    else
        fail "promtool check metrics: $(echo "$out" | head -5 | tr '\n' ' ')"
    fi
else
    ok "promtool check metrics # SKIP promtool not installed (Debian package prometheus)"
fi

# ---- the examples of docs/api.md, in order, against this cluster --------------------------------
python3 - "$src/docs/api.md" >"$dir/examples.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.findall(r"```sh\n(.*?)```", text, re.S):
    want = "200"
    cmd = ""
    for line in block.splitlines():
        m = re.match(r"#\s*expect:\s*(\d+)", line.strip())
        if m:
            want = m.group(1)
            continue
        if not cmd and not line.startswith("curl "):
            continue
        cmd += line + "\n"
        if line.endswith("\\") or cmd.count("'") % 2 == 1:
            continue
        print(want + "\t" + cmd.replace("\n", "\x1f").rstrip("\x1f"))
        cmd, want = "", "200"
PY
nex=0
while IFS=$'\t' read -r want cmd; do
    cmd=${cmd//$'\x1f'/$'\n'}
    nex=$((nex + 1))
    code=$(
        curl() { command curl -sS -m 60 -o "$dir/ex.out" -w '%{http_code}' "$@"; }
        DVEC=$REST
        eval "$cmd"
    )
    short=$(echo "$cmd" | head -1 | cut -c1-90)
    json=1
    case "$cmd" in *healthz* | *readyz* | *livez* | *metrics*) json=0 ;; esac
    if [ "$code" = "$want" ] &&
        { [ $json = 0 ] || python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$dir/ex.out" 2>/dev/null; }; then
        ok "docs/api.md example $nex ($want): $short"
    else
        fail "docs/api.md example $nex: got $code, wanted $want: $short: $(head -c 300 "$dir/ex.out")"
    fi
done <"$dir/examples.txt"
[ $nex -ge 30 ] && ok "docs/api.md has $nex curl examples, all run" || fail "only $nex curl examples found in docs/api.md"

# ---- drop ---------------------------------------------------------------------------------------
for c in c1 m_Euclid m_Dot m_Manhattan q8; do
    call DELETE "$REST/collections/$c"
    check "DELETE /collections/$c: true" 200 "res is True"
done
call DELETE "$REST/collections/c1"
check "DELETE a missing collection: false" 200 "res is False"
call GET "$REST/collections"
check "no collection left" 200 "res == {'collections': []}"
exit 0

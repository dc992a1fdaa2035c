#!/usr/bin/env bash
# dvecctl.sh BUILD_ROOT SOURCE_ROOT - every dvecctl command against a real local cluster of
# 3 coordinators and 2 nodes (deploy/local/cluster) on 127.0.0.1: exit codes and output, the
# --json forms against golden files (golden/, volatile fields normalised by normalize.py),
# loads from .fvecs, .npy and JSON Lines, and bad input. TAP output.
# DVECCTL_GOLDEN_UPDATE=1 rewrites the golden files from this run (check the diff).
set -u
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
here="$src/tests/client/dvecctl"
ctl="$build/client/dvecctl/dvecctl"
cluster="$src/deploy/local/cluster"
py=python3

dir=$(mktemp -d /tmp/dvecctl-test-XXXXXX)
cleanup() {
    "$cluster" stop --dir "$dir/cluster" >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

n=0
failed=0
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
fail() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
}
finish() {
    echo "1..$n"
    exit $((failed > 0))
}

# run ARGS...: runs dvecctl, stdout in $dir/out, stderr in $dir/err, exit status in $rc.
run() {
    "$ctl" "$@" >"$dir/out" 2>"$dir/err" </dev/null
    rc=$?
}
show() {
    sed 's/^/# out: /' "$dir/out" | head -30
    sed 's/^/# err: /' "$dir/err" | head -30
}
# expect DESC RC [ERE...]: the last run exited RC and its stdout or stderr matches each ERE.
expect() {
    local desc=$1 want=$2 good=1 p
    shift 2
    [ "$rc" = "$want" ] || good=0
    for p in "$@"; do
        grep -qE -- "$p" "$dir/out" "$dir/err" || good=0
    done
    if [ $good = 1 ]; then
        ok "$desc"
    else
        fail "$desc (exit $rc, want $want; patterns: $*)"
        show
    fi
}
# golden NAME KIND: the last run's stdout, normalised, equals golden/NAME.json.
golden() {
    local name=$1 kind=$2
    if [ "$rc" != 0 ]; then
        fail "$name --json (exit $rc)"
        show
        return
    fi
    if ! $py "$here/normalize.py" "$kind" "$port" <"$dir/out" >"$dir/$name.json" 2>"$dir/norm"; then
        fail "$name --json: $(cat "$dir/norm")"
        show
        return
    fi
    [ -n "${DVECCTL_GOLDEN_UPDATE:-}" ] && cp "$dir/$name.json" "$here/golden/$name.json"
    if diff -u "$here/golden/$name.json" "$dir/$name.json" >"$dir/diff" 2>&1; then
        ok "$name --json matches golden/$name.json"
    else
        fail "$name --json differs from golden/$name.json"
        sed 's/^/# /' "$dir/diff" | head -60
    fi
}
# pycheck DESC PYTHON-EXPR: evaluates EXPR with `out` (the last stdout) and `d` (the data dir).
pycheck() {
    local desc=$1 expr=$2
    if $py -c "
import json, struct, sys
out = open('$dir/out').read()
d = '$dir/data'
sys.exit(0 if ($expr) else 1)
" 2>"$dir/pyerr"; then
        ok "$desc"
    else
        fail "$desc"
        sed 's/^/# py: /' "$dir/pyerr" | head -10
        show
    fi
}

[ -x "$ctl" ] || {
    echo "1..0 # SKIP $ctl not built"
    exit 0
}

# Ports 22000-22999 from the PID; the cluster takes P .. P+111 (3 coordinators at P, P+10,
# P+20 with raft and HTTP at +1, +2; nodes at P+100, P+110 with HTTP at +1). A port in use
# moves us on by 10.
port=$(($$ % 88 * 10 + 22000))
for try in 1 2 3 4 5; do
    busy=0
    for p in $port $((port + 1)) $((port + 2)) $((port + 10)) $((port + 20)) $((port + 100)) $((port + 110)); do
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && busy=1
    done
    [ $busy = 0 ] && break
    port=$(((port - 22000 + 10) % 880 + 22000))
done

mkdir -p "$dir/data"
if ! $py "$here/gen_data.py" "$dir/data" 2>"$dir/err"; then
    fail "gen_data.py writes the input files"
    show
    finish
fi
D="$dir/data"

if "$cluster" start --bin "$build" --dir "$dir/cluster" --port "$port" --coords 3 --nodes 2 \
    >"$dir/out" 2>&1; then
    ok "cluster of 3 coordinators and 2 nodes on port $port"
else
    fail "cluster start on port $port"
    sed 's/^/# /' "$dir/out"
    finish
fi
urls=$(sed -n 's/^COORD_URLS=//p' "$dir/cluster/cluster.env")
export DVEC_COORDINATORS="$urls"
unset XDG_CONFIG_HOME
export HOME="$dir/home" # no ~/.config/dvec/dvecctl.yaml unless a case writes one
mkdir -p "$HOME"

# ---- usage and help ---------------------------------------------------------------------
for c in status "collections create" "collections list" "collections info" "collections drop" \
    "points load" search get delete count bench; do
    # shellcheck disable=SC2086
    run $c --help
    expect "$c --help" 0 "^usage: dvecctl $c" "--coordinators URLS"
done
run --help
expect "dvecctl --help lists the commands" 0 "^Commands:" "points load" "bench"
run collections --help
expect "collections --help lists the subcommands" 0 "create" "drop"
run
expect "no command: usage, exit 2" 2 "usage: dvecctl COMMAND"
run frobnicate
expect "unknown command: exit 2" 2 "unknown command 'frobnicate'"
run collections frobnicate
expect "unknown subcommand: exit 2" 2 "unknown command 'collections frobnicate'"
run points
expect "points without a subcommand: exit 2" 2 "load"
run collections create
expect "collections create without NAME: exit 2" 2 "missing NAME"
run collections create docs
expect "collections create without --dim: exit 2" 2 "--dim is required"
run collections create docs --dim 4 --metric hamming
expect "a bad --metric: exit 2" 2 "--metric: 'hamming' is not"
run count docs --nope
expect "unknown option: exit 2" 2 "unknown option --nope"
run count docs --timeout abc
expect "a bad --timeout: exit 2" 2 "--timeout: expected a whole number"
run search docs --k 5
expect "search without a vector: exit 2" 2 "--vector JSON or --vector-file"
run search docs --vector "[1, 2"
expect "search with a malformed --vector: exit 2" 2 "--vector: not JSON"
run get docs twelve
expect "get with a bad id: exit 2" 2 "'twelve' is not a point id"
run count docs --filter "{oops"
expect "count with a malformed --filter: exit 2" 2 "--filter: not JSON"
run bench docs --queries "$D/q.fvecs"
expect "bench without --gt: exit 2" 2 "--queries and --gt are required"

# ---- collections ------------------------------------------------------------------------
run collections create docs --dim 4 --partitions 4 --replication 2
expect "collections create docs" 0 "^created collection docs \(dim 4, euclid\)"
run collections create docs --dim 4
expect "creating it again: exit 1 with the server's message" 1 "docs.*exists"
run collections list
expect "collections list (table)" 0 "^NAME +DIM +METRIC" "^docs +4 +euclid +0 +4 +2 +always"
run collections info nope
expect "collections info of an unknown collection: exit 1" 1 "nope.*does not exist"
run count nope
expect "count of an unknown collection: exit 1" 1 "nope.*does not exist"

# ---- loading the three formats ----------------------------------------------------------
run points load docs "$D/small.fvecs" --batch 64
expect "points load .fvecs" 0 "^loaded 200 points into docs from .*small.fvecs"
run count docs
expect "count after the .fvecs load" 0 "^200$"
run points load docs "$D/other.npy" --id-offset 1000 --parallel 3 --batch 50
expect "points load .npy with --id-offset" 0 "^loaded 200 points into docs"
run count docs
expect "count after the .npy load" 0 "^400$"
run points load pts "$D/points.jsonl" --create --dim auto --metric cosine --batch 16
expect "points load .jsonl --create --dim auto" 0 "^created collection pts \(dim 4, cosine\)" \
    "^loaded 50 points into pts"
run count pts
expect "count after the .jsonl load" 0 "^50$"

# ---- aliases ------------------------------------------------------------------------------------
run alias create docs_live docs
expect "alias create" 0 "^alias docs_live -> collection docs$"
run count docs_live
expect "count through the alias" 0 "^400$"
run alias create docs_live pts
expect "alias create of a name taken: exit 1 naming it" 1 "alias \"docs_live\" exists"
run alias create x nope
expect "alias create of an unknown collection: exit 1" 1 "collection \"nope\" not found"
run alias create pts docs
expect "alias create of a collection's name: exit 1" 1 "a collection is named \"pts\""
run alias create docs_live
expect "alias create without COLLECTION: exit 2" 2 "usage: dvecctl alias create"
run alias rename docs_live docs_prod
expect "alias rename" 0 "^alias docs_live renamed docs_prod$"
run alias list
expect "alias list (table)" 0 "^ALIAS +COLLECTION" "^docs_prod +docs$"
run alias list docs --json
expect "alias list docs --json" 0 '"alias_name": "docs_prod"' '"collection_name": "docs"'
run alias delete docs_prod
expect "alias delete" 0 "^alias docs_prod deleted$"
run alias delete docs_prod
expect "alias delete of an unknown alias: exit 1" 1 "alias \"docs_prod\" not found"
run alias list pts
expect "alias list pts: none" 0 "^ALIAS +COLLECTION$"
run count pts --filter '{"must": [{"key": "color", "match": {"value": "red"}}]}'
expect "count with a filter" 0 "^17$"
cp "$D/small.fvecs" "$D/small.bin"
run points load fmt "$D/small.bin" --format fvecs --create
expect "points load --format for a file without an extension" 0 "^loaded 200 points into fmt"
run points load docs "$D/small.fvecs"
expect "loading again (idempotent by id)" 0 "^loaded 200 points"
run count docs
expect "count unchanged after loading again" 0 "^400$"

# ---- replication: read consistency, write consistency factor, verify ------------------------
run count docs --read-consistency all
expect "count --read-consistency all (rf 2, both in sync)" 0 "^400$"
run count docs --read-consistency majority
expect "count --read-consistency majority" 0 "^400$"
run count docs --read-consistency 3
expect "--read-consistency 3 with 2 replicas: exit 1 naming it" 1 "read consistency 3" "partition"
run count docs --read-consistency most
expect "--read-consistency most: exit 2" 2 "read-consistency"
run collections verify docs
expect "collections verify docs: every replica identical" 0 "identical"
run collections create w2 --dim 4 --replication 2 --write-consistency-factor 2
expect "collections create --write-consistency-factor 2" 0 "^created collection w2"
# (the factor is a second map command: a follower coordinator may show it a heartbeat later)
wcf_ok=1
for _ in $(seq 1 50); do
    run status --json
    if python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
c = [c for c in d["collections"] if c["name"] == "w2"][0]
sys.exit(0 if c["write_consistency_factor"] == 2 else 1)' "$dir/out" 2>/dev/null; then
        wcf_ok=0
        break
    fi
    sleep 0.1
done
if [ "$wcf_ok" = 0 ]; then
    ok "status --json: w2 has write_consistency_factor 2"
else
    fail "status --json: w2 has write_consistency_factor 2"
    show
fi
run collections create w3 --dim 4 --write-consistency-factor 2
expect "write consistency factor above the replication factor: exit 1" 1 \
    "write_consistency_factor 2 is more than the replication factor 1"
run collections drop w2 --yes
expect "collections drop w2" 0 ""

# ---- get, search, delete ----------------------------------------------------------------
run get docs 0 1005
expect "get prints JSON Lines" 0 '^\{"id":0,' '^\{"id":1005,'
pycheck "get returns the file's vectors" "
[struct.pack('<4f', *json.loads(l)['vector']) for l in out.splitlines()] ==
[open(d + '/small.fvecs', 'rb').read()[4:20], open(d + '/other.npy', 'rb').read()[208:224]]"
run get docs 0 199 --json
golden get get
run get docs 3 77777
expect "get of a missing id: prints the found one, exit 1" 1 '^\{"id":3,' "1 of 2 points not found in docs: 77777"
run get pts 550e8400-e29b-41d4-a716-446655440000 --no-vector
expect "get by UUID" 0 '"id":"550e8400-e29b-41d4-a716-446655440000"' '"n":10'
run search docs --vector-file "$D/small.fvecs" --row 5 --k 3 --json
pycheck "search --vector-file --row finds the row itself first" \
    "json.loads(out)[0]['id'] == 5 and json.loads(out)[0]['score'] == 0 and len(json.loads(out)) == 3"
run search docs --vector-file "$D/q.fvecs" --row 0 --k 5 --ef 64 --json
golden search search
run search docs --vector "[0.5, 0.5, 0.5, 0.5]" --k 4 --with-vector
expect "search (table)" 0 "^RANK +ID +SCORE +VECTOR" "^ +4 +[0-9]+ +[0-9.e-]+ +\[.*\]$"
run search pts --vector "[0.5, 0.5, 0.5, 0.5]" --k 5 --with-payload --json \
    --filter '{"must": [{"key": "color", "match": {"value": "blue"}}]}'
pycheck "search with a filter returns only matching payloads" \
    "len(json.loads(out)) == 5 and all(r['payload']['color'] == 'blue' for r in json.loads(out))"
run search docs --vector "[1, 2, 3]"
expect "search with a wrong dimension: exit 1" 1 "dimension"
run bench docs --queries "$D/q.fvecs" --gt "$D/gt.ivecs" --k 10 --count 40 --clients 1,2 --json
pycheck "bench: recall@10 >= 0.95 with 1 and 2 clients" \
    "[r['clients'] for r in json.loads(out)['results']] == [1, 2] and
     all(r['recall'] >= 0.95 and r['queries'] == 40 for r in json.loads(out)['results'])"
golden bench bench
run bench docs --queries "$D/q.fvecs" --gt "$D/gt.ivecs" --k 5 --duration 0.5 --clients 2 \
    --shared-client
expect "bench (table), --duration, --shared-client" 0 "shared client" \
    "^CLIENTS +QUERIES +SECONDS +QPS +P50 MS +P99 MS +RECALL@5" "^ +2 +[0-9]+ +0\.[0-9]+ +[0-9]+"
run delete docs 0 1 99999
expect "delete: says how many existed" 0 "^deleted 2 of 3 points$"
run count docs
expect "count after delete" 0 "^398$"

# ---- status and info --------------------------------------------------------------------
run collections info docs
expect "collections info (text)" 0 "^collection docs" "points +398" "^PARTITION +EPOCH +TERM +POINTS +NODES" \
    "node-1, node-2|node-2, node-1"
run collections info docs --json
golden info info
run collections list --json
golden list list
run status
expect "status (tables)" 0 "^leader: coordinator [123] " "^COORDINATORS" \
    "^ +1 +tcp://127.0.0.1:$port +127.0.0.1:$((port + 1)) +(leader|follower)" \
    "^NODES" "^node-1 +alive" "^node-2 +alive" "^COLLECTIONS" "^docs +4 +4 +2" \
    "^replicas per node: min [0-9]+ \(node-[12]\), max [0-9]+ \(node-[12]\)"
run status --json
golden status status

# A follower down: status says so, the others answer.
run status --json
leader=$($py -c "import json; print(json.load(open('$dir/out'))['coordinator']['leader_id'])" 2>/dev/null)
victim=3
[ "$leader" = 3 ] && victim=2
vpid=$(cat "$dir/cluster/run/coord-$victim.pid")
kill -TERM "$vpid"
for _ in $(seq 100); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
run status
expect "status with coordinator $victim down: marked unreachable" 0 \
    "^ +$victim +tcp://127.0.0.1:$((port + 10 * (victim - 1))) +[0-9.:]+ +unreachable" \
    "^ +$leader +tcp://[0-9.:]+ +[0-9.:]+ +leader +yes"
run count docs
expect "commands go on with a coordinator down" 0 "^398$"
if "$cluster" start --bin "$build" --dir "$dir/cluster" --port "$port" --coords 3 --nodes 2 \
    >"$dir/out" 2>&1; then
    ok "coordinator $victim restarted"
else
    fail "coordinator $victim restarted"
    sed 's/^/# /' "$dir/out"
fi

# ---- bad input files --------------------------------------------------------------------
run points load docs "$D/d8.fvecs"
expect "a file of another dimension: exit 1, nothing sent" 1 "d8.fvecs has 8-dimensional vectors; collection docs has 4"
run points load docs "$D/bad.jsonl" --batch 1
expect "a malformed JSONL line: exit 1 naming the line" 1 "bad.jsonl: line 3: not JSON" \
    "stopped after loading 2 points"
run count docs
expect "the lines before it were loaded (ids 1 and 2; 1 had been deleted)" 0 "^399$"
run points load docs "$D/deep.jsonl" --batch 10 --parallel 1
expect "a batch that fails to send: exit 1 naming its lines" 1 \
    "loading .*deep.jsonl into docs: lines 31-40: .*payload: .*nesting deeper than 64" \
    "stopped after loading 30 points"
run count docs
expect "the batches before it were loaded" 0 "^429$"
run points load docs "$D/f64.npy"
expect "a float64 .npy: exit 1" 1 "f64.npy: dtype '<f8' is not little-endian float32"
run points load docs "$D/fortran.npy"
expect "a Fortran-order .npy: exit 1" 1 "Fortran"
run points load docs "$D/3d.npy"
expect "a 3-D .npy: exit 1" 1 "shape \(2, 2, 4\) is not 2-D"
run points load docs "$D/nomagic.npy"
expect "a .npy without the magic: exit 1" 1 "not a .npy file"
run points load docs "$D/missing.fvecs"
expect "a missing file: exit 1" 1 "missing.fvecs: No such file"
run points load nope "$D/small.fvecs"
expect "loading into an unknown collection: exit 1, hints --create" 1 "nope.*does not exist" "--create"
run points load docs "$D/points.jsonl" --id-offset 5
expect "--id-offset with JSON Lines: exit 2" 2 "--id-offset is for .fvecs and .npy"

# ---- where the coordinators come from ---------------------------------------------------
# a port in our range where nothing listens
for p in $(seq $((port + 30)) $((port + 99))); do
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || break
done
dead="tcp://127.0.0.1:$p"
start=$(date +%s%N)
run count docs --coordinators "$dead" --timeout 1000
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$rc" = 1 ] && grep -q "not connected to $dead" "$dir/err" && [ "$ms" -lt 3000 ]; then
    ok "unreachable coordinator: exit 1 in ${ms} ms with a clear message"
else
    fail "unreachable coordinator (exit $rc after $ms ms)"
    show
fi
DVEC_COORDINATORS="$dead" run count docs --coordinators "$urls"
expect "--coordinators wins over DVEC_COORDINATORS" 0 "^429$"
printf 'coordinators:\n' >"$dir/ctl.yaml"
for u in ${urls//,/ }; do printf '  - %s\n' "$u" >>"$dir/ctl.yaml"; done
(unset DVEC_COORDINATORS && run count docs --config "$dir/ctl.yaml" && echo "$rc" >"$dir/rc")
rc=$(cat "$dir/rc")
expect "coordinators from --config FILE" 0 "^429$"
mkdir -p "$HOME/.config/dvec" && cp "$dir/ctl.yaml" "$HOME/.config/dvec/dvecctl.yaml"
(unset DVEC_COORDINATORS && run count docs && echo "$rc" >"$dir/rc")
rc=$(cat "$dir/rc")
expect "coordinators from ~/.config/dvec/dvecctl.yaml" 0 "^429$"
printf 'coordinator: [x]\n' >"$dir/bad.yaml"
run count docs --config "$dir/bad.yaml"
expect "a config file with a typo: exit 2 naming the key" 2 "bad.yaml: line 1: unknown key 'coordinator'"
rm -f "$HOME/.config/dvec/dvecctl.yaml"

# ---- rebalance and node ---------------------------------------------------------------------
run count pts
pts_before=$(cat "$dir/out")
run rebalance plan
expect "rebalance plan: nothing to move on a placed cluster" 0 "placement matches the ideal one"
run rebalance status
expect "rebalance status: settings, no moves" 0 "rebalancing: running, automatic" "no moves"
run rebalance set
expect "rebalance set without a setting: exit 2" 2 "give --auto, --rate or --moves-per-node"
run rebalance set --rate fast
expect "rebalance set --rate fast: exit 2" 2 "--rate: 'fast' is not a size"
run rebalance set --auto maybe
expect "rebalance set --auto maybe: exit 2" 2 "--auto: 'maybe' is not on or off"
run rebalance set --auto off --rate 32MiB --moves-per-node 1
expect "rebalance set: manual, 32 MiB/s, 1 move per node" 0 \
    "rebalancing: running, manual, rate 33.6 MB/s per move, 1 moves per node"
run rebalance pause
expect "rebalance pause" 0 "rebalancing: paused"
run node weight node-1 3
expect "node weight" 0 "node node-1 weight 3"
run rebalance plan
expect "rebalance plan after a weight change lists moves to node-1" 0 "node-2 +node-1" \
    "apply with 'dvecctl rebalance apply'" "rebalancing is paused"
run rebalance plan --json
if [ $rc = 0 ] && $py -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["moves"] and all(m["to"] == "node-1" and m["points"] > 0 and m["bytes"] > 0 for m in d["moves"])' "$dir/out"; then
    ok "rebalance plan --json: moves to node-1 with points and bytes"
else
    fail "rebalance plan --json"; show
fi
run rebalance resume
expect "rebalance resume" 0 "rebalancing: running"
run rebalance apply --wait
expect "rebalance apply --wait: the moves run to the end" 0 "moves planned" " 0 under way, [0-9]+ done, 0 failed"
run rebalance plan
expect "after the moves the placement is ideal" 0 "placement matches the ideal one"
run rebalance status
expect "rebalance status lists the done moves with time and write pause" 0 "done +took [0-9:]+, writes paused [0-9]+ ms"
run count pts
expect "every point is still there after the moves" 0 "^$pts_before\$"
run node weight node-1 1
run rebalance apply --wait
expect "weight back, moves back" 0 " 0 under way, [0-9]+ done, 0 failed"
run node weight node-1 0
expect "node weight 0: exit 2" 2 "not a number > 0"
run node drain nope
expect "node drain of an unknown node: exit 1" 1 "node nope is not in the cluster"
run node remove node-2
expect "node remove of a node holding replicas: exit 1, says drain first" 1 "drain it first \(dvecctl node drain node-2\)"
run node add node-9 --url tcp://127.0.0.1:9
expect "node add registers a node ahead" 0 "node node-9 added \(joining, weight 1\)"
run node add node-9 --url tcp://127.0.0.1:9
expect "node add of a registered node: exit 1" 1 "node-9 is in the cluster already"
run node add node-8
expect "node add without --url: exit 2" 2 "--url is required"
run node remove node-9
expect "node remove of a node that holds nothing" 0 "node node-9 removed"
run node add node-9 --url tcp://127.0.0.1:9
run node remove node-9 --if-draining --wait 5
# node-9 never reports: joining, or dead once nodes.dead_after has passed
expect "node remove --if-draining leaves a node that is not draining" 0 "node node-9 is [a-z]+, not draining: left in the map"
run node remove node-9 --if-draining --force
expect "--if-draining with --force: exit 2" 2 "do not go together"
run node remove node-9 --wait 5
expect "--wait without --if-draining: exit 2" 2 "--wait goes with --if-draining"
run node remove node-9 --force
# Draining and removing a drained node with --if-draining needs a node that reports (the
# leader marks one that never reports dead at once under ASan): tests/multihost/k8s_pods.py
# runs it with real pods and their preStop hook.

# ---- coordinators ------------------------------------------------------------------------
run coordinators add 0 --raft 127.0.0.1:1 --url tcp://127.0.0.1:1
expect "coordinators add 0: exit 2" 2 "not a number from 1 to 1000000"
run coordinators add 5
expect "coordinators add without --raft and --url: exit 2" 2 "--raft HOST:PORT and --url URL are required"
run coordinators add 5 --raft nohost --url tcp://127.0.0.1:1
expect "coordinators add with a bad raft address: exit 1" 1 "raft address 'nohost' is not HOST:PORT"
run coordinators remove 77
expect "coordinators remove of an unknown id: exit 1" 1 "raft_remove"
run status --json
c1=$($py -c 'import json,sys; c=[c for c in json.load(open(sys.argv[1]))["coordinators"] if c["id"]==1][0]; print(c["raft_addr"], c["url"])' "$dir/out")
# shellcheck disable=SC2086
set -- $c1
run coordinators add 1 --raft "$1" --url "$2"
expect "coordinators add of a voter already there: a no-op" 0 "coordinator 1 .* is a voter of the raft group"
run status
expect "the group is unchanged" 0 "^ 1 " "^ 2 " "^ 3 "
run rebalance set --auto on --rate 64MiB --moves-per-node 2
expect "rebalance set back to the defaults" 0 "running, automatic, rate 67.1 MB/s per move, 2 moves per node"
run rebalance status --json
if [ $rc = 0 ] && $py -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["auto_rebalance"] and d["moves_per_node"] == 2 and isinstance(d["moves"], list) and "counts" in d' "$dir/out"; then
    ok "rebalance status --json"
else
    fail "rebalance status --json"; show
fi

# ---- on a terminal: progress line and confirmation --------------------------------------
if command -v script >/dev/null 2>&1; then
    script -qec "$ctl points load tty $D/small.fvecs --create --batch 20" /dev/null \
        >"$dir/out" 2>&1 </dev/null
    rc=$?
    expect "points load on a terminal draws the progress line" 0 "\] +100%  200/200 points" "ETA" \
        "loaded 200 points"
    echo n | script -qec "$ctl collections drop tty" /dev/null >"$dir/out" 2>&1
    rc=$?
    expect "collections drop on a terminal asks; 'n' keeps it" 1 \
        "Drop collection tty and its 200 points\?" "not dropped"
    run count tty
    expect "the collection is still there" 0 "^200$"
else
    ok "# SKIP script(1) not installed: no terminal checks"
fi
run collections drop tty --yes
expect "collections drop --yes" 0 "^dropped collection tty$"
run collections drop docs
expect "collections drop off a terminal does not ask" 0 "^dropped collection docs$"
run collections info docs
expect "a dropped collection is gone" 1 "docs.*does not exist"
run collections list --names
expect "collections list --names" 0 "^fmt$" "^pts$"

finish

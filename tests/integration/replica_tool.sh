#!/bin/sh
# replica_tool.sh - dvec-replica on a real replica written by dvec-bench: check, damage a
# WAL record in the middle, check names the file and offset, repair cuts there, check passes.
# Usage: replica_tool.sh DVEC_BENCH DVEC_REPLICA   (TAP output)
set -u
bench=$1
tool=$2
dir=$(mktemp -d /tmp/dvec-replica-test-XXXXXX)
trap 'rm -rf "$dir"' EXIT
r="$dir/r"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
echo "1..7"

DVEC_LOG_LEVEL=error "$bench" storage --dir "$r" --n 3000 --dim 8 --writers 2 --batch 100 \
    --sync never --ingest-only --keep >/dev/null 2>&1 && ok "dvec-bench wrote a replica" ||
    fail "dvec-bench wrote a replica"
out=$("$tool" check "$r" 2>&1) && echo "$out" | grep -q "ok: 3000 points" &&
    ok "check: 3000 points" || fail "check: 3000 points ($out)"
"$tool" info "$r" | grep -q "dimension       8" && ok "info prints the dimension" ||
    fail "info prints the dimension"

# damage a record in the middle of the first WAL segment
seg=$(ls "$r"/wal/*.wal | head -1)
python3 - "$seg" <<'PY'
import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    data = f.read()
    at = len(data) // 2
    f.seek(at)
    f.write(bytes([data[at] ^ 0x55]))
PY
out=$("$tool" check "$r" 2>&1)
rc=$?
name=$(basename "$seg")
[ $rc -eq 1 ] && echo "$out" | grep -q "$name" && echo "$out" | grep -q "offset" &&
    ok "check refuses, naming $name and the offset" || fail "check refuses ($rc: $out)"
echo "$out" | grep -q "dvec-replica repair" && ok "check tells the repair command" ||
    fail "check tells the repair command"
out=$("$tool" repair "$r" 2>&1) && echo "$out" | grep -q "cut" && ok "repair cuts the WAL" ||
    fail "repair cuts the WAL ($out)"
out=$("$tool" check "$r" 2>&1) && ok "check passes after repair ($out)" ||
    fail "check passes after repair ($out)"

#!/usr/bin/env bash
# rest_js.sh - Qdrant's official JavaScript client (@qdrant/js-client-rest from npm), unchanged,
# against a real local cluster (deploy/local/cluster: 3 coordinators, 2 nodes): proves that
# existing Qdrant clients work against dvec. Skipped (TAP "1..0 # SKIP") when node or npm is
# missing or npm's registry cannot be reached. The package is installed once into
# BUILD_ROOT/tests/js-client and reused.
#
#   rest_js.sh BUILD_ROOT SOURCE_ROOT          (TAP output; ports 23000-23999 from the PID)
set -u
build=$1
src=$2
pkg="@qdrant/js-client-rest@1.19.0"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "1..0 # SKIP node or npm not found (Debian: apt-get install nodejs npm)"
    exit 0
fi
js="$build/tests/js-client"
mkdir -p "$js"
if [ ! -f "$js/node_modules/@qdrant/js-client-rest/package.json" ]; then
    if ! (cd "$js" && timeout 300 npm install --no-audit --no-fund --loglevel=error "$pkg" \
        >"$js/npm.log" 2>&1); then
        echo "1..0 # SKIP npm install $pkg failed (registry unreachable?): $(tail -1 "$js/npm.log")"
        exit 0
    fi
fi
cp "$src/tests/integration/rest_client.mjs" "$js/"

port=$((23000 + ($$ % 88) * 10))
dir=$(mktemp -d /tmp/dvec-rest-js.XXXXXX)
bad=0
cleanup() {
    "$src/deploy/local/cluster" stop --dir "$dir" >/dev/null 2>&1
    if grep -l -E 'Sanitizer|runtime error:' "$dir"/log/*.log >/dev/null 2>&1; then
        echo "# sanitizer reports in the cluster's logs:"
        grep -h -A20 -E 'Sanitizer|runtime error:' "$dir"/log/*.log | head -60 | sed 's/^/# /'
        bad=1
    fi
    if [ $bad -eq 0 ]; then rm -rf "$dir"; else echo "# logs kept in $dir/log"; fi
    exit $bad
}
trap cleanup EXIT
if ! "$src/deploy/local/cluster" start --bin "$build" --dir "$dir" --port "$port" --coords 3 \
    --nodes 2 >"$dir/start.log" 2>&1; then
    echo "1..1"
    echo "not ok 1 - cluster starts (deploy/local/cluster)"
    sed 's/^/# /' "$dir/start.log"
    bad=1
    exit 1
fi
echo "# $(node --version), $pkg, cluster on port $port"
# TAP from the script itself; a crash or a failed case makes the status non-zero.
(cd "$js" && timeout 300 node rest_client.mjs "http://127.0.0.1:$((port + 2))" \
    "http://127.0.0.1:$((port + 12))") || bad=1

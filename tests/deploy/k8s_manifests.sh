#!/usr/bin/env bash
# k8s_manifests.sh - deploy/k8s rendered with `kubectl kustomize` (overlays dev and prod, prod
# with the servicemonitor component, prod with another image) and validated offline: every
# object against the Kubernetes (and prometheus-operator) schemas, unknown fields refused, and
# what dvec's container contract needs (k8s_manifests.mjs says what). Broken copies prove
# each check can fail.
#
# The schemas come from npm (tests/deploy/package.json and package-lock.json: versions and
# hashes pinned), installed once with `npm ci` into BUILD_ROOT/tests/deploy-k8s and reused;
# validating uses no network. Skipped (TAP "1..0 # SKIP") without kubectl, node or npm, or when
# npm's registry cannot be reached for the first install.
#
#   k8s_manifests.sh BUILD_ROOT SOURCE_ROOT          (TAP output)
set -u
build=$1
src=$2

if ! command -v kubectl >/dev/null 2>&1; then
    echo "1..0 # SKIP kubectl not found"
    exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "1..0 # SKIP node or npm not found (Debian: apt-get install nodejs npm)"
    exit 0
fi
dir="$build/tests/deploy-k8s"
mkdir -p "$dir"
# Install again only when the lock file changed.
if ! cmp -s "$src/tests/deploy/package-lock.json" "$dir/package-lock.json" ||
    [ ! -f "$dir/node_modules/.package-lock.json" ]; then
    cp "$src/tests/deploy/package.json" "$src/tests/deploy/package-lock.json" "$dir/"
    if ! (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
        >"$dir/npm.log" 2>&1); then
        rm -f "$dir/package-lock.json"
        why=$(grep -v 'complete log' "$dir/npm.log" | head -4 | sed 's/^npm error //' | tr '\n' ' ')
        echo "1..0 # SKIP npm ci failed (registry unreachable?): ${why:-see $dir/npm.log}"
        exit 0
    fi
fi
# Run from beside node_modules so that its imports resolve there.
cp "$src/tests/deploy/k8s_manifests.mjs" "$dir/"
echo "# $(node --version), $(kubectl version --client 2>/dev/null | head -1)"
cd "$dir" && exec node k8s_manifests.mjs "$src"

#!/bin/sh
# run.sh GEN TARGET [ARGS...]: writes the seed corpus with GEN into a fresh temporary
# directory, then runs TARGET ARGS... CORPUS SEEDS (CORPUS starts empty: libFuzzer adds the
# inputs it finds there). An -artifact_prefix=DIR/ argument gets its directory created.
# Exits with TARGET's status; the temporary directory is removed.
set -eu
gen=$1
target=$2
shift 2
for a in "$@"; do
    case $a in -artifact_prefix=*/) mkdir -p "${a#-artifact_prefix=}" ;; esac
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dvec-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/corpus"
"$gen" "$tmp/seeds"
"$target" "$@" "$tmp/corpus" "$tmp/seeds"

#!/bin/sh
# systemd_units.sh - the bare-machine install files of deploy/systemd (docs/deployment.md):
# both units pass `systemd-analyze verify` with no message and keep a `systemd-analyze
# security` exposure below 2.0, the sysusers file creates user dvec, the units and the
# example configs agree (paths, user, stop timeout), and the example configs of db1, db2 and
# db3 are accepted by the programs' own parsers. No process is started, nothing is installed.
#
# Usage: systemd_units.sh DVEC_COORD DVEC_SHARD SOURCE_ROOT   (TAP output)
#
# There is no --check flag (--help prints the schema and exits before reading the file), so
# a config is checked by running the program with it and `--data_dir` pointing under a
# regular file: the file and every flag are parsed and checked (and dvec-coord's group and
# advertise rules too), then creating the data dir fails, before anything is opened, bound
# or locked. Accepted means: exit status 2 and that data_dir error as the only complaint.
set -u
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; } # meson gives build-relative paths
coord=$(abs "$1")
shard=$(abs "$2")
src=$(cd "$3" && pwd)
sd="$src/deploy/systemd"
tmp=$(mktemp -d /tmp/dvec-systemd-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag() { sed 's/^/# /'; }
echo "1..18"

analyze=$(command -v systemd-analyze || true)

# The units as installed, but running the built programs (verify checks that ExecStart is an
# executable file).
cp "$sd/dvec-coord.service" "$sd/dvec-shard.service" "$tmp/"
sed -i "s#^ExecStart=/usr/local/bin/dvec-coord #ExecStart=$coord #" "$tmp/dvec-coord.service"
sed -i "s#^ExecStart=/usr/local/bin/dvec-shard #ExecStart=$shard #" "$tmp/dvec-shard.service"

for u in dvec-coord dvec-shard; do
    if [ -z "$analyze" ]; then
        skip "$u.service: systemd-analyze verify" "systemd-analyze not found"
        skip "$u.service: systemd-analyze security exposure below 2.0" "systemd-analyze not found"
        continue
    fi
    # verify exits 0 on unknown keys and bad values (it only warns): any message fails.
    out=$("$analyze" verify "$tmp/$u.service" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && [ -z "$out" ]; then
        ok "$u.service: systemd-analyze verify"
    else
        fail "$u.service: systemd-analyze verify (status $rc)"
        echo "$out" | diag
    fi
    out=$("$analyze" security --offline=yes "$tmp/$u.service" 2>&1)
    score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ -z "$score" ]; then
        skip "$u.service: systemd-analyze security exposure below 2.0" \
            "systemd-analyze security --offline=yes gave no score"
        echo "$out" | tail -3 | diag
    elif awk -v s="$score" 'BEGIN { exit !(s < 2.0) }'; then
        ok "$u.service: systemd-analyze security exposure $score (below 2.0)"
    else
        fail "$u.service: systemd-analyze security exposure $score (below 2.0)"
        echo "$out" | grep '✗' | diag
    fi
done

# The sysusers file creates user and group dvec (dry run into an empty root).
if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$tmp/root/etc"
    if out=$(systemd-sysusers --root="$tmp/root" --dry-run "$sd/dvec.conf" 2>&1) &&
        echo "$out" | grep -q "Creating group 'dvec'" &&
        echo "$out" | grep -q "Creating user 'dvec'"; then
        ok "dvec.conf: systemd-sysusers creates user and group dvec"
    else
        fail "dvec.conf: systemd-sysusers creates user and group dvec"
        echo "$out" | diag
    fi
else
    skip "dvec.conf: systemd-sysusers creates user and group dvec" "systemd-sysusers not found"
fi

# The units and the configs agree: user, binaries where meson installs them (prefix
# /usr/local), the config paths, data_dir under StateDirectory=dvec, the stop timeout above
# shutdown_timeout.
key() { sed -n "s/^$2=//p" "$1"; }
yaml() { sed -n "s/^$2: *\([^ #]*\).*/\1/p" "$1"; }
secs() { case $1 in *s) echo "${1%s}" ;; *m) echo $((${1%m} * 60)) ;; *) echo "$1" ;; esac; }
for p in coord shard; do
    u="$sd/dvec-$p.service" y="$sd/$p.yaml"
    if [ "$(key "$u" User)" = dvec ] && [ "$(key "$u" Group)" = dvec ] &&
        grep -q '^u *dvec ' "$sd/dvec.conf" &&
        [ "$(key "$u" ExecStart)" = "/usr/local/bin/dvec-$p --config /etc/dvec/$p.yaml" ] &&
        [ "$(key "$u" StateDirectory)" = dvec ] && [ "$(key "$u" ConfigurationDirectory)" = dvec ] &&
        [ "$(yaml "$y" data_dir)" = "/var/lib/dvec/$p" ]; then
        ok "dvec-$p.service and $p.yaml: user dvec, /usr/local/bin, /etc/dvec, /var/lib/dvec/$p"
    else
        fail "dvec-$p.service and $p.yaml: user dvec, /usr/local/bin, /etc/dvec, /var/lib/dvec/$p"
        grep -E '^(User|Group|ExecStart|StateDirectory|ConfigurationDirectory)=' "$u" | diag
        grep '^data_dir' "$y" | diag
    fi
    stop=$(secs "$(key "$u" TimeoutStopSec)")
    drain=$(secs "$(yaml "$y" shutdown_timeout)")
    if [ -n "$stop" ] && [ -n "$drain" ] && [ "$stop" -gt "$drain" ]; then
        ok "dvec-$p.service: TimeoutStopSec ${stop}s > shutdown_timeout ${drain}s"
    else
        fail "dvec-$p.service: TimeoutStopSec '$stop' > shutdown_timeout '$drain'"
    fi
done

# check PROGRAM NAME CONFIG: the program accepts CONFIG (see the top of this file).
: >"$tmp/not-a-dir"
check() {
    out=$("$1" --config "$3" --data_dir "$tmp/not-a-dir/x" 2>&1)
    rc=$?
    want="$(basename "$1"): data_dir $tmp/not-a-dir/x: Not a directory"
    if [ $rc -eq 2 ] && [ "$(echo "$out" | head -1)" = "$want" ]; then
        ok "$2 accepted by $(basename "$1")"
    else
        fail "$2 accepted by $(basename "$1") (status $rc)"
        echo "$out" | diag
    fi
}
# The db2 and db3 variants: what docs/deployment.md says to change.
for h in 2 3; do
    sed -e "s/^id: 1 /id: $h /" "$sd/coord.yaml" >"$tmp/coord-db$h.yaml"
    sed -e "s#^advertise: tcp://db1\.#advertise: tcp://db$h.#" "$sd/shard.yaml" >"$tmp/shard-db$h.yaml"
    grep -q "^id: $h " "$tmp/coord-db$h.yaml" || echo "# coord.yaml: no 'id: 1 ' line to change"
    grep -q "^advertise: tcp://db$h\." "$tmp/shard-db$h.yaml" ||
        echo "# shard.yaml: no 'advertise: tcp://db1.' line to change"
done
check "$coord" "deploy/systemd/coord.yaml (db1)" "$sd/coord.yaml"
check "$coord" "coord.yaml for db2 (id 2)" "$tmp/coord-db2.yaml"
check "$coord" "coord.yaml for db3 (id 3)" "$tmp/coord-db3.yaml"
# A 5th coordinator joining (docs/deployment.md, "Adding a machine"): an id not in group.
{
    sed -e "s/^id: 1 /id: 4 /" "$sd/coord.yaml"
    echo "advertise: tcp://db4.example.internal:7300"
    printf 'raft:\n  advertise: db4.example.internal:7310\n'
} >"$tmp/coord-db4.yaml"
check "$coord" "coord.yaml for db4 (id 4, joins the group)" "$tmp/coord-db4.yaml"
check "$shard" "deploy/systemd/shard.yaml (db1)" "$sd/shard.yaml"
check "$shard" "shard.yaml for db2 and db3" "$tmp/shard-db2.yaml"

# The check would see a bad file: a coordinator told to advertise another URL than its group
# entry is refused, and so is a misspelt key (naming the file).
out=$("$coord" --config "$sd/coord.yaml" --advertise tcp://db2.example.internal:7300 \
    --data_dir "$tmp/not-a-dir/x" 2>&1)
if [ $? -eq 2 ] && echo "$out" | grep -q "advertise .* differs from coordinator 1's URL"; then
    ok "coord.yaml with an advertise unlike its group entry is refused"
else
    fail "coord.yaml with an advertise unlike its group entry is refused"
    echo "$out" | diag
fi
grep -v "^advertise:" "$sd/shard.yaml" >"$tmp/shard-noadv.yaml"
out=$("$shard" --config "$tmp/shard-noadv.yaml" --data_dir "$tmp/not-a-dir/x" 2>&1)
if [ $? -eq 2 ] && echo "$out" | grep -q "listens on every interface, which cannot be told to others: set advertise"; then
    ok "shard.yaml without advertise (listen 0.0.0.0) is refused, naming the key to set"
else
    fail "shard.yaml without advertise (listen 0.0.0.0) is refused, naming the key to set"
    echo "$out" | diag
fi
{ cat "$sd/shard.yaml"; echo "chekpoint: {interval: 5m}"; } >"$tmp/bad.yaml"
out=$("$shard" --config "$tmp/bad.yaml" --data_dir "$tmp/not-a-dir/x" 2>&1)
if [ $? -eq 2 ] && echo "$out" | grep -q "bad.yaml: line .*unknown key 'chekpoint'"; then
    ok "a misspelt key is refused (the check reads the file)"
else
    fail "a misspelt key is refused (the check reads the file)"
    echo "$out" | diag
fi

#!/usr/bin/env bash
# install_test.sh BUILD-ROOT SOURCE-ROOT SANITIZE - libdvec as a user gets it: `meson install
# --destdir` into a temp dir, then client/examples/quickstart.c compiled against the installed
# header and dvec.pc (pkg-config with PKG_CONFIG_SYSROOT_DIR), linked with the shared library
# and with the static one, and run (with no cluster: it must fail cleanly, naming the
# coordinator). Also: the shared library exports only dvec_* symbols and has its soname; the
# header compiles alone as C99 and as C++. TAP output. SANITIZE is meson's b_sanitize ("none",
# "address,undefined", ...): a sanitized libdvec needs the same flags in the program.
set -uo pipefail
build=$1 src=$2 san=${3:-none}
tmp=$(mktemp -d /tmp/dvec-sdk-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -f "$tmp/out" ] && sed 's/^/# /' "$tmp/out" | tail -30; }
check() { local what=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$what"; else not_ok "$what"; fi; }

echo "1..9"
dest="$tmp/dest"
check "meson install --destdir" meson install -C "$build" --no-rebuild --destdir "$dest"

pc=$(find "$dest" -name dvec.pc | head -1)
hdr=$(find "$dest" -name dvec.h -path '*/include/*' | head -1)
so=$(find "$dest" -name 'libdvec.so.*.*.*' | head -1)
ar=$(find "$dest" -name libdvec.a | head -1)
if [ -n "$pc" ] && [ -n "$hdr" ] && [ -n "$so" ] && [ -n "$ar" ]; then
    ok "installed: ${pc#"$dest"}, ${hdr#"$dest"}, ${so#"$dest"}, ${ar#"$dest"}"
else
    : >"$tmp/out"
    not_ok "installed dvec.pc, dvec.h, libdvec.so and libdvec.a (got '$pc' '$hdr' '$so' '$ar')"
    echo "# cannot go on without them"
    exit 1
fi

export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
cflags=() ldflags=()
if [ "$san" != none ] && [ -n "$san" ]; then
    cflags=(-fsanitize="$san")
    ldflags=(-fsanitize="$san")
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"

# Only the API is exported, under its soname.
exported=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^dvec_' | grep -v '^_' || true)
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
if [ -z "$exported" ] && [ "$soname" = libdvec.so.0 ]; then
    ok "libdvec.so exports only dvec_* ($(nm -D --defined-only "$so" | grep -c ' dvec_') functions), soname $soname"
else
    echo "soname '$soname'; other symbols: $exported" >"$tmp/out"
    not_ok "libdvec.so exports only dvec_* under soname libdvec.so.0"
fi

# The header alone, as C99 with -pedantic and as C++.
printf '#include <dvec.h>\nint main(void) { dvec_id id = dvec_id_num(1); return (int)id.num - 1; }\n' >"$tmp/h.c"
# shellcheck disable=SC2046
check "dvec.h compiles alone (C99, -Wall -Wextra -pedantic -Werror)" \
    cc -std=c99 -Wall -Wextra -pedantic -Werror $(pkg-config --cflags dvec) -c "$tmp/h.c" -o "$tmp/h.o"
cp "$tmp/h.c" "$tmp/h.cc"
# shellcheck disable=SC2046
check "dvec.h compiles as C++" c++ -Wall -Werror $(pkg-config --cflags dvec) -c "$tmp/h.cc" -o "$tmp/hh.o"

# The example against the shared library, found through pkg-config.
# shellcheck disable=SC2046
check "quickstart.c builds with \$(pkg-config --cflags --libs dvec)" \
    cc -std=c11 -Wall -Wextra -Werror "${cflags[@]}" "$src/client/examples/quickstart.c" \
    $(pkg-config --cflags --libs dvec) "${ldflags[@]}" -o "$tmp/quickstart"

# It runs (the installed library, not the build tree's) and fails cleanly without a cluster.
port=$((21000 + RANDOM % 1000))
libdir=$(dirname "$so")
LD_LIBRARY_PATH="$libdir" DVEC_COORDINATORS="tcp://127.0.0.1:$port" "$tmp/quickstart" >"$tmp/out" 2>&1
rc=$?
lib_used=$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/quickstart" | grep libdvec || true)
if [ $rc -eq 1 ] && grep -q "not connected to tcp://127.0.0.1:$port" "$tmp/out" &&
    echo "$lib_used" | grep -q "$libdir"; then
    ok "quickstart runs on the installed libdvec.so and fails cleanly without a cluster: $(head -1 "$tmp/out")"
else
    echo "exit $rc; ldd: $lib_used" >>"$tmp/out"
    not_ok "quickstart runs on the installed libdvec.so and fails cleanly without a cluster"
fi

# And statically: libdvec.a and what pkg-config --static lists besides -ldvec.
# shellcheck disable=SC2046
check "quickstart.c links with libdvec.a (pkg-config --static)" \
    cc -std=c11 -Wall -Wextra -Werror "${cflags[@]}" "$src/client/examples/quickstart.c" \
    $(pkg-config --cflags dvec) "$ar" $(pkg-config --static --libs dvec | sed 's/-ldvec\b//') \
    "${ldflags[@]}" -o "$tmp/quickstart-static"
if [ -x "$tmp/quickstart-static" ] && ! ldd "$tmp/quickstart-static" | grep -q libdvec; then
    DVEC_COORDINATORS="tcp://127.0.0.1:$port" "$tmp/quickstart-static" >"$tmp/out" 2>&1
    if [ $? -eq 1 ] && grep -q "not connected" "$tmp/out"; then
        ok "the static quickstart runs without libdvec.so"
    else
        not_ok "the static quickstart runs without libdvec.so"
    fi
else
    : >"$tmp/out"
    not_ok "the static quickstart runs without libdvec.so"
fi
[ $failed -eq 0 ]

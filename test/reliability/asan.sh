#!/usr/bin/env bash
# test/reliability/asan.sh — `make reliability`: elfsofa's C under the
# UndefinedBehaviorSanitizer (signed overflow, bad shifts, out-of-bounds array
# indexes, null dereferences, invalid enum/bool loads, ...).
#
# Builds a copy of the extension with -fsanitize=undefined into a private
# PostgreSQL tree of its own, starts a server with it (publisher background
# worker included), and runs the regression suite, the isolation specs, the
# hostile-input suite (malformed input through every C entry point) and a short
# soak.  Fails on any failing test and on any sanitizer report.  Port ES_PORT+3
# (the crash suite's), so it must not run while `make test` runs here.
#
# Why not AddressSanitizer too: it only works with libasan preloaded into the
# server (its longjmp interceptor must see PostgreSQL's ereport unwinding, or
# every later stack frame trips over stale poison: false reports), and on
# Debian 12 (glibc 2.36, gcc 12) every process with libasan preloaded hangs on
# glibc's internal rwlocks (bindtextdomain at postmaster start, freelocale at
# exit).  Set ES_SANITIZE="address,undefined" to try it elsewhere.
set -u
source "$(dirname "$0")/../lib.sh"
ES_PORT=${ES_ASAN_PORT:-$(( ${ES_PORT:-55432} + 3 ))}
ES_TMP=${ES_ASAN_TMP:-/tmp/elfsofa-asan-$ES_PORT}
export ES_PORT ES_TMP
t0=$(date +%s)
FAIL=0
say() { printf '%s\n' "$*"; }
check() {   # check <status> <what>
    if [ "$1" -eq 0 ]; then say "ok - $2"; else say "not ok - $2"; FAIL=$((FAIL + 1)); fi
}

es_install_packages
if [ -d "$ES_TMP" ]; then
    ES_BINDIR=$ES_TMP/pg/usr/lib/postgresql/$ES_PGVER/bin
    [ -x "$ES_BINDIR/pg_ctl" ] && es_stop_server
    rm -rf "$ES_TMP"
fi
mkdir -p "$ES_TMP/build" "$ES_TMP/asan"
chmod 777 "$ES_TMP/asan"

# A private PostgreSQL tree, as make test makes one.
tree=$ES_TMP/pg
mkdir -p "$tree/usr/lib/postgresql" "$tree/usr/share/postgresql" "$tree/usr/include"
cp -a /usr/lib/postgresql/$ES_PGVER "$tree/usr/lib/postgresql/"
cp -a /usr/share/postgresql/$ES_PGVER "$tree/usr/share/postgresql/"
cp -a /usr/include/postgresql "$tree/usr/include/"
ES_BINDIR=$tree/usr/lib/postgresql/$ES_PGVER/bin
ES_PG_CONFIG=$ES_BINDIR/pg_config
ES_PGXS_BIN=$("$ES_PG_CONFIG" --pkglibdir)/pgxs/src/test
export ES_BINDIR ES_PG_CONFIG ES_PGXS_BIN

# Build a copy of the sources so the work tree's own objects stay untouched.
(cd "$ES_ROOT" && tar cf - --exclude='*.o' --exclude='*.bc' --exclude='*.so' --exclude=results \
    Makefile elfsofa.control src sql expected test) | tar xf - -C "$ES_TMP/build"
SANITIZE=${ES_SANITIZE:-undefined}
SAN="-fsanitize=$SANITIZE -fno-sanitize=alignment -fno-omit-frame-pointer -g -O1"
make -C "$ES_TMP/build" -s PG_CONFIG="$ES_PG_CONFIG" \
    PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare $SAN" \
    PG_LDFLAGS="-fsanitize=$SANITIZE" install >"$ES_TMP/build.log" 2>&1
check $? "elfsofa built with $SAN"
nm -D "$("$ES_PG_CONFIG" --pkglibdir)/elfsofa.so" | grep -E "__ubsan_handle|__asan_report" >/dev/null
check $? "the installed elfsofa.so is instrumented"

export ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0:log_path=$ES_TMP/asan/asan:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$ES_TMP/asan/ubsan"
es_start_server <<'CONF'
shared_buffers = '64MB'
max_connections = 60
CONF
trap es_stop_server EXIT
grep -qE "libubsan|libasan" "/proc/$(head -1 "$ES_TMP/data/postmaster.pid")/maps"
check $? "the server runs with the sanitizer runtime loaded"

cd "$ES_TMP/build"
# (commit mode, as make test runs them: their expected output shows the
# writers' own NOTIFYs; the publisher workers still run, and the scripts below
# and every DROP/CREATE EXTENSION of the suite exercise them)
PGOPTIONS="${PGOPTIONS:-} -c elfsofa.publisher=off" \
    timeout 900 make -s installcheck PG_CONFIG="$ES_PG_CONFIG" >"$ES_TMP/log/regress.out" 2>&1
rc=$?
grep -E '\.\.\. (ok|FAILED|failed)|^(not )?ok [0-9]+' "$ES_TMP/log/regress.out" | sed 's/^/# /'
check $rc "pg_regress under the sanitizers"
[ $rc -ne 0 ] && [ -f regression.diffs ] && { head -c 5000 regression.diffs; echo; }

specs=$(cd test/isolation/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
if [ -n "$specs" ]; then
    PGOPTIONS="${PGOPTIONS:-} -c elfsofa.publisher=off" \
        timeout 600 "$ES_PGXS_BIN/isolation/pg_isolation_regress" --bindir="$ES_BINDIR" --inputdir=test/isolation \
        --outputdir="$ES_TMP/iso" --dbname=isolation_regression --load-extension=elfsofa $specs >"$ES_TMP/log/iso.out" 2>&1
    check $? "isolation specs under the sanitizers ($(echo $specs | wc -w) specs)"
fi

for s in 32_events_launcher 81_reliability_hostile 84_reliability_soak; do
    REL_SMITH_SECONDS=20 REL_SOAK_SECONDS=15 REL_PER_FUNCTION=150 timeout 600 bash "test/scripts/$s.sh" >"$ES_TMP/log/$s.out" 2>&1
    rc=$?
    grep -E '^not ok' "$ES_TMP/log/$s.out" | head -10
    check $rc "$s under the sanitizers ($(grep -c '^ok' "$ES_TMP/log/$s.out") ok, $(grep -c '^not ok' "$ES_TMP/log/$s.out") not ok)"
done

es_stop_server
trap - EXIT
# Reports: ASan/UBSan files, and UBSan lines that went to the server log.
reports=$(cat "$ES_TMP"/asan/* 2>/dev/null; grep -h 'runtime error:\|AddressSanitizer' "$ES_TMP"/log/server.log 2>/dev/null)
n=$(grep -cE 'ERROR: AddressSanitizer|runtime error:' <<<"$reports")
check $([ "$n" -eq 0 ]; echo $?) "no AddressSanitizer or UndefinedBehaviorSanitizer report ($n)"
[ "$n" -gt 0 ] && grep -E -A25 'ERROR: AddressSanitizer|runtime error:' <<<"$reports" | head -80
crashes=$(grep -cE 'terminated by signal|was terminated by' "$ES_TMP"/log/server.log)
check $([ "$crashes" -eq 0 ]; echo $?) "no backend crashed ($crashes)"

say "# sanitizer run took $(( $(date +%s) - t0 )) s"
if [ "$FAIL" -eq 0 ]; then say "reliability (sanitizers): all passed"; rm -rf "$ES_TMP/pg"; exit 0; fi
say "reliability (sanitizers): $FAIL failed (logs in $ES_TMP)"
exit 1

#!/usr/bin/env bash
# test/run.sh — `make test`: set up, start a throwaway server, run every suite,
# stop the server, and print one closing line "N passed, N failed".
#
# Suites:
#   pg_regress   sql/*.sql vs expected/*.out               (one count per file)
#   isolation    test/isolation/specs/*.spec               (one count per spec)
#   pgTAP        test/pgtap/*.sql with pg_prove            (one count per assertion)
#   scripts      test/scripts/*.sh printing TAP lines      (one count per assertion)
#   calendar     test/calendar.sh: the suites again with the clock at a year's
#                turn, a month's turn and a leap day      (one count per date)
# Choose suites with ES_SUITES="regress isolation pgtap scripts calendar" (default: all);
# ES_SCRIPTS="30_events* 42_*" runs only the scripts matching those patterns.
set -u
source "$(dirname "$0")/lib.sh"

ES_PORT=${ES_PORT:-55432}
ES_TMP=${ES_TMP:-/tmp/elfsofa-test-$ES_PORT}
ES_PRIVATE_TREE=${ES_PRIVATE_TREE:-1}
ES_SUITES=${ES_SUITES:-regress isolation pgtap scripts calendar}
export ES_PORT ES_TMP

PASSED=0
FAILED=0
REPORT=$(mktemp)

count() {   # count <suite> <passed> <failed>
    PASSED=$((PASSED + $2)); FAILED=$((FAILED + $3))
    printf '%-10s %4d passed, %d failed\n' "$1" "$2" "$3" >>"$REPORT"
}

finish() {
    es_stop_server
    echo
    echo "== summary"
    cat "$REPORT"
    rm -f "$REPORT"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
}

es_install_packages
es_fresh_tmp
es_build_install
trap finish EXIT
trap 'exit 130' INT TERM
es_start_server </dev/null
cd "$ES_ROOT"

# Counts TAP lines ("ok N" / "not ok N") in a file: sets TAP_OK and TAP_NOT_OK.
tap_count() {
    TAP_OK=$(grep -cE '^[[:space:]]*ok [0-9]+' "$1")
    TAP_NOT_OK=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$1")
}

# pg_regress / pg_isolation_regress print "name ... ok" (15) or "ok N - name" (16+).
regress_count() {
    R_OK=$(grep -cE '(\.\.\. ok|^ok [0-9]+)' "$1")
    R_FAIL=$(grep -cE '(\.\.\. FAILED|\.\.\. failed|^not ok [0-9]+)' "$1")
}

for suite in $ES_SUITES; do
    log=$ES_TMP/log/$suite.out
    case $suite in
    regress)
        es_say "pg_regress"
        # (regress and isolation run in commit mode: their expected output
        # shows the writers' own NOTIFYs; the scripts test the publishers)
        PGOPTIONS="${PGOPTIONS:-} -c elfsofa.publisher=off" \
            timeout 900 make -s installcheck PG_CONFIG="$ES_PG_CONFIG" >"$log" 2>&1
        rc=$?
        cat "$log"
        regress_count "$log"
        if [ $rc -ne 0 ] && [ "$R_FAIL" -eq 0 ]; then R_FAIL=1; fi
        [ -f regression.diffs ] && head -c 20000 regression.diffs
        count regress "$R_OK" "$R_FAIL"
        ;;
    isolation)
        es_say "isolation tester"
        specs=$(cd test/isolation/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
        if [ -n "$specs" ]; then
            rm -rf test/isolation/output_iso
            PGOPTIONS="${PGOPTIONS:-} -c elfsofa.publisher=off" \
                timeout 900 "$ES_PGXS_BIN/isolation/pg_isolation_regress" \
                --bindir="$ES_BINDIR" --inputdir=test/isolation --outputdir=test/isolation/output_iso \
                --dbname=isolation_regression --load-extension=elfsofa $specs >"$log" 2>&1
            rc=$?
            cat "$log"
            regress_count "$log"
            if [ $rc -ne 0 ] && [ "$R_FAIL" -eq 0 ]; then R_FAIL=1; fi
            [ -f test/isolation/output_iso/regression.diffs ] && head -c 20000 test/isolation/output_iso/regression.diffs
            count isolation "$R_OK" "$R_FAIL"
        fi
        ;;
    pgtap)
        es_say "pgTAP"
        files=$(ls test/pgtap/*.sql 2>/dev/null | sort)
        if [ -n "$files" ]; then
            psql -q -X -c 'DROP DATABASE IF EXISTS elfsofa_tap' -c 'CREATE DATABASE elfsofa_tap' >/dev/null
            psql -q -X -d elfsofa_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION elfsofa' >/dev/null
            timeout 900 pg_prove -v -d elfsofa_tap $files >"$log" 2>&1
            rc=$?
            grep -vE '^[[:space:]]*ok [0-9]+' "$log"
            tap_count "$log"
            if [ $rc -ne 0 ] && [ "$TAP_NOT_OK" -eq 0 ]; then TAP_NOT_OK=1; fi
            count pgtap "$TAP_OK" "$TAP_NOT_OK"
        fi
        ;;
    scripts)
        ok=0; bad=0
        for s in $(set -f; for pat in ${ES_SCRIPTS:-*}; do set +f; ls test/scripts/$pat.sh 2>/dev/null; set -f; done | sort -u); do
            name=$(basename "$s" .sh)
            es_say "script $name"
            timeout 1200 bash "$s" >"$ES_TMP/log/script-$name.out" 2>&1
            rc=$?
            tap_count "$ES_TMP/log/script-$name.out"
            grep -E '^[[:space:]]*(not ok|#)' "$ES_TMP/log/script-$name.out" | head -40
            if [ $rc -ne 0 ] && [ "$TAP_NOT_OK" -eq 0 ]; then
                TAP_NOT_OK=1
                echo "not ok - $name exited with status $rc"; tail -20 "$ES_TMP/log/script-$name.out"
            fi
            ok=$((ok + TAP_OK)); bad=$((bad + TAP_NOT_OK))
        done
        count scripts "$ok" "$bad"
        ;;
    calendar)
        es_say "calendar (the suites under a moved clock, servers of their own)"
        timeout 1500 bash test/calendar.sh >"$log" 2>&1
        rc=$?
        cat "$log"
        tap_count "$log"
        if [ $rc -ne 0 ] && [ "$TAP_NOT_OK" -eq 0 ]; then TAP_NOT_OK=1; fi
        count calendar "$TAP_OK" "$TAP_NOT_OK"
        ;;
    *) es_die "unknown suite $suite" ;;
    esac
done

#!/usr/bin/env bash
# test/calendar.sh — the suites with the clock at the dates that break calendars.
#
# Each date runs test/run.sh on a server of its own (own port, own directory)
# under libfaketime, clock moved by a fixed offset for the server and every
# client alike, so the clock then runs on at its normal rate:
#   2026-12-31 23:57  a year turns during the run   (every suite)
#   2027-01-31 23:57  a month turns during the run  (regress, isolation, pgTAP)
#   2028-02-29 12:00  leap day                      (regress, isolation, pgTAP)
#   2027-01-01 00:05  the shop's new year, still 2026 in UTC and in
#                     pg_regress's PST8PDT sessions (regress)
# Times are the shop's (Asia/Bangkok, the test server's time zone).
# test/calendar_waits.c is preloaded ahead of libfaketime (see there why).
# Prints one TAP line per date with that run's counts; exits non-zero when a
# date's run failed.  ES_CALENDAR_DATES="date|suites;..." overrides the list.
set -u
source "$(dirname "$0")/lib.sh"

ES_CAL_PORT=${ES_CAL_PORT:-55470}
DATES=${ES_CALENDAR_DATES:-"2026-12-31 23:57:00|regress isolation pgtap scripts;2027-01-31 23:57:00|regress isolation pgtap;2028-02-29 12:00:00|regress isolation pgtap;2027-01-01 00:05:00|regress"}
es_faketime_prepare

n=0; failed=0
IFS=';' read -ra entries <<<"$DATES"
for entry in "${entries[@]}"; do
    when=${entry%%|*}
    suites=${entry#*|}
    n=$((n + 1))
    port=$((ES_CAL_PORT + n))
    log=$(mktemp)
    # a fixed offset (not a start time): every process, forked or exec'd, sees one clock
    offset=$(es_faketime_offset "$when")
    es_say "calendar: $when (Asia/Bangkok), suites: $suites"
    LD_PRELOAD="$ES_FAKETIME_PRELOAD" FAKETIME="+$offset" DONT_FAKE_MONOTONIC=1 \
        ES_PORT=$port ES_TMP=/tmp/elfsofa-cal-$port ES_SUITES="$suites" \
        bash "$ES_ROOT/test/run.sh" >"$log" 2>&1
    rc=$?
    last=$(tail -1 "$log")
    # what failed, for the reader of the outer log
    grep -E '^(not ok|#   (got|want))|\.\.\. FAILED|^not ok|^[-+]' "$log" | head -60 | sed 's/^/#   /'
    if [ $rc -eq 0 ] && echo "$last" | grep -qE '^[0-9]+ passed, 0 failed$'; then
        echo "ok $n - clock at $when: $last"
    else
        echo "not ok $n - clock at $when: $last"
        failed=$((failed + 1))
        tail -40 "$log" | sed 's/^/#   /'
    fi
    rm -f "$log"
done
echo "1..$n"
[ "$failed" -eq 0 ]

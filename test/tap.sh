# test/tap.sh — tiny TAP helpers for test/scripts/*.sh (sourced).
# Each script runs against the server `make test` started (PGHOST/PGPORT/PGUSER
# are set; ES_BINDIR, ES_TMP, ES_ROOT too) and prints "ok N - ..." lines.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TAP_N=0
TAP_FAILED=0

tap_ok() {      # tap_ok <condition-exit-status> <description>
    TAP_N=$((TAP_N + 1))
    if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"
    else echo "not ok $TAP_N - $2"; TAP_FAILED=$((TAP_FAILED + 1)); fi
}

tap_is() {      # tap_is <got> <want> <description>
    TAP_N=$((TAP_N + 1))
    if [ "$1" = "$2" ]; then echo "ok $TAP_N - $3"
    else
        echo "not ok $TAP_N - $3"
        echo "#   got:  '$1'"
        echo "#   want: '$2'"
        TAP_FAILED=$((TAP_FAILED + 1))
    fi
}

tap_done() {    # prints the plan; exit status says whether all passed
    echo "1..$TAP_N"
    [ "$TAP_FAILED" -eq 0 ]
}

# psql returning one unaligned value, failing loudly
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }

# elfsofa-listen as a subscriber of database $1 from its newest event on,
# printing into $2/listen.out (state file $2/listen.state).
listen_start() {    # listen_start <db> <dir>: sets LISTEN_PID and LISTEN_FROM
    LISTEN_FROM=$(q -d "$1" -c "SELECT coalesce(max(id), 0) FROM elfsofa.events")
    PGDATABASE=$1 "$ES_BINDIR/elfsofa-listen" --from-id "$LISTEN_FROM" --state-file "$2/listen.state" \
        >"$2/listen.out" 2>"$2/listen.err" &
    LISTEN_PID=$!
    sleep 0.3
}
# Waits (10 s at most) until it has printed the newest event, stops it, and
# prints "<events it printed> <events committed since it started> <ids printed twice>".
listen_stop() {     # listen_stop <db> <dir>
    local want
    want=$(q -d "$1" -c "SELECT max(id) FROM elfsofa.events")
    for _ in $(seq 1 100); do
        [ "$(cat "$2/listen.state" 2>/dev/null)" = "$want" ] && break
        sleep 0.1
    done
    kill -TERM "$LISTEN_PID"; wait "$LISTEN_PID"
    echo "$(wc -l <"$2/listen.out") $(q -d "$1" -c "SELECT count(*) FROM elfsofa.events WHERE id > $LISTEN_FROM")" \
         "$(grep -o '"id": [0-9]*' "$2/listen.out" | sort | uniq -d | wc -l)"
}

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

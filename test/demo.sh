#!/usr/bin/env bash
# test/demo.sh — `make demo`: install what is missing, build and install
# elfsofa, start a throwaway server of our own and show the shop working.
# `make stop` (test/demo.sh stop) stops that server.
set -u
source "$(dirname "$0")/lib.sh"

ES_PORT=${ES_PORT:-55431}
ES_TMP=${ES_TMP:-/tmp/elfsofa-demo-$ES_PORT}
export ES_PORT ES_TMP

if [ "${1:-}" = stop ]; then
    ES_BINDIR=$ES_SYS_BINDIR
    es_stop_server
    echo "demo server on port $ES_PORT stopped (data kept in $ES_TMP/data; rm -rf it to start over)"
    exit 0
fi

es_install_packages
es_build_install
es_start_server </dev/null
cd "$ES_ROOT"

psql -X -q -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS elfsofa_demo' -c 'CREATE DATABASE elfsofa_demo' || exit 1
export PGDATABASE=elfsofa_demo
psql -X -v ON_ERROR_STOP=1 -f test/demo.sql || exit 1

cat <<EOF

The demo server is running (port $ES_PORT, socket $ES_TMP/sock). Connect with:

    $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- " )psql -h $ES_TMP/sock -p $ES_PORT -d elfsofa_demo

Stop it with: make stop
EOF

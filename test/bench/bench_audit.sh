#!/usr/bin/env bash
# test/bench/bench_audit.sh — what auditing costs.  200k-row INSERT and
# 200k-row UPDATE on a bare table, on the same table audited by elfsofa's C
# trigger, and audited by a supa_audit-style PL/pgSQL trigger
# (audit_plpgsql.sql).  Each case runs AUDIT_REPS times; the median is shown.
# Then, when elfsofa.process_order exists, pgbench throughput of process_order
# with auditing on and off.
# Environment from test/bench/run.sh: PGHOST/PGPORT/PGUSER, BENCH_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=bench_audit
ROWS=${AUDIT_ROWS:-200000}
REPS=${AUDIT_REPS:-3}
OUT=test/bench/out/audit.txt
mkdir -p test/bench/out

psql -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d $DB -c "SET client_min_messages = warning" \
     -c "CREATE EXTENSION elfsofa" -f test/bench/audit_plpgsql.sql >/dev/null

q() { psql -X -q -v ON_ERROR_STOP=1 -d $DB "$@"; }

# Runs one statement and prints its duration in ms.
time_ms() {
    q -c '\timing on' -c "$1" | awk '/^Time:/ {print $2; exit}'
}

setup_table() {   # setup_table <mode>
    q >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.bench_t;
CREATE TABLE public.bench_t (
    id          integer PRIMARY KEY,
    sku         text NOT NULL UNIQUE,
    qty         integer NOT NULL,
    price       numeric(12,2) NOT NULL,
    note        text,
    attrs       jsonb NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SQL
    case $1 in
    elfsofa) q -c "SELECT elfsofa.enable_audit('public.bench_t')" >/dev/null ;;
    plpgsql) q -c "CREATE TRIGGER plaudit AFTER INSERT OR UPDATE OR DELETE ON public.bench_t
                   FOR EACH ROW EXECUTE FUNCTION bench_plaudit.row_trigger()" >/dev/null ;;
    esac
    q -c "CHECKPOINT" >/dev/null
}

INSERT_SQL="INSERT INTO public.bench_t (id, sku, qty, price, note, attrs)
            SELECT g, 'ELF-' || g, g % 50, (g % 1000) + 0.99, 'sofa cover ' || g, jsonb_build_object('colour', 'grey')
              FROM generate_series(1, $ROWS) g"
UPDATE_SQL="UPDATE public.bench_t SET qty = qty + 1, updated_at = clock_timestamp()"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Modes interleave within each round so that load from other work on the
# machine hits them alike.  The PL/pgSQL case is slow: AUDIT_PL_REPS rounds.
PL_REPS=${AUDIT_PL_REPS:-1}
declare -A INS UPD
for mode in bare elfsofa plpgsql; do INS[$mode]=""; UPD[$mode]=""; done
for rep in $(seq "$REPS"); do
    for mode in bare elfsofa plpgsql; do
        if [ $mode = plpgsql ] && [ "$rep" -gt "$PL_REPS" ]; then continue; fi
        setup_table $mode
        INS[$mode]+="$(time_ms "$INSERT_SQL") "
        q -c "CHECKPOINT" >/dev/null
        UPD[$mode]+="$(time_ms "$UPDATE_SQL") "
    done
done
for mode in bare elfsofa plpgsql; do
    INS[$mode]=$(tr ' ' '\n' <<<"${INS[$mode]}" | grep . | median)
    UPD[$mode]=$(tr ' ' '\n' <<<"${UPD[$mode]}" | grep . | median)
done

# audit rows really written by the last elfsofa and plpgsql runs (sanity)
AUDITED=$(q -At -c "SELECT count(*) FROM elfsofa.audit_log WHERE table_name = 'bench_t'")
PLAUDITED=$(q -At -c "SELECT count(*) FROM bench_plaudit.record_version")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
{
    echo "audit bench: $ROWS rows, median of $REPS runs ($PL_REPS for PL/pgSQL), ms"
    printf '%-28s %12s %12s\n' case INSERT UPDATE
    printf '%-28s %12.1f %12.1f\n' "bare table" "${INS[bare]}" "${UPD[bare]}"
    printf '%-28s %12.1f %12.1f\n' "elfsofa C audit" "${INS[elfsofa]}" "${UPD[elfsofa]}"
    printf '%-28s %12.1f %12.1f\n' "PL/pgSQL to_jsonb trigger" "${INS[plpgsql]}" "${UPD[plpgsql]}"
    printf '%-28s %11sx %11sx   (target <= 2.0x)\n' "elfsofa / bare" \
        "$(ratio "${INS[elfsofa]}" "${INS[bare]}")" "$(ratio "${UPD[elfsofa]}" "${UPD[bare]}")"
    printf '%-28s %11sx %11sx   (target >= 3x insert, >= 2x update)\n' "plpgsql / elfsofa" \
        "$(ratio "${INS[plpgsql]}" "${INS[elfsofa]}")" "$(ratio "${UPD[plpgsql]}" "${UPD[elfsofa]}")"
    echo "audit rows written: elfsofa $AUDITED, plpgsql $PLAUDITED"
} | tee "$OUT"

# process_order with auditing on vs off (needs the orders area)
if [ "$(q -At -c "SELECT count(*) FROM pg_proc WHERE proname = 'process_order' AND pronamespace = 'elfsofa'::regnamespace")" = 0 ]; then
    echo "process_order: not available on this branch, skipped" | tee -a "$OUT"
    exit 0
fi
bash test/bench/audit_orders.sh "$DB" | tee -a "$OUT"

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

# AUDIT_PART=orders runs only the process_order part, AUDIT_PART=rows only the row part.
PART=${AUDIT_PART:-all}
if [ "$PART" = orders ]; then
    bash test/bench/audit_orders.sh "$DB"
    exit 0
fi

# Runs one statement; prints its wall time and the backend's CPU time (user +
# system, from /proc/self/stat of the server process), both in ms.  Eight
# agents share this machine's two cores, so wall times swing with their load;
# CPU time is what the statement itself cost and is far steadier.
time_ms() {
    q -At <<SQL | awk '/^Time:/ {w=$2} /^cpu/ {c=$2} END {print w, c}'
SELECT (split_part(pg_read_file('/proc/self/stat'), ' ', 14)::bigint
      + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::bigint) AS t0 \gset
\timing on
$1;
\timing off
SELECT 'cpu ' || ((split_part(pg_read_file('/proc/self/stat'), ' ', 14)::bigint
      + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::bigint - :t0) * 1000 / $HZ);
SQL
}
HZ=$(getconf CLK_TCK)

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
declare -A INS UPD INSC UPDC
for mode in bare elfsofa plpgsql; do INS[$mode]=""; UPD[$mode]=""; INSC[$mode]=""; UPDC[$mode]=""; done
for rep in $(seq "$REPS"); do
    for mode in bare elfsofa plpgsql; do
        if [ $mode = plpgsql ] && [ "$rep" -gt "$PL_REPS" ]; then continue; fi
        setup_table $mode
        read -r w c <<<"$(time_ms "$INSERT_SQL")"
        INS[$mode]+="$w "; INSC[$mode]+="$c "
        q -c "CHECKPOINT" >/dev/null
        read -r w c <<<"$(time_ms "$UPDATE_SQL")"
        UPD[$mode]+="$w "; UPDC[$mode]+="$c "
    done
done
for mode in bare elfsofa plpgsql; do
    for arr in INS UPD INSC UPDC; do
        declare -n ref=$arr
        ref[$mode]=$(tr ' ' '\n' <<<"${ref[$mode]}" | grep . | median)
        unset -n ref
    done
done

# audit rows really written by the last elfsofa and plpgsql runs (sanity)
AUDITED=$(q -At -c "SELECT count(*) FROM elfsofa.audit_log WHERE table_name = 'bench_t'")
PLAUDITED=$(q -At -c "SELECT count(*) FROM bench_plaudit.record_version")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
{
    echo "audit bench: $ROWS rows, median of $REPS rounds ($PL_REPS for PL/pgSQL); wall ms and backend CPU ms"
    printf '%-28s %12s %12s %12s %12s\n' case "INSERT wall" "INSERT cpu" "UPDATE wall" "UPDATE cpu"
    for mode in bare elfsofa plpgsql; do
        case $mode in bare) label="bare table";; elfsofa) label="elfsofa C audit";; plpgsql) label="PL/pgSQL to_jsonb trigger";; esac
        printf '%-28s %12.0f %12.0f %12.0f %12.0f\n' "$label" "${INS[$mode]}" "${INSC[$mode]}" "${UPD[$mode]}" "${UPDC[$mode]}"
    done
    printf '%-28s %11sx %11sx %11sx %11sx   (target <= 2.0x)\n' "elfsofa / bare" \
        "$(ratio "${INS[elfsofa]}" "${INS[bare]}")" "$(ratio "${INSC[elfsofa]}" "${INSC[bare]}")" \
        "$(ratio "${UPD[elfsofa]}" "${UPD[bare]}")" "$(ratio "${UPDC[elfsofa]}" "${UPDC[bare]}")"
    printf '%-28s %11sx %11sx %11sx %11sx   (target >= 3x insert, >= 2x update)\n' "plpgsql / elfsofa" \
        "$(ratio "${INS[plpgsql]}" "${INS[elfsofa]}")" "$(ratio "${INSC[plpgsql]}" "${INSC[elfsofa]}")" \
        "$(ratio "${UPD[plpgsql]}" "${UPD[elfsofa]}")" "$(ratio "${UPDC[plpgsql]}" "${UPDC[elfsofa]}")"
    echo "audit rows written: elfsofa $AUDITED, plpgsql $PLAUDITED"
} | tee "$OUT"

# process_order with auditing on vs off (needs the orders area)
if [ "$(q -At -c "SELECT count(*) FROM pg_proc WHERE proname = 'process_order' AND pronamespace = 'elfsofa'::regnamespace")" = 0 ]; then
    echo "process_order: not available on this branch, skipped" | tee -a "$OUT"
    exit 0
fi
if [ "$PART" = all ]; then
    bash test/bench/audit_orders.sh "$DB" | tee -a "$OUT"
fi

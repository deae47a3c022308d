#!/usr/bin/env bash
# bench_partitions.sh — elfsofa's partition manager vs pg_partman 4.x, in the
# same run on the same server, plus archive_rows throughput.
#   1. registering 20 daily sets with 30 days ahead (one transaction each side),
#      next to the floor: the same 620 partitions as bare CREATE TABLE ... PARTITION OF
#   2. a maintenance run with nothing to do, 20 sets (median of 5)
#   3. the same with 200 sets (flatness: time per set)
#   4. archive_rows on 1M rows (rows/s), against a one-shot DELETE ... INSERT
# Times are measured inside the server (clock_timestamp) so client start-up
# does not count.  pg_partman is a Debian package, installed here when missing.
set -u
source "$(dirname "$0")/../lib.sh"
DB=es_bench_partitions
ROWS=${BENCH_ARCHIVE_ROWS:-1000000}

# pg_partman: the Debian package, then copied into the private PostgreSQL tree the bench server runs from
if ! dpkg-query -W -f='${Status}' "postgresql-$ES_PGVER-partman" 2>/dev/null | grep -q "install ok installed"; then
    es_say "installing postgresql-$ES_PGVER-partman"
    DEBIAN_FRONTEND=noninteractive es_sudo apt-get install -y -q "postgresql-$ES_PGVER-partman" >/dev/null 2>&1 ||
        { es_sudo apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive es_sudo apt-get install -y -q "postgresql-$ES_PGVER-partman" >/dev/null; } ||
        es_die "could not install postgresql-$ES_PGVER-partman"
fi
sharedir=$("$ES_PG_CONFIG" --sharedir)
libdir=$("$ES_PG_CONFIG" --pkglibdir)
if [ ! -f "$sharedir/extension/pg_partman.control" ]; then
    cp /usr/share/postgresql/$ES_PGVER/extension/pg_partman* "$sharedir/extension/"
    cp /usr/lib/postgresql/$ES_PGVER/lib/pg_partman_bgw.so "$libdir/" 2>/dev/null || true
fi

q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d $DB "$@"; }
# ms <sql>: runs sql in a DO block and prints the elapsed milliseconds
ms() {
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d $DB -c \
        "DO \$x\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN $1; RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 2); END \$x\$" 2>&1 |
        sed -n 's/.*ms=//p'
}
# mscpu <sql>: like ms, but prints "elapsed_ms cpu_ms user_ms": cpu is the backend's own on-CPU
# time (/proc/self/schedstat, user + kernel), user its user-mode part (/proc/self/stat utime, 10 ms
# ticks).  Other load on the machine disturbs these far less than elapsed time; the kernel part
# (creating files) also depends on the file system's state, user time does not.
mscpu() {
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d $DB -c \
        "DO \$x\$ DECLARE t0 timestamptz := clock_timestamp();
                         c0 bigint := split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint;
                         u0 bigint := split_part(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ', 12)::bigint;
         BEGIN $1;
           RAISE NOTICE 'ms=% % %', round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 2),
                        round((split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - c0) / 1e6, 2),
                        (split_part(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ', 12)::bigint - u0) * 10;
         END \$x\$" 2>&1 |
        sed -n 's/.*ms=//p'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
ratio2() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

psql -X -q -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
psql -X -q -c "CREATE DATABASE $DB" >/dev/null
q -c "CREATE EXTENSION elfsofa" -c "CREATE SCHEMA partman" -c "CREATE EXTENSION pg_partman SCHEMA partman" \
  -c "CREATE SCHEMA b" >/dev/null
pmver=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'")

mk_tables() {   # mk_tables <prefix> <from> <to>
    q -c "DO \$\$ BEGIN FOR i IN $2..$3 LOOP
            EXECUTE format('CREATE TABLE b.%I (id bigint, ts timestamptz NOT NULL, v text) PARTITION BY RANGE (ts)', '$1' || i);
          END LOOP; END \$\$"
}
mk_tables f_ 1 20
mk_tables e_ 1 20
mk_tables p_ 1 20

# the physical floor: the same 620 partitions (20 parents x today + 30 days) as bare
# CREATE TABLE ... PARTITION OF statements, no bookkeeping at all
read -r reg_f cpu_f usr_f <<<"$(mscpu "FOR i IN 1..20 LOOP FOR d IN 0..30 LOOP
      EXECUTE format('CREATE TABLE b.%I PARTITION OF b.%I FOR VALUES FROM (%L) TO (%L)',
                     format('f_%s_p%s', i, d), 'f_' || i,
                     date_trunc('day', now()) + d * interval '1 day', date_trunc('day', now()) + (d + 1) * interval '1 day');
    END LOOP; END LOOP")"
# Order: floor, pg_partman, elfsofa.  Creating files costs more kernel time the more files were
# created (and deleted) just before (an ext4 without journal skips recently freed inodes), so
# whatever runs later is at a disadvantage: elfsofa goes last.
read -r reg_p cpu_p usr_p <<<"$(mscpu "FOR i IN 1..20 LOOP PERFORM partman.create_parent(format('b.p_%s', i), 'ts', 'native', 'daily', p_premake := 30, p_start_partition := to_char(now(), 'YYYY-MM-DD'), p_jobmon := false); END LOOP")"
read -r reg_e cpu_e usr_e <<<"$(mscpu "FOR i IN 1..20 LOOP PERFORM elfsofa.partition_table(format('b.e_%s', i)::regclass, 'ts', '1 day', 30); END LOOP")"
parts_f=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent::regclass::text LIKE 'b.f\_%'")
parts_e=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent::regclass::text LIKE 'b.e\_%'")
parts_p=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent::regclass::text LIKE 'b.p\_%'")

# cold: a new connection per run, as pg_cron starts one (median of <runs>)
noop() {   # noop <runs>: prints "elfsofa_ms partman_ms", alternating the two
    local e=() p=()
    for _ in $(seq 1 "$1"); do
        e+=("$(ms "PERFORM elfsofa.run_maintenance()")")
        p+=("$(ms "PERFORM partman.run_maintenance(p_analyze := false, p_jobmon := false)")")
    done
    echo "$(printf '%s\n' "${e[@]}" | median) $(printf '%s\n' "${p[@]}" | median)"
}
# warm: one session, one untimed run, then the median of 5 (each run in its own transaction)
warm() {   # warm <sql>
    {
        echo '\o /dev/null'
        echo "$1;"
        echo "CREATE TEMP TABLE w (ms numeric);"
        for _ in 1 2 3 4 5; do
            echo "SELECT set_config('w.t0', clock_timestamp()::text, false);"
            echo "$1;"
            echo "INSERT INTO w SELECT extract(epoch FROM clock_timestamp() - current_setting('w.t0')::timestamptz) * 1000;"
        done
        echo '\o'
        echo "SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), 2) FROM w;"
    } | psql -X -A -t -q -v ON_ERROR_STOP=1 -d $DB 2>/dev/null | tail -1
}
ms "PERFORM elfsofa.run_maintenance()" >/dev/null     # warm both (plans, caches)
ms "PERFORM partman.run_maintenance(p_analyze := false, p_jobmon := false)" >/dev/null
read -r noop20_e noop20_p <<<"$(noop 5)"
warm20_e=$(warm "SELECT elfsofa.run_maintenance()")
warm20_p=$(warm "SELECT partman.run_maintenance(p_analyze := false, p_jobmon := false)")
sets20_e=$(q -c "SELECT count(*) FROM elfsofa.partition_sets")
sets20_p=$(q -c "SELECT count(*) FROM partman.part_config")

# 180 more sets on each side (premake 4, to keep the bench short)
mk_tables e_ 21 200
mk_tables p_ 21 200
reg180_e=$(ms "FOR i IN 21..200 LOOP PERFORM elfsofa.partition_table(format('b.e_%s', i)::regclass, 'ts', '1 day', 4); END LOOP")
reg180_p=$(ms "FOR i IN 21..200 LOOP PERFORM partman.create_parent(format('b.p_%s', i), 'ts', 'native', 'daily', p_premake := 4, p_start_partition := to_char(now(), 'YYYY-MM-DD'), p_jobmon := false); END LOOP")
ms "PERFORM elfsofa.run_maintenance()" >/dev/null
ms "PERFORM partman.run_maintenance(p_analyze := false, p_jobmon := false)" >/dev/null
read -r noop200_e noop200_p <<<"$(noop 3)"
warm200_e=$(warm "SELECT elfsofa.run_maintenance()")
warm200_p=$(warm "SELECT partman.run_maintenance(p_analyze := false, p_jobmon := false)")
sets200_e=$(q -c "SELECT count(*) FROM elfsofa.partition_sets")
sets200_p=$(q -c "SELECT count(*) FROM partman.part_config")

# archive_rows on ROWS old rows, vs one DELETE ... RETURNING / INSERT statement
q -c "CREATE TABLE b.arch (id bigint PRIMARY KEY, at timestamptz NOT NULL, payload text NOT NULL)" \
  -c "INSERT INTO b.arch SELECT i, now() - interval '30 days' + i * interval '1 millisecond', md5(i::text) FROM generate_series(1, $ROWS) i" \
  -c "CREATE TABLE b.base (LIKE b.arch INCLUDING ALL)" -c "INSERT INTO b.base SELECT * FROM b.arch" \
  -c "CREATE TABLE b.base_archive (LIKE b.arch)" -c "VACUUM ANALYZE b.arch" -c "VACUUM ANALYZE b.base" >/dev/null
arch_ms=$(ms "PERFORM elfsofa.archive_rows('b.arch', 'at', '1 day', 10000)")
arch_n=$(q -c "SELECT count(*) FROM elfsofa_archive.arch")
base_ms=$(ms "WITH moved AS (DELETE FROM b.base WHERE at < now() - interval '1 day' RETURNING *) INSERT INTO b.base_archive SELECT * FROM moved")
# the committing procedure, timed from the client (CALL cannot run inside DO's timing block and commit)
q -c "INSERT INTO b.arch SELECT * FROM elfsofa_archive.arch" -c "TRUNCATE elfsofa_archive.arch" -c "VACUUM b.arch" >/dev/null
t0=$(date +%s%N)
q -c "CALL elfsofa.archive_rows_batched('b.arch', 'at', '1 day', 10000)" >/dev/null
proc_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

rps() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms > 0) printf "%.0f", n / (ms / 1000); else print "n/a" }'; }
echo
echo "== partitions: elfsofa vs pg_partman $pmver (same server, same run)"
printf '%-50s %12s %12s %8s\n' "measure" "elfsofa" "pg_partman" "ratio"
printf '%-50s %10s ms %10s ms %7sx\n' "register 20 daily sets, 30 days ahead" "$reg_e" "$reg_p" "$(ratio "$reg_p" "$reg_e")"
printf '%-50s %10s ms %10s ms %7sx\n' "  same, backend CPU" "$cpu_e" "$cpu_p" "$(ratio "$cpu_p" "$cpu_e")"
printf '%-50s %10s ms %10s ms %7sx\n' "  same, backend CPU in user mode" "$usr_e" "$usr_p" "$(ratio "$usr_p" "$usr_e")"
printf '%-50s %12s %12s\n' "  partitions made" "$parts_e" "$parts_p"
printf '%-50s %10s ms %10s ms %10s ms user   (%s partitions)\n' "  floor: bare CREATE TABLE ... PARTITION OF" "$reg_f" "$cpu_f" "$usr_f" "$parts_f"
printf '%-50s %11sx %11sx %11sx user\n' "  elfsofa / floor (elapsed, cpu; 1.0 = at floor)" "$(ratio2 "$reg_e" "$reg_f")" "$(ratio2 "$cpu_e" "$cpu_f")" "$(ratio2 "$usr_e" "$usr_f")"
printf '%-50s %11sx %11sx %11sx user\n' "  pg_partman / floor (elapsed, cpu)" "$(ratio2 "$reg_p" "$reg_f")" "$(ratio2 "$cpu_p" "$cpu_f")" "$(ratio2 "$usr_p" "$usr_f")"
printf '%-50s %10s ms %10s ms %7sx\n' "no-op maintenance, $sets20_e / $sets20_p sets (median of 5)" "$noop20_e" "$noop20_p" "$(ratio "$noop20_p" "$noop20_e")"
printf '%-50s %10s ms %10s ms %7sx\n' "  same, warm session (median of 5)" "$warm20_e" "$warm20_p" "$(ratio "$warm20_p" "$warm20_e")"
printf '%-50s %10s ms %10s ms %7sx\n' "register 180 more sets, 4 days ahead" "$reg180_e" "$reg180_p" "$(ratio "$reg180_p" "$reg180_e")"
printf '%-50s %10s ms %10s ms %7sx\n' "no-op maintenance, $sets200_e / $sets200_p sets (median of 3)" "$noop200_e" "$noop200_p" "$(ratio "$noop200_p" "$noop200_e")"
printf '%-50s %10s ms %10s ms %7sx\n' "  same, warm session (median of 5)" "$warm200_e" "$warm200_p" "$(ratio "$warm200_p" "$warm200_e")"
pe20=$(awk -v t="$noop20_e" -v n="$sets20_e" 'BEGIN{printf "%.3f", t/n}'); pe200=$(awk -v t="$noop200_e" -v n="$sets200_e" 'BEGIN{printf "%.3f", t/n}')
pp20=$(awk -v t="$noop20_p" -v n="$sets20_p" 'BEGIN{printf "%.3f", t/n}'); pp200=$(awk -v t="$noop200_p" -v n="$sets200_p" 'BEGIN{printf "%.3f", t/n}')
printf '%-50s %9s ms %10s ms\n' "  per set, 20 sets" "$pe20" "$pp20"
printf '%-50s %9s ms %10s ms\n' "  per set, 200 sets" "$pe200" "$pp200"
printf '%-50s %11sx %11sx\n' "  flatness (per-set time 200 / 20; 1.0 = flat)" "$(ratio "$pe200" "$pe20")" "$(ratio "$pp200" "$pp20")"
echo
echo "== archive_rows, $ROWS rows"
printf '%-50s %10s ms %10s rows/s\n' "archive_rows (one transaction, 10k batches)" "$arch_ms" "$(rps "$arch_n" "$arch_ms")"
printf '%-50s %10s ms %10s rows/s\n' "archive_rows_batched (commit per 10k batch)" "$proc_ms" "$(rps "$ROWS" "$proc_ms")"
printf '%-50s %10s ms %10s rows/s\n' "baseline: one DELETE ... RETURNING / INSERT" "$base_ms" "$(rps "$ROWS" "$base_ms")"
printf '%-50s %10sx\n' "archive_rows speed vs the one-shot baseline" "$(ratio "$base_ms" "$arch_ms")"

psql -X -q -c "DROP DATABASE $DB" >/dev/null 2>&1

#!/usr/bin/env bash
# schedule_maintenance() from a database other than cron.database_name: the
# jobs land in pg_cron's database and run in ours; re-running updates them;
# a pg_cron job actually runs (bounded wait on cron.job_run_details); the
# jobs are removed afterwards.
source "$(dirname "$0")/../tap.sh"
DB=es_cron_test
CRONDB=$(q -c "SHOW cron.database_name")

q -c "DROP DATABASE IF EXISTS $DB" >/dev/null
q -c "CREATE DATABASE $DB" >/dev/null
q -d $DB -c "CREATE EXTENSION elfsofa" >/dev/null

# without the pg_cron extension in its database: a clear error (only checkable when it is absent)
if [ "$(q -d "$CRONDB" -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")" = 0 ]; then
    err=$(psql -X -q -d $DB -v VERBOSITY=verbose -c "SELECT elfsofa.schedule_maintenance()" 2>&1)
    tap_ok $(grep -q "55000" <<<"$err" && grep -q "CREATE EXTENSION pg_cron" <<<"$err" && echo 0 || echo 1) \
        "no pg_cron extension: SQLSTATE 55000 with a hint"
    q -d "$CRONDB" -c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null
else
    echo "ok - # skip pg_cron already installed, cannot check the missing-extension error"
fi

out=$(q -d $DB -c "SELECT elfsofa.schedule_maintenance('* * * * *')")
echo "# $out"
jobs=$(q -d "$CRONDB" -c "SELECT string_agg(jobname || '@' || database, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'elfsofa-%'")
tap_is "$jobs" "elfsofa-cron-history@$CRONDB,elfsofa-daily-$DB@$DB,elfsofa-maintenance-$DB@$DB" "three jobs, run in the right databases"
ids1=$(q -d "$CRONDB" -c "SELECT string_agg(jobid::text, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'elfsofa-%'")
q -d $DB -c "SELECT elfsofa.schedule_maintenance('* * * * *', '11 2 * * *')" >/dev/null
ids2=$(q -d "$CRONDB" -c "SELECT string_agg(jobid::text, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'elfsofa-%'")
tap_is "$ids2" "$ids1" "re-running updates the same jobs, never duplicates"
tap_is "$(q -d "$CRONDB" -c "SELECT schedule FROM cron.job WHERE jobname = 'elfsofa-daily-$DB'")" "11 2 * * *" "re-running changed the daily schedule"
tap_ok $(q -d "$CRONDB" -c "SELECT command FROM cron.job WHERE jobname = 'elfsofa-cron-history'" | grep -q "DELETE FROM cron.job_run_details WHERE end_time < now() - interval" && echo 0 || echo 1) \
    "a job keeps pg_cron's run history bounded"
err=$(psql -X -q -d $DB -c "SELECT elfsofa.schedule_maintenance('not a schedule')" 2>&1)
tap_ok $(grep -q "ERROR" <<<"$err" && echo 0 || echo 1) "a bad schedule is refused by pg_cron: ${err%%$'\n'*}"

# give maintenance something to do, then wait (bounded) for pg_cron to run it
q -d $DB -c "UPDATE elfsofa.partition_sets SET premake = 12 WHERE parent = 'elfsofa.events'::regclass" >/dev/null
jobid=$(q -d "$CRONDB" -c "SELECT jobid FROM cron.job WHERE jobname = 'elfsofa-maintenance-$DB'")
status=""
for _ in $(seq 1 100); do
    status=$(q -d "$CRONDB" -c "SELECT status FROM cron.job_run_details WHERE jobid = $jobid AND status IN ('succeeded', 'failed') ORDER BY runid DESC LIMIT 1")
    [ -n "$status" ] && break
    sleep 1
done
tap_is "$status" "succeeded" "pg_cron ran the maintenance job"
# counted from the day the job ran: a day may have turned since the extension was made
ran=$(q -d "$CRONDB" -c "SELECT start_time FROM cron.job_run_details WHERE jobid = $jobid AND status = 'succeeded' ORDER BY runid DESC LIMIT 1")
tap_is "$(q -d $DB -c "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'elfsofa.events'::regclass
                          AND c.relname >= 'events_p' || to_char('$ran'::timestamptz, 'YYYY_MM_DD')")" "13" \
    "the job made the partitions it was missing (the day it ran and 12 ahead)"
tap_ok $(q -d $DB -c "SELECT last_run IS NOT NULL AND last_error IS NULL FROM elfsofa.partition_sets WHERE parent = 'elfsofa.events'::regclass" | grep -q t && echo 0 || echo 1) \
    "partition_status shows the run"

tap_is "$(q -d $DB -c "SELECT elfsofa.unschedule_maintenance()")" "3" "unschedule removes the three jobs"
tap_is "$(q -d "$CRONDB" -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'elfsofa-%'")" "0" "no elfsofa job left"
# from pg_cron's own database the jobs go through SPI (elfsofa installed there only for this check)
created_here=0
if [ "$(q -d "$CRONDB" -c "SELECT count(*) FROM pg_extension WHERE extname = 'elfsofa'")" = 0 ]; then
    q -d "$CRONDB" -c "CREATE EXTENSION elfsofa" >/dev/null && created_here=1
fi
local_jobs=$(q -d "$CRONDB" -c "SELECT string_agg(j->>'database', ',') FROM jsonb_array_elements(elfsofa.schedule_maintenance()->'jobs') j")
tap_is "$local_jobs" "$CRONDB,$CRONDB,$CRONDB" "in pg_cron's database: jobs registered locally, for that database"
tap_is "$(q -d "$CRONDB" -c "SELECT elfsofa.unschedule_maintenance()")" "3" "and removed again"
[ $created_here = 1 ] && q -d "$CRONDB" -c "DROP EXTENSION elfsofa CASCADE" >/dev/null

q -c "DROP DATABASE $DB" >/dev/null
tap_done

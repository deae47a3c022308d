#!/usr/bin/env bash
# test/scripts/60_ops_health_cron.sh — health()'s cron check against real
# pg_cron: it only works in the database pg_cron lives in (cron.database_name,
# "postgres" on the test server), so this runs there and cleans up after itself.
# No elfsofa job → degraded; schedule_maintenance() → ok; an elfsofa job that
# fails when pg_cron runs it (at the next minute) → degraded, with the job named.
set -u
source "$(dirname "$0")/../tap.sh"
DB=postgres

had_cron=$(q -d $DB -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")
had_elfsofa=$(q -d $DB -c "SELECT count(*) FROM pg_extension WHERE extname = 'elfsofa'")
q -d $DB -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_cron" -c "CREATE EXTENSION IF NOT EXISTS elfsofa" >/dev/null

cleanup() {
    q -d $DB -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'elfsofa-ops-test-fail'" >/dev/null 2>&1
    q -d $DB -c "DELETE FROM cron.job_run_details d WHERE NOT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobid = d.jobid)" >/dev/null 2>&1
    [ "$had_elfsofa" = 0 ] && q -d $DB -c "SELECT elfsofa.unschedule_maintenance()" -c "DROP EXTENSION elfsofa CASCADE" >/dev/null 2>&1
    [ "$had_cron" = 0 ] && q -d $DB -c "DROP EXTENSION pg_cron" >/dev/null 2>&1
}
trap cleanup EXIT

check() { q -d $DB -c "SELECT c->>'status' FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'cron'"; }
detail() { q -d $DB -c "SELECT c->>'detail' FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'cron'"; }

q -d $DB -c "SELECT elfsofa.unschedule_maintenance()" >/dev/null 2>&1
tap_is "$(check)" "warn" "cron check: pg_cron installed but no elfsofa job scheduled is a warning"
tap_ok "$(detail | grep -q 'schedule_maintenance'; echo $?)" "the detail says how to fix it"

q -d $DB -c "SELECT elfsofa.schedule_maintenance()" >/dev/null
tap_is "$(check)" "ok" "after schedule_maintenance() the cron check is ok"
tap_is "$(q -d $DB -c "SELECT elfsofa.health()->>'status'")" "ok" "and the shop is healthy"

q -d $DB -c "SELECT cron.schedule('elfsofa-ops-test-fail', '* * * * *', 'SELECT 1/0')" >/dev/null
# pg_cron 1.4 runs jobs at minute boundaries: wait for the first (failed) run, at most 75 s
for _ in $(seq 1 75); do
    n=$(q -d $DB -c "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                     WHERE j.jobname = 'elfsofa-ops-test-fail' AND d.status = 'failed'")
    [ "$n" -gt 0 ] && break
    sleep 1
done
tap_ok "$([ "$n" -gt 0 ]; echo $?)" "pg_cron ran the failing job"
tap_is "$(check)" "warn" "a failed elfsofa job run makes the cron check warn"
tap_ok "$(detail | grep -q 'elfsofa-ops-test-fail failed'; echo $?)" "the detail names the failing job: $(detail)"
tap_is "$(q -d $DB -c "SELECT elfsofa.health()->>'status'")" "degraded" "health() is degraded"
tap_ok "$(q -d $DB -c "SELECT elfsofa.metrics()" | grep '^elfsofa_cron_failed_runs [1-9]' >/dev/null; echo $?)" "metrics() counts the failed run"
q -d $DB -c "SELECT cron.unschedule('elfsofa-ops-test-fail')" >/dev/null
q -d $DB -c "DELETE FROM cron.job_run_details d WHERE NOT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobid = d.jobid)" >/dev/null
tap_is "$(check)" "ok" "once the job is gone the cron check is ok again"
tap_done

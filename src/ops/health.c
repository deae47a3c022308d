/*
 * health.c — elfsofa.health() and elfsofa.metrics(): the shop's "health checks
 * → metrics → alerts" inside the database.  One collector runs every check
 * once and renders both the JSON report and the Prometheus text, so the two
 * never disagree.  Also defines the ops settings (thresholds, analytics).
 *
 * The pg_cron check looks for the cron schema first and reports "skipped"
 * where pg_cron is not installed; queries on catalogs and on other areas'
 * tables run as one-shot SPI (health is not a hot path), the rest through
 * kept plans.
 */
#include "ops/ops.h"

#include "miscadmin.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(elfsofa_health);
PG_FUNCTION_INFO_V1(elfsofa_metrics);

/* Settings (elfsofa.health_*, elfsofa.analytics_*, elfsofa.cart_*). */
static int			es_guc_health_partitions_ahead = 2;
static int			es_guc_health_log_retention_days = 90;
static int			es_guc_health_archive_grace_hours = 48;
static int			es_guc_health_event_lag_seconds = 300;
static int			es_guc_health_event_lag_fail_seconds = 3600;
static int			es_guc_health_dead_letters = 1;
static int			es_guc_health_cron_silence_minutes = 1500;
static int			es_guc_health_low_stock_products = 1;
static int			es_guc_health_long_query_seconds = 300;
static int			es_guc_health_idle_in_transaction_seconds = 60;
static int			es_guc_health_database_size_mb = 8192;

static void
define_int(const char *name, const char *desc, int *var, int dflt, int lo, int hi, int flags)
{
	DefineCustomIntVariable(name, desc, NULL, var, dflt, lo, hi, PGC_USERSET, flags, NULL, NULL, NULL);
}

/* Called from _PG_init: the health checks' settings, with their ranges in the descriptions. */
void
es_health_init(void)
{
	define_int("elfsofa.health_partitions_ahead",
			   "health(): fewer future partitions than this (0-1000) for a partitioned table is degraded.",
			   &es_guc_health_partitions_ahead, 2, 0, 1000, 0);
	define_int("elfsofa.health_log_retention_days",
			   "health(): system_logs rows older than this many days (1-36500) are due for archiving, unless the partition manager has a retention for system_logs.",
			   &es_guc_health_log_retention_days, 90, 1, 36500, 0);
	define_int("elfsofa.health_archive_grace_hours",
			   "health(): rows overdue for archiving by more than this (0-8760 hours) are degraded.",
			   &es_guc_health_archive_grace_hours, 48, 0, 8760, 0);
	define_int("elfsofa.health_event_lag_seconds",
			   "health(): a consumer whose oldest unconsumed event is older than this (0-604800 s) is degraded.",
			   &es_guc_health_event_lag_seconds, 300, 0, 604800, 0);
	define_int("elfsofa.health_event_lag_fail_seconds",
			   "health(): a consumer lagging more than this (0-604800 s) is failing.",
			   &es_guc_health_event_lag_fail_seconds, 3600, 0, 604800, 0);
	define_int("elfsofa.health_dead_letters",
			   "health(): this many dead-lettered notifications (0-1000000, 0 = never) is degraded.",
			   &es_guc_health_dead_letters, 1, 0, 1000000, 0);
	define_int("elfsofa.health_cron_silence_minutes",
			   "health(): an elfsofa pg_cron job with no run for this long (1-525600 min) is degraded.",
			   &es_guc_health_cron_silence_minutes, 1500, 1, 525600, 0);
	define_int("elfsofa.health_low_stock_products",
			   "health(): this many products below their low-stock threshold (0-1000000, 0 = never) is degraded.",
			   &es_guc_health_low_stock_products, 1, 0, 1000000, 0);
	define_int("elfsofa.health_long_query_seconds",
			   "health(): statements running longer than this (0-86400 s) are degraded.",
			   &es_guc_health_long_query_seconds, 300, 0, 86400, 0);
	define_int("elfsofa.health_idle_in_transaction_seconds",
			   "health(): sessions idle in a transaction longer than this (0-86400 s) are degraded.",
			   &es_guc_health_idle_in_transaction_seconds, 60, 0, 86400, 0);
	define_int("elfsofa.health_database_size_mb",
			   "health(): a database larger than this (0-100000000 MB, 0 = never) is degraded.",
			   &es_guc_health_database_size_mb, 8192, 0, 100000000, 0);
}

typedef enum
{
	CHECK_SKIPPED = -1,
	CHECK_OK = 0,
	CHECK_WARN = 1,
	CHECK_FAIL = 2
} CheckStatus;

static const char *const check_words[] = {"ok", "warn", "fail"};

typedef struct Report
{
	StringInfoData checks;		/* JSON array elements, comma-separated */
	StringInfoData metrics;		/* Prometheus text */
	StringInfoData check_lines; /* elfsofa_health_check_status samples */
	int			nchecks;
	CheckStatus worst;
} Report;

static void
add_check(Report *r, const char *name, CheckStatus st, const char *detail)
{
	if (r->nchecks++ > 0)
		appendStringInfoChar(&r->checks, ',');
	appendStringInfoString(&r->checks, "{\"name\": ");
	es_json_quote(&r->checks, name);
	appendStringInfoString(&r->checks, ", \"status\": ");
	es_json_quote(&r->checks, st == CHECK_SKIPPED ? "skipped" : check_words[st]);
	appendStringInfoString(&r->checks, ", \"detail\": ");
	es_json_quote(&r->checks, detail);
	appendStringInfoChar(&r->checks, '}');
	appendStringInfo(&r->check_lines, "elfsofa_health_check_status{check=\"%s\"} %d\n", name, (int) st);
	if (st > r->worst)
		r->worst = st;
}

static void
metric_family(Report *r, const char *name, const char *help)
{
	appendStringInfo(&r->metrics, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* One sample; label_value (may be NULL) is escaped per the exposition format. */
static void
metric(Report *r, const char *name, const char *label, const char *label_value, double v)
{
	appendStringInfoString(&r->metrics, name);
	if (label != NULL)
	{
		appendStringInfo(&r->metrics, "{%s=\"", label);
		for (const char *c = label_value; *c; c++)
		{
			if (*c == '\\' || *c == '"')
				appendStringInfoChar(&r->metrics, '\\');
			if (*c == '\n')
				appendStringInfoString(&r->metrics, "\\n");
			else
				appendStringInfoChar(&r->metrics, *c);
		}
		appendStringInfoString(&r->metrics, "\"}");
	}
	appendStringInfo(&r->metrics, " %.15g\n", v);
}

static bool
relation_exists(const char *schema, const char *rel)
{
	return OidIsValid(RangeVarGetRelid(makeRangeVar((char *) schema, (char *) rel, -1), NoLock, true));
}

/* Column value as text (NULL when null); valid until SPI_finish. */
static char *
col(uint64 row, int c)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, c);
}

static double
col_num(uint64 row, int c)
{
	char	   *s = col(row, c);

	return s ? strtod(s, NULL) : 0;
}

static void
run(const char *sql, int nargs, Oid *types, Datum *values)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, true, 0);

	if (rc < 0)
		elog(ERROR, "elfsofa: health query failed (%s): %s", SPI_result_code_string(rc), sql);
}

/*
 * Every time-partitioned (range on one date/time column) elfsofa table, plus
 * the tables registered with the partition manager: how many partitions lie
 * wholly ahead of now and whether one holds now.  Bounds come from the
 * catalog (relpartbound), never from the data.
 */
static const char *partitions_sql =
	"WITH parents AS ("
	"  SELECT c.oid FROM pg_class c JOIN pg_partitioned_table pt ON pt.partrelid = c.oid "
	"   WHERE c.relnamespace = 'elfsofa'::regnamespace AND NOT c.relispartition "
	"   UNION SELECT parent FROM elfsofa.partition_sets), "
	"timed AS (SELECT p.oid FROM parents p JOIN pg_partitioned_table pt ON pt.partrelid = p.oid "
	"   JOIN pg_attribute a ON a.attrelid = p.oid AND a.attnum = pt.partattrs[0] "
	"  WHERE pt.partstrat = 'r' AND pt.partnatts = 1 "
	"    AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)), "
	"b AS (SELECT i.inhparent AS parent, pg_get_expr(k.relpartbound, k.oid) AS e "
	"        FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid JOIN timed t ON t.oid = i.inhparent), "
	"v AS (SELECT parent, e = 'DEFAULT' AS is_default, "
	"        CASE substring(e FROM 'FROM \\(([^)]*)\\)') WHEN 'MINVALUE' THEN '-infinity' "
	"             ELSE btrim(substring(e FROM 'FROM \\(([^)]*)\\)'), '''') END::timestamptz AS lo, "
	"        CASE substring(e FROM 'TO \\(([^)]*)\\)') WHEN 'MAXVALUE' THEN 'infinity' "
	"             ELSE btrim(substring(e FROM 'TO \\(([^)]*)\\)'), '''') END::timestamptz AS hi "
	"        FROM b) "
	"SELECT t.oid::regclass::text, "
	"       count(v.lo) AS partitions, "
	"       count(*) FILTER (WHERE v.lo > now()) AS ahead, "
	"       COALESCE(bool_or(now() >= v.lo AND now() < v.hi), false) OR COALESCE(bool_or(v.is_default), false) AS holds_now, "
	"       to_char(max(v.hi), 'YYYY-MM-DD HH24:MI TZ') AS until, "
	"       COALESCE(extract(epoch FROM max(v.hi) - now()), 0) AS ahead_seconds "
	"  FROM timed t LEFT JOIN v ON v.parent = t.oid GROUP BY t.oid ORDER BY 1";

/* Maintenance errors recorded by the partition manager, per registered set. */
static const char *set_errors_sql =
	"SELECT parent::text, last_error FROM elfsofa.partition_sets "
	" WHERE last_error IS NOT NULL ORDER BY 1";

static void
check_partitions(Report *r)
{
	StringInfoData detail;
	CheckStatus st = CHECK_OK;
	int			ntables;

	initStringInfo(&detail);
	run(partitions_sql, 0, NULL, NULL);
	ntables = (int) SPI_processed;

	metric_family(r, "elfsofa_partitions_ahead", "Partitions wholly ahead of now per time-partitioned table.");
	for (uint64 i = 0; i < SPI_processed; i++)
		metric(r, "elfsofa_partitions_ahead", "table", col(i, 1), col_num(i, 3));
	metric_family(r, "elfsofa_partition_coverage_seconds", "Seconds from now to the upper bound of the last partition.");
	for (uint64 i = 0; i < SPI_processed; i++)
		metric(r, "elfsofa_partition_coverage_seconds", "table", col(i, 1), col_num(i, 6));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		const char *tbl = col(i, 1);
		bool		holds_now = strcmp(col(i, 4), "t") == 0;
		int			ahead = (int) col_num(i, 3);

		if (!holds_now)
		{
			st = CHECK_FAIL;
			appendStringInfo(&detail, "%s%s: no partition holds now (inserts fail); last ends %s",
							 detail.len ? "; " : "", tbl, col(i, 5) ? col(i, 5) : "(no partitions)");
		}
		else if (ahead < es_guc_health_partitions_ahead)
		{
			st = Max(st, CHECK_WARN);
			appendStringInfo(&detail, "%s%s: %d partition%s ahead of now, want %d; last ends %s",
							 detail.len ? "; " : "", tbl, ahead, ahead == 1 ? "" : "s",
							 es_guc_health_partitions_ahead, col(i, 5) ? col(i, 5) : "never");
		}
	}
	run(set_errors_sql, 0, NULL, NULL);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		st = Max(st, CHECK_WARN);
		appendStringInfo(&detail, "%s%s: last maintenance failed: %s",
						 detail.len ? "; " : "", col(i, 1), col(i, 2));
	}
	metric_family(r, "elfsofa_partition_maintenance_errors", "Registered partition sets whose last maintenance run failed.");
	metric(r, "elfsofa_partition_maintenance_errors", NULL, NULL, (double) SPI_processed);
	if (st == CHECK_OK)
		appendStringInfo(&detail, "%d time-partitioned tables, each with at least %d partitions ahead of now",
						 ntables, es_guc_health_partitions_ahead);
	add_check(r, "partitions", st, detail.data);
}

/* Rows of system_logs older than the retention: the archive job is behind. */
static EsPlan archive_plan = {
	"SELECT count(*), COALESCE(extract(epoch FROM now() - min(created_at)), 0), "
	"       to_char(min(created_at), 'YYYY-MM-DD HH24:MI TZ') "
	"  FROM elfsofa.system_logs WHERE created_at < now() - make_interval(days => $1)",
	1, {INT4OID}
};

/* system_logs retention in days as the partition manager has it, else the setting. */
static int
log_retention_days(void)
{
	int			days = es_guc_health_log_retention_days;

	run("SELECT ceil(extract(epoch FROM retention) / 86400)::int FROM elfsofa.partition_sets "
		" WHERE parent = 'elfsofa.system_logs'::regclass AND retention IS NOT NULL", 0, NULL, NULL);
	if (SPI_processed > 0 && col(0, 1) != NULL)
		days = (int) col_num(0, 1);
	return days;
}

static void
check_archiving(Report *r)
{
	int			retention = log_retention_days();
	Datum		arg = Int32GetDatum(retention);
	double		rows,
				oldest,
				overdue;
	CheckStatus st = CHECK_OK;

	es_exec(&archive_plan, &arg, NULL, true, 0);
	rows = col_num(0, 1);
	oldest = col_num(0, 2);
	overdue = rows > 0 ? oldest - (double) retention * 86400 : 0;
	metric_family(r, "elfsofa_archive_overdue_rows", "system_logs rows older than their retention.");
	metric(r, "elfsofa_archive_overdue_rows", NULL, NULL, rows);
	metric_family(r, "elfsofa_archive_overdue_seconds", "How long the oldest such row has been due for archiving.");
	metric(r, "elfsofa_archive_overdue_seconds", NULL, NULL, overdue);
	if (rows > 0 && overdue > (double) es_guc_health_archive_grace_hours * 3600)
		st = CHECK_WARN;
	if (rows == 0)
		add_check(r, "archiving", st,
				  psprintf("no system_logs rows older than %d days", retention));
	else
		add_check(r, "archiving", st,
				  psprintf("%.0f system_logs rows older than %d days, oldest from %s",
						   rows, retention, col(0, 3)));
}

/* Per consumer: age of the first event after its cursor (0 when it is caught up). */
static const char *consumers_sql =
	"SELECT c.name, COALESCE(extract(epoch FROM now() - "
	"         (SELECT e.created_at FROM elfsofa.events e WHERE e.id > c.last_id ORDER BY e.id LIMIT 1)), 0) "
	"  FROM elfsofa.event_consumers c ORDER BY c.name";

static void
check_event_consumers(Report *r)
{
	StringInfoData detail;
	CheckStatus st = CHECK_OK;
	double		worst = 0;

	metric_family(r, "elfsofa_event_consumer_lag_seconds", "Age of the oldest event a consumer has not yet consumed.");
	initStringInfo(&detail);
	run(consumers_sql, 0, NULL, NULL);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		double		lag = col_num(i, 2);
		CheckStatus cs = CHECK_OK;

		metric(r, "elfsofa_event_consumer_lag_seconds", "consumer", col(i, 1), lag);
		if (lag > (double) es_guc_health_event_lag_fail_seconds)
			cs = CHECK_FAIL;
		else if (lag > (double) es_guc_health_event_lag_seconds)
			cs = CHECK_WARN;
		if (cs != CHECK_OK)
			appendStringInfo(&detail, "%s%s is %.0f s behind", detail.len ? "; " : "", col(i, 1), lag);
		st = Max(st, cs);
		worst = Max(worst, lag);
	}
	if (SPI_processed == 0)
		appendStringInfoString(&detail, "no consumers registered");
	else if (st == CHECK_OK)
		appendStringInfo(&detail, "%d consumer%s, oldest unconsumed event %.0f s old",
						 (int) SPI_processed, SPI_processed == 1 ? "" : "s", worst);
	add_check(r, "event_consumers", st, detail.data);
}

static const char *dead_letters_sql =
	"SELECT (SELECT count(*) FROM elfsofa.notifications WHERE status = 'dead'), "
	"       (SELECT count(*) FROM elfsofa.notifications WHERE status IN ('pending', 'processing')), "
	"       (SELECT string_agg(id::text, ', ' ORDER BY id) FROM "
	"          (SELECT id FROM elfsofa.notifications WHERE status = 'dead' ORDER BY id DESC LIMIT 5) d)";

static void
check_dead_letters(Report *r)
{
	double		dead,
				pending;

	metric_family(r, "elfsofa_notifications_dead", "Notifications that exhausted their retries.");
	run(dead_letters_sql, 0, NULL, NULL);
	dead = col_num(0, 1);
	pending = col_num(0, 2);
	metric(r, "elfsofa_notifications_dead", NULL, NULL, dead);
	metric_family(r, "elfsofa_notifications_pending", "Notifications waiting to be sent or being sent.");
	metric(r, "elfsofa_notifications_pending", NULL, NULL, pending);
	add_check(r, "dead_letters",
			  es_guc_health_dead_letters > 0 && dead >= es_guc_health_dead_letters ? CHECK_WARN : CHECK_OK,
			  dead == 0 ? psprintf("no dead-lettered notifications, %.0f pending", pending)
			  : psprintf("%.0f dead-lettered notification%s (latest ids %s), %.0f pending",
						 dead, dead == 1 ? "" : "s", col(0, 3), pending));
}

/* pg_cron: elfsofa jobs, failed runs in the last day, and jobs gone silent. */
static const char *cron_sql =
	"SELECT j.jobname, j.active, "
	"       (SELECT count(*) FROM cron.job_run_details d WHERE d.jobid = j.jobid AND d.status = 'failed' "
	"           AND d.start_time > now() - interval '24 hours') AS failed, "
	"       (SELECT extract(epoch FROM now() - max(d.start_time)) FROM cron.job_run_details d "
	"         WHERE d.jobid = j.jobid) AS silent_seconds "
	"  FROM cron.job j "
	" WHERE j.jobname LIKE 'elfsofa-%' "
	"   AND (j.database = current_database() OR j.jobname = 'elfsofa-cron-history') "
	" ORDER BY j.jobname";

static void
check_cron(Report *r)
{
	StringInfoData detail;
	CheckStatus st = CHECK_OK;
	double		failed = 0;
	int			silent = 0;

	metric_family(r, "elfsofa_cron_failed_runs", "Failed runs of elfsofa pg_cron jobs in the last 24 hours.");
	if (!OidIsValid(get_namespace_oid("cron", true)) || !relation_exists("cron", "job_run_details"))
	{
		add_check(r, "cron", CHECK_SKIPPED, "pg_cron is not installed in this database");
		return;
	}
	initStringInfo(&detail);
	run(cron_sql, 0, NULL, NULL);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		double		f = col_num(i, 3);

		failed += f;
		if (f > 0)
			appendStringInfo(&detail, "%s%s failed %.0f time%s in 24 h", detail.len ? "; " : "",
							 col(i, 1), f, f == 1 ? "" : "s");
		if (strcmp(col(i, 2), "t") == 0 && col(i, 4) != NULL &&
			col_num(i, 4) > (double) es_guc_health_cron_silence_minutes * 60)
		{
			silent++;
			appendStringInfo(&detail, "%s%s has not run for %.0f minutes", detail.len ? "; " : "",
							 col(i, 1), col_num(i, 4) / 60);
		}
	}
	metric(r, "elfsofa_cron_failed_runs", NULL, NULL, failed);
	if (SPI_processed == 0)
	{
		st = CHECK_WARN;
		appendStringInfoString(&detail, "no elfsofa jobs are scheduled (run elfsofa.schedule_maintenance())");
	}
	else if (failed > 0 || silent > 0)
		st = CHECK_WARN;
	else
		appendStringInfo(&detail, "%d elfsofa jobs, no failed or missing runs", (int) SPI_processed);
	add_check(r, "cron", st, detail.data);
}

static EsPlan low_stock_plan = {
	"SELECT p.sku, COALESCE(sum(sl.on_hand - sl.reserved), 0) AS available, p.low_stock_threshold "
	"  FROM elfsofa.products p LEFT JOIN elfsofa.stock_levels sl ON sl.product_id = p.id "
	" WHERE p.is_active AND p.low_stock_threshold > 0 "
	" GROUP BY p.id HAVING COALESCE(sum(sl.on_hand - sl.reserved), 0) < p.low_stock_threshold "
	" ORDER BY 2, 1",
	0, {}
};

static void
check_low_stock(Report *r)
{
	StringInfoData detail;
	uint64		n;
	int			out = 0;

	es_exec(&low_stock_plan, NULL, NULL, true, 0);
	n = SPI_processed;
	initStringInfo(&detail);
	for (uint64 i = 0; i < n; i++)
	{
		if (col_num(i, 2) <= 0)
			out++;
		if (i < 10)
			appendStringInfo(&detail, "%s%s %s/%s", i ? ", " : ": ", col(i, 1), col(i, 2), col(i, 3));
	}
	if (n > 10)
		appendStringInfo(&detail, ", and %d more", (int) (n - 10));
	metric_family(r, "elfsofa_low_stock_products", "Active products whose available stock is below their low-stock threshold.");
	metric(r, "elfsofa_low_stock_products", NULL, NULL, (double) n);
	metric_family(r, "elfsofa_out_of_stock_products", "Active products with nothing available.");
	metric(r, "elfsofa_out_of_stock_products", NULL, NULL, out);
	add_check(r, "low_stock",
			  es_guc_health_low_stock_products > 0 && n >= (uint64) es_guc_health_low_stock_products ? CHECK_WARN : CHECK_OK,
			  n == 0 ? "no product is below its low-stock threshold"
			  : psprintf("%d product%s below the low-stock threshold (available/threshold)%s",
						 (int) n, n == 1 ? "" : "s", detail.data));
}

/* Other client sessions of this database only; clock_timestamp so a long health() transaction does not skew. */
static EsPlan sessions_plan = {
	"SELECT count(*) FILTER (WHERE state = 'active' AND clock_timestamp() - query_start > make_interval(secs => $1)), "
	"       count(*) FILTER (WHERE state LIKE 'idle in transaction%' AND clock_timestamp() - state_change > make_interval(secs => $2)), "
	"       string_agg(pid::text, ', ' ORDER BY pid) FILTER (WHERE state = 'active' AND clock_timestamp() - query_start > make_interval(secs => $1)), "
	"       string_agg(pid::text, ', ' ORDER BY pid) FILTER (WHERE state LIKE 'idle in transaction%' AND clock_timestamp() - state_change > make_interval(secs => $2)), "
	"       COALESCE(max(extract(epoch FROM clock_timestamp() - xact_start)), 0) "
	"  FROM pg_stat_activity "
	" WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
	2, {INT4OID, INT4OID}
};

static void
check_sessions(Report *r)
{
	Datum		args[2];
	double		lng,
				idle;

	args[0] = Int32GetDatum(es_guc_health_long_query_seconds);
	args[1] = Int32GetDatum(es_guc_health_idle_in_transaction_seconds);
	es_exec(&sessions_plan, args, NULL, true, 0);
	lng = col_num(0, 1);
	idle = col_num(0, 2);
	metric_family(r, "elfsofa_long_running_sessions", "Statements running longer than elfsofa.health_long_query_seconds.");
	metric(r, "elfsofa_long_running_sessions", NULL, NULL, lng);
	metric_family(r, "elfsofa_idle_in_transaction_sessions", "Sessions idle in a transaction longer than elfsofa.health_idle_in_transaction_seconds.");
	metric(r, "elfsofa_idle_in_transaction_sessions", NULL, NULL, idle);
	metric_family(r, "elfsofa_oldest_transaction_seconds", "Age of the oldest open transaction of another session.");
	metric(r, "elfsofa_oldest_transaction_seconds", NULL, NULL, col_num(0, 5));
	if (lng == 0 && idle == 0)
		add_check(r, "sessions", CHECK_OK,
				  psprintf("no statement over %d s, no session idle in transaction over %d s",
						   es_guc_health_long_query_seconds, es_guc_health_idle_in_transaction_seconds));
	else
		add_check(r, "sessions", CHECK_WARN,
				  psprintf("%.0f running over %d s%s%s%s, %.0f idle in transaction over %d s%s%s%s",
						   lng, es_guc_health_long_query_seconds,
						   lng ? " (pid " : "", lng ? col(0, 3) : "", lng ? ")" : "",
						   idle, es_guc_health_idle_in_transaction_seconds,
						   idle ? " (pid " : "", idle ? col(0, 4) : "", idle ? ")" : ""));
}

static EsPlan dbsize_plan = {
	"SELECT pg_database_size(current_database()), pg_size_pretty(pg_database_size(current_database()))",
	0, {}
};

static void
check_database_size(Report *r)
{
	double		bytes;
	int			limit = es_guc_health_database_size_mb;

	es_exec(&dbsize_plan, NULL, NULL, true, 0);
	bytes = col_num(0, 1);
	metric_family(r, "elfsofa_database_size_bytes", "Size of the current database.");
	metric(r, "elfsofa_database_size_bytes", NULL, NULL, bytes);
	add_check(r, "database_size",
			  limit > 0 && bytes > (double) limit * 1024 * 1024 ? CHECK_WARN : CHECK_OK,
			  limit > 0 ? psprintf("%s of %d MB", col(0, 2), limit) : psprintf("%s (no limit set)", col(0, 2)));
}

/* Orders waiting for fulfilment (partial index orders_status_idx) and open carts: dashboard gauges, no verdict. */
static EsPlan shop_plan = {
	"SELECT s.status, (SELECT count(*) FROM elfsofa.orders o WHERE o.status = s.status) "
	"  FROM unnest(ARRAY['pending', 'confirmed', 'packed']) AS s(status) "
	"UNION ALL SELECT 'carts', count(*) FROM elfsofa.carts WHERE status = 'open'",
	0, {}
};

static void
shop_metrics(Report *r)
{
	es_exec(&shop_plan, NULL, NULL, true, 0);
	metric_family(r, "elfsofa_orders_open", "Orders waiting for fulfilment, by status.");
	for (uint64 i = 0; i < SPI_processed; i++)
		if (strcmp(col(i, 1), "carts") != 0)
			metric(r, "elfsofa_orders_open", "status", col(i, 1), col_num(i, 2));
	metric_family(r, "elfsofa_carts_open", "Open shopping carts.");
	for (uint64 i = 0; i < SPI_processed; i++)
		if (strcmp(col(i, 1), "carts") == 0)
			metric(r, "elfsofa_carts_open", NULL, NULL, col_num(i, 2));
}

/*
 * The event publisher of this database (src/events/launcher.c, through
 * publisher_status()): warn when it cannot get a background worker, so events
 * are NOTIFYed at commit.
 */
static EsPlan publisher_plan = {
	"SELECT s->>'publisher', (s->>'publishers')::boolean, current_setting('elfsofa.publisher')::boolean,"
	" current_setting('max_worker_processes') FROM elfsofa.publisher_status() s",
	0, {}
};

static void
check_publisher(Report *r)
{
	const char *state;

	es_exec(&publisher_plan, NULL, NULL, true, 1);
	state = col(0, 1);
	if (strcmp(col(0, 2), "t") != 0)
		add_check(r, "event_publisher", CHECK_SKIPPED,
				  "no background publisher (elfsofa not in shared_preload_libraries, or elfsofa.database is empty): writers NOTIFY at commit");
	else if (strcmp(state, "no_worker") == 0)
		add_check(r, "event_publisher", CHECK_WARN,
				  psprintf("no background worker left for this database's publisher (max_worker_processes = %s): writers NOTIFY at commit",
						   col(0, 4)));
	else if (strcmp(state, "stopped") == 0)
		add_check(r, "event_publisher", CHECK_WARN, "the publisher could not start (see the server log): writers NOTIFY at commit");
	else if (strcmp(state, "running") == 0)
		add_check(r, "event_publisher", CHECK_OK, "a background publisher NOTIFYs this database's events");
	else if (strcmp(state, "disabled") == 0 || strcmp(col(0, 3), "t") != 0)
		add_check(r, "event_publisher", CHECK_OK, "elfsofa.publisher is off here: writers NOTIFY at commit");
	else
		add_check(r, "event_publisher", CHECK_OK,
				  psprintf("publisher %s: writers NOTIFY at commit until it runs", state));
}

/* Runs every check; r's buffers must live in the caller's context. */
static void
collect(Report *r)
{
	initStringInfo(&r->checks);
	initStringInfo(&r->metrics);
	initStringInfo(&r->check_lines);
	r->nchecks = 0;
	r->worst = CHECK_OK;

	SPI_connect();
	check_partitions(r);
	check_archiving(r);
	check_event_consumers(r);
	check_dead_letters(r);
	check_cron(r);
	check_low_stock(r);
	check_sessions(r);
	check_database_size(r);
	check_publisher(r);			/* (last: dashboards index the checks by position) */
	shop_metrics(r);
	SPI_finish();
}

static const char *
overall(Report *r)
{
	return r->worst == CHECK_FAIL ? "failing" : r->worst == CHECK_WARN ? "degraded" : "ok";
}

/* elfsofa.health() returns {"status", "checks": [{"name", "status", "detail"}]} */
Datum
elfsofa_health(PG_FUNCTION_ARGS)
{
	Report		r;
	StringInfoData out;

	collect(&r);
	initStringInfo(&out);
	appendStringInfo(&out, "{\"status\": \"%s\", \"checks\": [%s]}", overall(&r), r.checks.data);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/* elfsofa.metrics() returns the same figures in Prometheus text format */
Datum
elfsofa_metrics(PG_FUNCTION_ARGS)
{
	Report		r;
	StringInfoData out;

	collect(&r);
	initStringInfo(&out);
	appendStringInfo(&out,
					 "# HELP elfsofa_health_status Overall health: 0 ok, 1 degraded, 2 failing.\n"
					 "# TYPE elfsofa_health_status gauge\n"
					 "elfsofa_health_status %d\n"
					 "# HELP elfsofa_health_check_status Per check: -1 skipped, 0 ok, 1 warn, 2 fail.\n"
					 "# TYPE elfsofa_health_check_status gauge\n"
					 "%s%s",
					 (int) r.worst, r.check_lines.data, r.metrics.data);
	PG_RETURN_TEXT_P(cstring_to_text(out.data));
}

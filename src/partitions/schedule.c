/*
 * schedule.c — schedule_maintenance() / unschedule_maintenance(): the pg_cron
 * jobs that keep elfsofa tidy.
 *
 * pg_cron lives in one database (cron.database_name) while elfsofa may be
 * installed in another.  In pg_cron's own database the jobs are registered
 * through SPI; from any other database we open a short libpq connection to
 * pg_cron's database on this same server (socket directory cron.host, or
 * unix_socket_directories, and our port, as the current user) and call
 * cron.schedule_in_database there, so the jobs run in our database.
 * cron.schedule_in_database upserts by job name, so re-running updates jobs
 * and never duplicates them.
 */
#include "partitions/partitions.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"

PG_FUNCTION_INFO_V1(elfsofa_schedule_maintenance);
PG_FUNCTION_INFO_V1(elfsofa_unschedule_maintenance);

#define ES_HISTORY_JOB "elfsofa-cron-history"

/* Where pg_cron keeps its jobs; raises 55000 with a hint when pg_cron is not loaded. */
static const char *
cron_database(void)
{
	const char *db = GetConfigOption("cron.database_name", true, false);

	if (db == NULL || db[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron is not available"),
				 errdetail("Setting cron.database_name is not defined, so pg_cron is not loaded in this server."),
				 errhint("Add pg_cron to shared_preload_libraries, set cron.database_name, restart the server, "
						 "and run CREATE EXTENSION pg_cron in that database.")));
	return db;
}

static void
no_cron_extension(const char *db)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pg_cron is not installed"),
			 errdetail("Database \"%s\" (cron.database_name) has no extension pg_cron.", db),
			 errhint("Run CREATE EXTENSION pg_cron in database \"%s\".", db)));
}

/* A connection to pg_cron's database on this server, or an error saying why not. */
static PGconn *
cron_connect(const char *db)
{
	const char *host = GetConfigOption("cron.host", true, false);
	const char *keys[6];
	const char *vals[6];
	char		port[16];
	PGconn	   *conn;

	if (host == NULL || host[0] == '\0' || strcmp(host, "localhost") == 0)
	{
		/* first socket directory, else TCP localhost */
		char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
		char	   *comma = strchr(dirs, ',');

		if (comma)
			*comma = '\0';
		host = dirs[0] ? dirs : "localhost";
	}
	snprintf(port, sizeof(port), "%d", PostPortNumber);
	keys[0] = "host";
	vals[0] = host;
	keys[1] = "port";
	vals[1] = port;
	keys[2] = "dbname";
	vals[2] = db;
	keys[3] = "user";
	vals[3] = GetUserNameFromId(GetUserId(), false);
	keys[4] = "application_name";
	vals[4] = "elfsofa schedule_maintenance";
	keys[5] = NULL;
	vals[5] = NULL;
	conn = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = pstrdup(PQerrorMessage(conn));

		PQfinish(conn);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not reach pg_cron's database \"%s\"", db),
				 errdetail("Connecting to %s port %s as \"%s\" failed: %s", host, port, vals[3], msg),
				 errhint("Allow local connections for this user to database \"%s\" (pg_hba.conf), "
						 "or run elfsofa.schedule_maintenance() where elfsofa and pg_cron share a database.", db)));
	}
	return conn;
}

/* Runs one parameterised query on the cron connection; rethrows its error with its SQLSTATE. */
static PGresult *
cron_remote(PGconn *conn, const char *db, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		char	   *msg = pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
								  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(conn));
		int			code = state && strlen(state) == 5 ?
			MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]) : ERRCODE_INTERNAL_ERROR;

		PQclear(res);
		PQfinish(conn);
		if (code == ERRCODE_UNDEFINED_FUNCTION || code == ERRCODE_INVALID_SCHEMA_NAME ||
			code == ERRCODE_UNDEFINED_TABLE)
			no_cron_extension(db);
		ereport(ERROR,
				(errcode(code),
				 errmsg("pg_cron refused the request: %s", msg)));
	}
	return res;
}

typedef struct CronJob
{
	const char *name;
	const char *schedule;
	const char *command;
	const char *database;
} CronJob;

static EsPlan local_schedule_plan = {
	"SELECT cron.schedule_in_database($1, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

static void
check_schedule(FunctionCallInfo fcinfo, int argno, const char *argname, const char **out, const char *dflt)
{
	if (PG_ARGISNULL(argno))
	{
		*out = dflt;
		return;
	}
	*out = es_require_text(fcinfo, argno, argname, 100);
}

/* elfsofa.schedule_maintenance(maintenance_schedule, daily_schedule, keep_history) */
Datum
elfsofa_schedule_maintenance(PG_FUNCTION_ARGS)
{
	const char *crondb = cron_database();
	char	   *mydb = get_database_name(MyDatabaseId);
	const char *maint_sched,
			   *daily_sched;
	char	   *keep;
	CronJob		jobs[3];
	StringInfoData res;
	bool		local = strcmp(crondb, mydb) == 0;
	PGconn	   *conn = NULL;

	check_schedule(fcinfo, 0, "maintenance_schedule", &maint_sched, "17 * * * *");
	check_schedule(fcinfo, 1, "daily_schedule", &daily_sched, "37 3 * * *");
	if (PG_ARGISNULL(2))
		keep = "14 days";
	else
	{
		Interval   *iv = PG_GETARG_INTERVAL_P(2);
		Interval	minimum;

		memset(&minimum, 0, sizeof(minimum));
		minimum.day = 1;
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv), IntervalPGetDatum(&minimum))) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("keep_history must be at least 1 day"),
					 errdetail("Argument \"keep_history\" was %s.",
							   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv))))));
		/* as whole seconds, so the command text does not depend on IntervalStyle */
		keep = psprintf("%.0f seconds",
						DatumGetFloat8(DirectFunctionCall2(interval_part, CStringGetTextDatum("epoch"),
														   IntervalPGetDatum(iv))));
	}

	jobs[0].name = psprintf("elfsofa-maintenance-%s", mydb);
	jobs[0].schedule = maint_sched;
	jobs[0].command = "SELECT elfsofa.run_maintenance()";
	jobs[0].database = mydb;
	jobs[1].name = psprintf("elfsofa-daily-%s", mydb);
	jobs[1].schedule = daily_sched;
	jobs[1].command = "SELECT elfsofa.daily_upkeep()";
	jobs[1].database = mydb;
	jobs[2].name = ES_HISTORY_JOB;
	jobs[2].schedule = "47 4 * * *";
	jobs[2].command = psprintf("DELETE FROM cron.job_run_details WHERE end_time < now() - interval %s",
							   quote_literal_cstr(keep));
	jobs[2].database = crondb;

	if (local)
	{
		SPI_connect();
		if (!OidIsValid(get_namespace_oid("cron", true)) ||
			SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'", true, 0) != SPI_OK_SELECT ||
			SPI_processed == 0)
			no_cron_extension(crondb);
	}
	else
		conn = cron_connect(crondb);

	initStringInfo(&res);
	appendStringInfoString(&res, "{\"cron_database\":");
	es_json_quote(&res, crondb);
	appendStringInfoString(&res, ",\"database\":");
	es_json_quote(&res, mydb);
	appendStringInfoString(&res, ",\"jobs\":[");
	for (int i = 0; i < 3; i++)
	{
		int64		jobid;

		if (local)
		{
			Datum		v[4];
			bool		isnull;

			v[0] = CStringGetTextDatum(jobs[i].name);
			v[1] = CStringGetTextDatum(jobs[i].schedule);
			v[2] = CStringGetTextDatum(jobs[i].command);
			v[3] = CStringGetTextDatum(jobs[i].database);
			es_exec(&local_schedule_plan, v, NULL, false, 0);
			jobid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		else
		{
			const char *params[4] = {jobs[i].name, jobs[i].schedule, jobs[i].command, jobs[i].database};
			PGresult   *r = cron_remote(conn, crondb, "SELECT cron.schedule_in_database($1, $2, $3, $4)", 4, params);

			jobid = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			PQclear(r);
		}
		if (i > 0)
			appendStringInfoChar(&res, ',');
		appendStringInfoString(&res, "{\"name\":");
		es_json_quote(&res, jobs[i].name);
		appendStringInfoString(&res, ",\"schedule\":");
		es_json_quote(&res, jobs[i].schedule);
		appendStringInfoString(&res, ",\"database\":");
		es_json_quote(&res, jobs[i].database);
		appendStringInfo(&res, ",\"jobid\":" INT64_FORMAT "}", jobid);
	}
	appendStringInfoString(&res, "]}");
	if (local)
		SPI_finish();
	else
		PQfinish(conn);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(res.data)));
}

/* Drops this database's jobs, and the shared history job once no elfsofa database is scheduled. */
#define UNSCHEDULE_SQL \
	"WITH gone AS (SELECT cron.unschedule(jobid) AS ok FROM cron.job WHERE jobname IN ($1, $2)), " \
	"hist AS (SELECT cron.unschedule(jobid) AS ok FROM cron.job WHERE jobname = '" ES_HISTORY_JOB "' " \
	"          AND NOT EXISTS (SELECT 1 FROM cron.job WHERE jobname LIKE 'elfsofa-maintenance-%' " \
	"                          AND jobname <> $1)) " \
	"SELECT (SELECT count(*) FROM gone WHERE ok) + (SELECT count(*) FROM hist WHERE ok)"

static EsPlan local_unschedule_plan = {UNSCHEDULE_SQL, 2, {TEXTOID, TEXTOID}};

/* elfsofa.unschedule_maintenance() returns how many jobs were removed */
Datum
elfsofa_unschedule_maintenance(PG_FUNCTION_ARGS)
{
	const char *crondb = cron_database();
	char	   *mydb = get_database_name(MyDatabaseId);
	char	   *n1 = psprintf("elfsofa-maintenance-%s", mydb);
	char	   *n2 = psprintf("elfsofa-daily-%s", mydb);
	int64		removed;

	if (strcmp(crondb, mydb) == 0)
	{
		Datum		v[2] = {CStringGetTextDatum(n1), CStringGetTextDatum(n2)};
		bool		isnull;

		SPI_connect();
		if (!OidIsValid(get_namespace_oid("cron", true)))
			no_cron_extension(crondb);
		es_exec(&local_unschedule_plan, v, NULL, false, 0);
		removed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
	}
	else
	{
		PGconn	   *conn = cron_connect(crondb);
		const char *params[2] = {n1, n2};
		PGresult   *r = cron_remote(conn, crondb, UNSCHEDULE_SQL, 2, params);

		removed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		PQfinish(conn);
	}
	PG_RETURN_INT32((int32) removed);
}

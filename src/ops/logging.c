/*
 * logging.c — elfsofa.log(level, message, context): the structured log the
 * seed's logger.info('Order processed', {...}) wrote, kept in system_logs
 * (partitioned by day, archived by the scheduled jobs).
 */
#include "ops/ops.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(elfsofa_log);

#define ES_MAX_LOG_MESSAGE	8000
#define ES_MAX_LOG_CONTEXT	65536

static const char *const log_levels[] = {"debug", "info", "warn", "error", "fatal"};

static EsPlan log_plan = {
	"INSERT INTO elfsofa.system_logs (level, message, context, actor) "
	"VALUES ($1, $2, $3, $4) RETURNING id",
	4, {TEXTOID, TEXTOID, JSONBOID, TEXTOID}
};

/* elfsofa.log(level, message, context) returns the id of the new system_logs row */
Datum
elfsofa_log(PG_FUNCTION_ARGS)
{
	char	   *level = es_require_text(fcinfo, 0, "level", 16);
	char	   *message = es_require_text(fcinfo, 1, "message", ES_MAX_LOG_MESSAGE);
	Jsonb	   *context = NULL;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		known = false;
	bool		isnull;
	int64		id;

	for (int i = 0; i < (int) lengthof(log_levels); i++)
		if (strcmp(level, log_levels[i]) == 0)
			known = true;
	if (!known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid log level"),
				 errdetail("Argument \"level\" was \"%s\".", level),
				 errhint("Levels are debug, info, warn, error and fatal.")));
	if (!PG_ARGISNULL(2))
	{
		context = PG_GETARG_JSONB_P(2);
		es_require_object(context, "context", ES_MAX_LOG_CONTEXT);
	}

	values[0] = CStringGetTextDatum(level);
	values[1] = CStringGetTextDatum(message);
	if (context)
		values[2] = JsonbPGetDatum(context);
	else
		values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	values[3] = CStringGetTextDatum(es_actor());

	SPI_connect();
	es_exec(&log_plan, values, nulls, false, 0);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	PG_RETURN_INT64(id);
}

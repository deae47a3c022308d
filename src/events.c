/*
 * events.c — the durable event outbox: business functions append events in
 * their own transaction with es_emit_event().
 */
#include "elfsofa.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static EsPlan emit_plan = {
	"INSERT INTO elfsofa.events (topic, key, data) VALUES ($1, $2, COALESCE($3, '{}'::jsonb)) RETURNING id",
	3, {TEXTOID, TEXTOID, JSONBOID}
};

int64
es_emit_event(const char *topic, const char *key, Jsonb *data)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;

	values[0] = CStringGetTextDatum(topic);
	if (key)
		values[1] = CStringGetTextDatum(key);
	else
		nulls[1] = 'n';
	if (data)
		values[2] = JsonbPGetDatum(data);
	else
		nulls[2] = 'n';
	es_exec(&emit_plan, values, nulls, false, 0);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * changes.c — change events for any table, and cache invalidation for the
 * catalog.
 *
 * elfsofa.change_event_trigger() is an AFTER ROW trigger in the manner of
 * contrib/tcn, but it writes a durable outbox event (so it reaches NOTIFY
 * through the publisher, and events_since replays it) and it fixes what tcn
 * lacks: schema-qualified table names, the new key on UPDATE (plus the old
 * one when it changed), and a size guard on the row it carries.
 *
 * Event data: {"op": "INSERT|UPDATE|DELETE", "table": "schema.table",
 *              "key": {col: value}, "old_key": {...} (UPDATE, key changed),
 *              "row": {...} | "row_truncated": true (beyond elfsofa.event_max_bytes)}
 * Event key: the key column's value as text; a JSON array of texts for a
 * composite key, in the primary key's column order.
 *
 * elfsofa.catalog_change_trigger() on products and categories also NOTIFYs
 * channel elfsofa_cache, one tag per notification (products:<sku>,
 * products:list, category:<slug>), and writes product.changed /
 * category.changed.  NOTIFY folds identical tags within a transaction, so a
 * bulk price update sends products:list once.
 */
#include "events/events.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

PG_FUNCTION_INFO_V1(es_change_event_trigger);
PG_FUNCTION_INFO_V1(es_catalog_change_trigger);
PG_FUNCTION_INFO_V1(es_enable_change_events);
PG_FUNCTION_INFO_V1(es_disable_change_events);

#define ES_CHANGE_TRIGGER	"elfsofa_change_events"

typedef struct EsChange
{
	const char *op;
	HeapTuple	tuple;			/* new row, or old row for DELETE */
	HeapTuple	old_tuple;		/* UPDATE only */
	TupleDesc	desc;
	int			nkeys;
	AttrNumber *keys;			/* in primary-key order, this relation's attnums */
} EsChange;

static EsPlan category_slug_plan = {
	"SELECT slug FROM elfsofa.categories WHERE id = $1",
	1, {INT4OID}
};

static EsPlan has_trigger_plan = {
	"SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = '" ES_CHANGE_TRIGGER "' AND NOT tgisinternal",
	1, {OIDOID}
};

/* Refuses to run as anything but an AFTER ROW trigger. */
static TriggerData *
es_check_trigger(FunctionCallInfo fcinfo, const char *name)
{
	TriggerData *td;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s can only be called as a trigger", name)));
	td = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired AFTER ... FOR EACH ROW", name)));
	return td;
}

/*
 * Key columns: the named one, else every primary-key column in the key's own
 * order (the same in every partition, whatever each one's physical column
 * order), with no limit on their number.
 */
static void
es_change_keys(Relation rel, const char *key_column, EsChange *c)
{
	c->nkeys = 0;
	if (key_column != NULL)
	{
		AttrNumber	att = get_attnum(RelationGetRelid(rel), key_column);

		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column of change events does not exist"),
					 errdetail("Table %s has no column \"%s\".", RelationGetRelationName(rel), key_column)));
		c->keys = palloc(sizeof(AttrNumber));
		c->keys[c->nkeys++] = att;
	}
	else
	{
		Oid			pk_oid;
		Relation	pk;

		list_free(RelationGetIndexList(rel));	/* fills in rd_pkindex */
		pk_oid = rel->rd_pkindex;
		if (!OidIsValid(pk_oid))
			return;
		pk = index_open(pk_oid, AccessShareLock);
		c->keys = palloc(sizeof(AttrNumber) * Max(1, pk->rd_index->indnkeyatts));
		for (int i = 0; i < pk->rd_index->indnkeyatts; i++)
			c->keys[c->nkeys++] = pk->rd_index->indkey.values[i];
		index_close(pk, AccessShareLock);
	}
}

/* A column's value as JSON: numbers and booleans bare, everything else a string. */
static void
es_append_json_value(StringInfo buf, HeapTuple tuple, TupleDesc desc, AttrNumber att)
{
	char	   *v = SPI_getvalue(tuple, desc, att);
	Oid			typ = SPI_gettypeid(desc, att);
	char		cat;
	bool		pref;

	if (v == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	get_type_category_preferred(getBaseType(typ), &cat, &pref);
	if (cat == TYPCATEGORY_NUMERIC && strcmp(v, "NaN") != 0 && strstr(v, "Infinity") == NULL)
		appendStringInfoString(buf, v);
	else if (cat == TYPCATEGORY_BOOLEAN)
		appendStringInfoString(buf, strcmp(v, "t") == 0 ? "true" : "false");
	else
		es_json_quote(buf, v);
}

/* {"col": value, ...} of the key columns of one row version. */
static char *
es_key_object(EsChange *c, HeapTuple tuple)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < c->nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		es_json_quote(&buf, SPI_fname(c->desc, c->keys[i]));
		appendStringInfoString(&buf, ": ");
		es_append_json_value(&buf, tuple, c->desc, c->keys[i]);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The event key: the single key value as text, or a JSON array of the values. */
static char *
es_key_text(EsChange *c)
{
	StringInfoData buf;

	if (c->nkeys == 0)
		return NULL;
	if (c->nkeys == 1)
		return SPI_getvalue(c->tuple, c->desc, c->keys[0]);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < c->nkeys; i++)
	{
		char	   *v = SPI_getvalue(c->tuple, c->desc, c->keys[i]);

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (v)
			es_json_quote(&buf, v);
		else
			appendStringInfoString(&buf, "null");
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* Schema-qualified name of the table a row belongs to: the root of a partitioned table. */
static char *
es_table_name(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);

	if (rel->rd_rel->relispartition)
	{
		List	   *ancestors = get_partition_ancestors(relid);

		if (ancestors != NIL)
			relid = llast_oid(ancestors);
	}
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

/* Builds the event data and writes the event; SPI must be connected. */
static void
es_write_change(Relation rel, const char *topic, EsChange *c)
{
	StringInfoData buf;
	char	   *key_obj = es_key_object(c, c->tuple);
	char	   *row;
	char	   *key;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"op\": ");
	es_json_quote(&buf, c->op);
	appendStringInfoString(&buf, ", \"table\": ");
	es_json_quote(&buf, es_table_name(rel));
	appendStringInfo(&buf, ", \"key\": %s", key_obj);
	if (c->old_tuple)
	{
		char	   *old_key = es_key_object(c, c->old_tuple);

		if (strcmp(old_key, key_obj) != 0)
			appendStringInfo(&buf, ", \"old_key\": %s", old_key);
	}
	row = TextDatumGetCString(DirectFunctionCall1(row_to_json,
												  heap_copy_tuple_as_datum(c->tuple, c->desc)));
	if (strlen(row) <= (size_t) es_guc_event_max_bytes)
		appendStringInfo(&buf, ", \"row\": %s}", row);
	else
	{
		ereport(WARNING,
				(errmsg("change event of %s %s keeps only the key", es_table_name(rel), key_obj),
				 errdetail("The row takes %zu bytes as JSON; elfsofa.event_max_bytes is %d.",
						   strlen(row), es_guc_event_max_bytes)));
		appendStringInfoString(&buf, ", \"row_truncated\": true}");
	}

	key = es_key_text(c);
	if (key != NULL && strlen(key) > ES_MAX_TEXT_LEN)
		key = NULL;
	es_emit_event(topic, key,
				  DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
}

/* Which row version an event describes, by trigger event. */
static void
es_change_from_trigger(TriggerData *td, EsChange *c)
{
	memset(c, 0, sizeof(*c));
	c->desc = RelationGetDescr(td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		c->op = "INSERT";
		c->tuple = td->tg_trigtuple;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		c->op = "UPDATE";
		c->tuple = td->tg_newtuple;
		c->old_tuple = td->tg_trigtuple;
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		c->op = "DELETE";
		c->tuple = td->tg_trigtuple;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("change events are written for INSERT, UPDATE and DELETE only")));
}

/* Writes one outbox event per changed row of any table. */
Datum
es_change_event_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = es_check_trigger(fcinfo, "change_event_trigger");
	Trigger    *tg = td->tg_trigger;
	EsChange	c;

	if (tg->tgnargs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("change_event_trigger needs the topic as its first argument"),
				 errhint("Attach it with elfsofa.enable_change_events().")));
	if (!es_guc_emit_events)
		return PointerGetDatum(NULL);
	es_change_from_trigger(td, &c);
	es_change_keys(td->tg_relation, tg->tgnargs > 1 ? tg->tgargs[1] : NULL, &c);
	SPI_connect();
	es_write_change(td->tg_relation, tg->tgargs[0], &c);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* One invalidation tag per NOTIFY, so consumers need not parse anything. */
static void
es_cache_tag(const char *prefix, const char *value)
{
	char	   *tag;

	if (value == NULL)
		return;
	tag = psprintf("%s%s", prefix, value);
	if (strlen(tag) < ES_NOTIFY_MAX_PAYLOAD)
		Async_Notify(ES_CACHE_CHANNEL, tag);
}

/* category:<slug> of the category a product row points at, if any. */
static void
es_category_tag(HeapTuple tuple, TupleDesc desc)
{
	int			att = SPI_fnumber(desc, "category_id");
	bool		isnull;
	Datum		id;

	if (att <= 0)
		return;
	id = SPI_getbinval(tuple, desc, att, &isnull);
	if (isnull)
		return;
	es_exec(&category_slug_plan, &id, NULL, true, 1);
	if (SPI_processed == 1)
		es_cache_tag("category:", SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

/* Cache invalidation and product.changed / category.changed for the catalog tables. */
Datum
es_catalog_change_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = es_check_trigger(fcinfo, "catalog_change_trigger");
	const char *relname = RelationGetRelationName(td->tg_relation);
	bool		is_product = strcmp(relname, "products") == 0;
	const char *key_col = is_product ? "sku" : "slug";
	EsChange	c;

	if (!is_product && strcmp(relname, "categories") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog_change_trigger is only for elfsofa.products and elfsofa.categories"),
				 errdetail("It was fired for table \"%s\".", relname)));
	es_change_from_trigger(td, &c);
	es_change_keys(td->tg_relation, key_col, &c);

	SPI_connect();
	if (is_product)
	{
		es_cache_tag("products:", SPI_getvalue(c.tuple, c.desc, c.keys[0]));
		if (c.old_tuple)
			es_cache_tag("products:", SPI_getvalue(c.old_tuple, c.desc, c.keys[0]));
		es_cache_tag("products:", "list");
		es_category_tag(c.tuple, c.desc);
		if (c.old_tuple)
			es_category_tag(c.old_tuple, c.desc);
	}
	else
	{
		es_cache_tag("category:", SPI_getvalue(c.tuple, c.desc, c.keys[0]));
		if (c.old_tuple)
			es_cache_tag("category:", SPI_getvalue(c.old_tuple, c.desc, c.keys[0]));
		es_cache_tag("products:", "list");
	}
	if (es_guc_emit_events)
		es_write_change(td->tg_relation, is_product ? "product.changed" : "category.changed", &c);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* <table>.changed, with the table name folded into the topic alphabet. */
static char *
es_default_topic(const char *relname)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const char *p = relname; *p; p++)
	{
		char		ch = *p;

		if (ch >= 'A' && ch <= 'Z')
			ch = ch - 'A' + 'a';
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
			ch = '_';
		appendStringInfoChar(&buf, ch);
	}
	appendStringInfoString(&buf, ".changed");
	return buf.data;
}

/* The tbl argument, which must be a table (partitioned or not). */
static Relation
es_open_target(FunctionCallInfo fcinfo)
{
	Relation	rel;

	es_arg_not_null(fcinfo, 0, "tbl");
	rel = es_open_relation_arg(PG_GETARG_OID(0), "tbl", AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("change events can only be enabled on tables"),
				 errdetail("\"%s\" is not a table.", RelationGetRelationName(rel))));
	return rel;
}

/* Attaches the change trigger; replaces an earlier one so the topic can be changed. */
Datum
es_enable_change_events(PG_FUNCTION_ARGS)
{
	Relation	rel = es_open_target(fcinfo);
	char	   *qname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel));
	char	   *topic;
	StringInfoData sql;
	EsChange	c;
	Oid			relid;
	Datum		arg;

	if (strcmp(get_namespace_name(RelationGetNamespace(rel)), "elfsofa") == 0 &&
		(strcmp(RelationGetRelationName(rel), "events") == 0 ||
		 strncmp(RelationGetRelationName(rel), "events_p", 8) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("change events cannot be enabled on the event outbox itself"),
				 errdetail("Argument \"tbl\" was %s.", qname)));
	es_change_keys(rel, NULL, &c);
	if (c.nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table has no primary key"),
				 errdetail("Table %s has no primary key to name the changed rows by.", qname),
				 errhint("Add a primary key first.")));
	topic = PG_ARGISNULL(1) ? es_default_topic(RelationGetRelationName(rel))
		: text_to_cstring(PG_GETARG_TEXT_PP(1));
	es_check_topic(topic);
	relid = RelationGetRelid(rel);
	relation_close(rel, AccessShareLock);

	initStringInfo(&sql);
	SPI_connect();
	arg = ObjectIdGetDatum(relid);
	es_exec(&has_trigger_plan, &arg, NULL, true, 1);
	if (SPI_processed > 0)
		appendStringInfo(&sql, "DROP TRIGGER " ES_CHANGE_TRIGGER " ON %s; ", qname);
	appendStringInfo(&sql, "CREATE TRIGGER " ES_CHANGE_TRIGGER " AFTER INSERT OR UPDATE OR DELETE ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION elfsofa.change_event_trigger(%s)",
					 qname, quote_literal_cstr(topic));
	if (SPI_execute(sql.data, false, 0) < 0)
		elog(ERROR, "elfsofa: could not create the change trigger on %s", qname);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(topic));
}

/* Drops the change trigger; false when there was none. */
Datum
es_disable_change_events(PG_FUNCTION_ARGS)
{
	Relation	rel = es_open_target(fcinfo);
	Oid			relid = RelationGetRelid(rel);
	char	   *qname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel));
	Datum		arg = ObjectIdGetDatum(relid);
	bool		had;

	relation_close(rel, AccessShareLock);
	SPI_connect();
	es_exec(&has_trigger_plan, &arg, NULL, true, 1);
	had = SPI_processed > 0;
	if (had && SPI_execute(psprintf("DROP TRIGGER " ES_CHANGE_TRIGGER " ON %s", qname), false, 0) < 0)
		elog(ERROR, "elfsofa: could not drop the change trigger on %s", qname);
	SPI_finish();
	PG_RETURN_BOOL(had);
}

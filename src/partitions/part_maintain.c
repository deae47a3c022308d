/*
 * part_maintain.c — the partition manager's SQL entry points and GUCs:
 * partition_table() registers a RANGE-partitioned table, run_maintenance()
 * keeps partitions premade ahead of now() and retires those past retention,
 * partition_reach() tells how far a table reaches.
 *
 * Each group (a set, or a leader with the sets that retire with it) runs in
 * its own subtransaction, so one failing group is recorded and the others go
 * on; a per-set advisory lock makes a concurrent run skip a set that is busy
 * instead of queueing behind it.  partition_sets is a
 * pg_extension_config_dump table.
 */
#include "partitions/partitions.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(elfsofa_partition_table);
PG_FUNCTION_INFO_V1(elfsofa_run_maintenance);
PG_FUNCTION_INFO_V1(elfsofa_partition_reach);

/* Advisory lock space for partition sets: key1 of pg_advisory_xact_lock(int, int). */
#define ES_PART_LOCK_KEY	0x656C6673

static int	es_lock_timeout_ms = 200;
int			part_lock_retries = 5;

void
es_partitions_init(void)
{
	DefineCustomIntVariable("elfsofa.maintenance_lock_timeout",
							"lock_timeout (ms) for each DDL step of partition maintenance.",
							"Range 1 to 60000. Maintenance gives up a step after this wait instead of queueing behind the shop; it retries elfsofa.maintenance_lock_retries times.",
							&es_lock_timeout_ms, 200, 1, 60000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.maintenance_lock_retries",
							"How many times partition maintenance retries a DDL step that hit its lock timeout.",
							"Range 0 to 100.",
							&part_lock_retries, 5, 0, 100,
							PGC_USERSET, 0, NULL, NULL, NULL);
}

static EsPlan upsert_plan = {
	"INSERT INTO elfsofa.partition_sets AS p (parent, control_column, part_interval, premake, retention, "
	"       retention_action, retire_with, time_zone, builtin) "
	"VALUES ($1::oid::regclass, $2, $3, $4, $5, $6, $7::oid::regclass, $8, $9) "
	"ON CONFLICT (parent) DO UPDATE SET control_column = EXCLUDED.control_column, "
	"       part_interval = EXCLUDED.part_interval, premake = EXCLUDED.premake, "
	"       retention = EXCLUDED.retention, retention_action = EXCLUDED.retention_action, "
	"       retire_with = EXCLUDED.retire_with "
	"RETURNING time_zone",
	9, {OIDOID, TEXTOID, INTERVALOID, INT4OID, INTERVALOID, TEXTOID, OIDOID, TEXTOID, BOOLOID}
};

static EsPlan leader_plan = {
	"SELECT retire_with::oid, part_interval FROM elfsofa.partition_sets WHERE parent::oid = $1",
	1, {OIDOID}
};

static EsPlan followers_plan = {
	"SELECT count(*) FROM elfsofa.partition_sets WHERE retire_with::oid = $1",
	1, {OIDOID}
};

static EsPlan mark_plan = {
	"UPDATE elfsofa.partition_sets p SET last_run = now(), last_error = m.err "
	"  FROM unnest($1::oid[], $2::text[]) AS m(parent, err) WHERE p.parent::oid = m.parent",
	2, {OIDARRAYOID, TEXTARRAYOID}
};

/* elfsofa.partition_table(parent, control_column, part_interval, premake, retention, retention_action, retire_with) */
Datum
elfsofa_partition_table(PG_FUNCTION_ARGS)
{
	Oid			parent;
	char	   *column;
	Interval   *iv;
	int32		premake;
	Interval   *retention = NULL;
	const char *action = "archive";
	Oid			leader = InvalidOid;
	PartSet		s;
	StringInfoData out;
	StringInfoData res;
	Datum		v[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			save_nestlevel;
	char	   *relname;

	es_arg_not_null(fcinfo, 0, "parent");
	parent = PG_GETARG_OID(0);
	column = es_require_text(fcinfo, 1, "control_column", NAMEDATALEN - 1);
	es_arg_not_null(fcinfo, 2, "part_interval");
	iv = PG_GETARG_INTERVAL_P(2);
	memset(&s, 0, sizeof(s));
	if (!part_parse_period(iv, &s.unit, &s.n))
		es_invalid_arg("unsupported partition interval",
				  psprintf("Argument \"part_interval\" was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv)))),
				  "Use 1 day, 1 week, 1 month or 1 year, or a whole multiple of one (e.g. 3 months).");
	es_arg_not_null(fcinfo, 3, "premake");
	premake = PG_GETARG_INT32(3);
	if (premake < 0 || premake > 1000)
		es_invalid_arg("premake must be between 0 and 1000",
				  psprintf("Argument \"premake\" was %d.", premake), NULL);
	if (!PG_ARGISNULL(4))
	{
		Interval	zero;

		retention = PG_GETARG_INTERVAL_P(4);
		memset(&zero, 0, sizeof(zero));
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(retention),
											  IntervalPGetDatum(&zero))) <= 0)
			es_invalid_arg("retention must be positive",
					  psprintf("Argument \"retention\" was %s.",
							   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(retention)))),
					  "Pass NULL to keep every partition.");
	}
	if (!PG_ARGISNULL(5))
	{
		action = text_to_cstring(PG_GETARG_TEXT_PP(5));
		if (strcmp(action, "archive") != 0 && strcmp(action, "drop") != 0)
			es_invalid_arg("retention_action must be archive or drop",
					  psprintf("Argument \"retention_action\" was \"%s\".", action), NULL);
	}
	if (!PG_ARGISNULL(6))
		leader = PG_GETARG_OID(6);

	s.keytype = part_check_parent(parent, column);
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(parent)), get_rel_name(parent));

	initStringInfo(&out);
	SPI_connect();
	if (OidIsValid(leader))
	{
		Datum		lv[1] = {ObjectIdGetDatum(leader)};
		bool		isnull;

		if (leader == parent)
			es_invalid_arg("a set cannot retire with itself",
					  psprintf("Arguments \"parent\" and \"retire_with\" were both %s.", relname), NULL);
		es_exec(&leader_plan, lv, NULL, true, 0);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ES_ERRCODE_NOT_FOUND),
					 errmsg("retire_with is not a registered partition set"),
					 errdetail("Argument \"retire_with\" (%s) is not in elfsofa.partition_sets.",
							   DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(leader)))),
					 errhint("Register the leader table first.")));
		SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			es_invalid_arg("retire_with must name a leader set",
					  "Argument \"retire_with\" itself retires with another set; link to that one.", NULL);
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
											  SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull),
											  IntervalPGetDatum(iv))) != 0)
			es_invalid_arg("retire_with must have the same interval",
					  "Sets retired together must share one schedule: the leader's part_interval differs.", NULL);
	}
	if (OidIsValid(leader))
	{
		Datum		fv[1] = {ObjectIdGetDatum(parent)};
		bool		isnull;

		es_exec(&followers_plan, fv, NULL, true, 0);
		if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) > 0)
			es_invalid_arg("a leader set cannot retire with another set",
					  psprintf("Other sets retire with %s.", relname), NULL);
	}

	v[0] = ObjectIdGetDatum(parent);
	v[1] = CStringGetTextDatum(column);
	v[2] = IntervalPGetDatum(iv);
	v[3] = Int32GetDatum(premake);
	if (retention)
		v[4] = IntervalPGetDatum(retention);
	else
		nulls[4] = 'n';
	v[5] = CStringGetTextDatum(action);
	if (OidIsValid(leader))
		v[6] = ObjectIdGetDatum(leader);
	else
		nulls[6] = 'n';
	v[7] = CStringGetTextDatum(pg_get_timezone_name(session_timezone));
	v[8] = BoolGetDatum(creating_extension);
	es_exec(&upsert_plan, v, nulls, false, 0);

	/* create ahead with these settings and the stored time zone (kept from the first registration) */
	s.parent = parent;
	s.control_column = column;
	s.interval = iv;
	s.premake = premake;
	s.time_zone = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("lock_timeout", psprintf("%d", es_lock_timeout_ms),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	part_create_ahead(&s, &out, false);
	AtEOXact_GUC(true, save_nestlevel);
	SPI_finish();

	initStringInfo(&res);
	appendStringInfoString(&res, "{\"parent\":");
	es_json_quote(&res, relname);
	appendStringInfo(&res, ",\"created\":[%s]}", out.data);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(res.data)));
}

/* Takes the set's advisory lock without waiting; false when another run holds it. */
static bool
try_lock_set(Oid parent)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, ES_PART_LOCK_KEY, (uint32) parent, 2);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Creates ahead for the sets of one group (a leader and its followers) in a
 * subtransaction and as one step: making a leader's partition locks the
 * tables that reference it (orders: payments, lines) and a follower's locks
 * the leader (lines: orders), so only one retry unit for all of them lets a
 * lock timeout give every one of those locks back.  outs[k]/counts[k] get
 * what was made for the k-th set; returns the error message or NULL.
 */
static char *
group_create(List *group, StringInfo *outs, int *counts)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char	   *volatile err = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		List	   *nps = NIL;
		List	   *todo = NIL;
		ListCell   *lc;
		int			k = 0;

		foreach(lc, group)
		{
			PartSet    *s = lfirst(lc);
			NewParts   *np;

			part_resolve_keytype(s);
			np = part_plan_ahead(s, true);
			nps = lappend(nps, np);
			if (np->parts != NIL)
				todo = lappend(todo, np);
		}
		if (todo != NIL)
			part_make_partitions(todo);
		foreach(lc, nps)
		{
			counts[k] = part_finish_ahead((NewParts *) lfirst(lc), outs[k]);
			k++;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata = part_subxact_abort(oldcxt, oldowner);

		for (int k = 0; k < list_length(group); k++)
		{
			resetStringInfo(outs[k]);
			counts[k] = 0;
		}
		err = psprintf("create: %s (SQLSTATE %s)", edata->message, unpack_sql_state(edata->sqlerrcode));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return err;
}

/* The work of a group's retire step; starts over from scratch on a retry. */
typedef struct RetireStep
{
	List	   *group;
	StringInfo	out;
	int			outlen;
	int			n;
} RetireStep;

static void
retire_work(void *arg)
{
	RetireStep *st = arg;

	st->out->len = st->outlen;
	st->out->data[st->outlen] = '\0';
	st->n = 0;
	/* followers (lines) first, leader (orders) last */
	for (int i = list_length(st->group) - 1; i >= 0; i--)
	{
		PartSet    *s = list_nth(st->group, i);

		part_resolve_keytype(s);
		st->n += part_retire_old(s, st->out);
	}
}

/*
 * Retires for the sets of one group in a subtransaction and as one step (one
 * retry unit, like group_create); returns the error message or NULL.
 */
static char *
group_retire(List *group, StringInfo out, int *count)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char	   *volatile err = NULL;
	RetireStep *st = palloc0(sizeof(RetireStep));

	st->group = group;
	st->out = out;
	st->outlen = out->len;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		part_run_with_retry(retire_work, st);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		*count += st->n;
	}
	PG_CATCH();
	{
		ErrorData  *edata = part_subxact_abort(oldcxt, oldowner);

		out->len = st->outlen;
		out->data[st->outlen] = '\0';
		err = psprintf("retire: %s (SQLSTATE %s)", edata->message, unpack_sql_state(edata->sqlerrcode));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return err;
}

/* elfsofa.run_maintenance(parent regclass DEFAULT NULL) returns what it did as jsonb */
Datum
elfsofa_run_maintenance(PG_FUNCTION_ARGS)
{
	Oid			only = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	List	   *sets;
	StringInfoData res;
	int			total_created = 0,
				total_retired = 0,
				errors = 0,
				skipped = 0;
	int			save_nestlevel;
	int			i = 0;
	bool		first = true;
	MemoryContext loopcxt;
	Datum	   *mark_oids;
	Datum	   *mark_errs;
	bool	   *mark_nulls;
	int			nmarks = 0;

	initStringInfo(&res);
	SPI_connect();
	sets = part_load_sets(only);
	mark_oids = palloc0(sizeof(Datum) * (list_length(sets) + 1));
	mark_errs = palloc0(sizeof(Datum) * (list_length(sets) + 1));
	mark_nulls = palloc0(sizeof(bool) * (list_length(sets) + 1));
	if (OidIsValid(only) && sets == NIL)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("table is not a registered partition set"),
				 errdetail("Argument \"parent\" (%s) is not in elfsofa.partition_sets.",
						   DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(only)))),
				 errhint("Register it with elfsofa.partition_table().")));

	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("lock_timeout", psprintf("%d", es_lock_timeout_ms),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	appendStringInfoString(&res, "{\"sets\":[");
	loopcxt = AllocSetContextCreate(CurrentMemoryContext, "elfsofa maintenance", ALLOCSET_DEFAULT_SIZES);

	while (i < list_length(sets))
	{
		/* one group: a leader and the followers that come right after it */
		List	   *group = NIL;
		PartSet    *lead = list_nth(sets, i);
		Oid			key = OidIsValid(lead->leader) ? lead->leader : lead->parent;
		bool		busy = false;
		ListCell   *lc;
		MemoryContext old;
		char	   *group_retire_err = NULL;
		char	   *group_create_err = NULL;
		StringInfo *created_outs;
		int		   *created_counts;

		while (i < list_length(sets))
		{
			PartSet    *s = list_nth(sets, i);

			if ((OidIsValid(s->leader) ? s->leader : s->parent) != key)
				break;
			group = lappend(group, s);
			i++;
		}

		foreach(lc, group)
		{
			PartSet    *s = lfirst(lc);

			if (!try_lock_set(s->parent))
				busy = true;
		}

		old = MemoryContextSwitchTo(loopcxt);
		created_outs = palloc(sizeof(StringInfo) * list_length(group));
		created_counts = palloc0(sizeof(int) * list_length(group));
		for (int k = 0; k < list_length(group); k++)
			created_outs[k] = makeStringInfo();
		if (!busy)
			group_create_err = group_create(group, created_outs, created_counts);
		foreach(lc, group)
		{
			PartSet    *s = lfirst(lc);
			int			k = foreach_current_index(lc);
			StringInfoData retired;
			char	   *e1 = group_create_err,
					   *e2 = NULL;
			char	   *err;
			int			c = created_counts[k],
						r = 0;

			initStringInfo(&retired);
			if (!first)
				appendStringInfoChar(&res, ',');
			first = false;
			appendStringInfoString(&res, "{\"parent\":");
			es_json_quote(&res, get_rel_name(s->parent) ?
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(s->parent)),
												get_rel_name(s->parent)) :
					 psprintf("%u", s->parent));
			if (busy)
			{
				appendStringInfoString(&res, ",\"skipped\":\"busy\"}");
				skipped++;
				continue;
			}
			/* a follower retires with its leader, in the leader's step, lines before orders */
			if (!OidIsValid(s->leader) && s->retention != NULL)
			{
				List	   *rev = NIL;
				ListCell   *lc2;

				foreach(lc2, group)
					rev = lappend(rev, lfirst(lc2));
				e2 = group_retire(rev, &retired, &r);
			}
			else if (OidIsValid(s->leader))
				e2 = group_retire_err;	/* a failed retire of the group is the followers' error too */
			if (!OidIsValid(s->leader))
				group_retire_err = e2;
			total_created += c;
			total_retired += r;
			err = e1 && e2 ? psprintf("%s; %s", e1, e2) : (e1 ? e1 : e2);
			if (err)
				errors++;
			appendStringInfo(&res, ",\"created\":[%s],\"retired\":[%s],\"error\":", created_outs[k]->data, retired.data);
			es_json_quote(&res, err);
			appendStringInfoChar(&res, '}');

			/* remembered for one UPDATE at the end, in the outer context */
			mark_oids[nmarks] = ObjectIdGetDatum(s->parent);
			mark_nulls[nmarks] = (err == NULL);
			mark_errs[nmarks] = (Datum) 0;
			if (err)
			{
				MemoryContext m = MemoryContextSwitchTo(old);

				mark_errs[nmarks] = PointerGetDatum(cstring_to_text(err));
				MemoryContextSwitchTo(m);
			}
			nmarks++;
		}
		MemoryContextSwitchTo(old);
		appendStringInfoString(&res, "");
		MemoryContextReset(loopcxt);
	}
	appendStringInfo(&res, "],\"created\":%d,\"retired\":%d,\"errors\":%d,\"skipped\":%d}",
					 total_created, total_retired, errors, skipped);
	if (nmarks > 0)
	{
		int			dims[1] = {nmarks};
		int			lbs[1] = {1};
		Datum		v[2];

		v[0] = PointerGetDatum(construct_md_array(mark_oids, NULL, 1, dims, lbs, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
		v[1] = PointerGetDatum(construct_md_array(mark_errs, mark_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
		es_exec(&mark_plan, v, NULL, false, 0);
	}
	AtEOXact_GUC(true, save_nestlevel);
	SPI_finish();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(res.data)));
}

/* elfsofa.partition_reach(parent): upper bound of the newest partition, from the catalog */
Datum
elfsofa_partition_reach(PG_FUNCTION_ARGS)
{
	Oid			parent;
	Relation	rel;
	PartitionKey key;
	Oid			keytype;
	List	   *bounds;
	ListCell   *lc;
	bool		found = false;
	int64		best = PG_INT64_MIN;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	parent = PG_GETARG_OID(0);
	if (get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE)
		PG_RETURN_NULL();
	rel = relation_open(parent, AccessShareLock);
	key = RelationGetPartitionKey(rel);
	if (key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1)
	{
		relation_close(rel, AccessShareLock);
		PG_RETURN_NULL();
	}
	keytype = key->parttypid[0];
	relation_close(rel, AccessShareLock);
	if (keytype != TIMESTAMPTZOID && keytype != DATEOID)
		PG_RETURN_NULL();
	bounds = part_read_bounds(parent, keytype);
	foreach(lc, bounds)
	{
		Bound	   *b = lfirst(lc);

		if (b->is_default)
			continue;
		found = true;
		if (b->hi > best)
			best = b->hi;
	}
	if (!found)
		PG_RETURN_NULL();
	if (best == PG_INT64_MAX)
		PG_RETURN_TIMESTAMPTZ(DT_NOEND);
	if (keytype == DATEOID)
		return DirectFunctionCall1(date_timestamptz, DateADTGetDatum((DateADT) best));
	PG_RETURN_TIMESTAMPTZ((TimestampTz) best);
}

/*
 * part_ddl.c — the partition manager's DDL: making the partitions a set
 * lacks and retiring those wholly past retention (detach, then archive or
 * drop), each step under a short lock_timeout with a few retries.
 *
 * Maintenance makes a new partition as a plain table and then ATTACHes it,
 * which takes only SHARE UPDATE EXCLUSIVE on the parent, so inserts carry on.
 * A retry gives back every lock the step took: the step is a subtransaction,
 * rolled back whole.  Partitions are deliberately not extension members (even
 * those created while CREATE EXTENSION runs), so pg_dump dumps them and their
 * rows like any user table.
 */
#include "partitions/partitions.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

/*
 * In a PG_CATCH of an internal subtransaction: takes the error, rolls the
 * subtransaction back and returns to the caller's memory context and owner.
 */
ErrorData *
part_subxact_abort(MemoryContext oldcxt, ResourceOwner oldowner)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(oldcxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return edata;
}

/*
 * Runs work(arg) in a subtransaction under elfsofa.maintenance_lock_timeout,
 * retrying the whole of it when a lock was not granted in time; other errors
 * propagate.  A retry starts from scratch: the subtransaction rolled back
 * whatever the failed attempt did.
 */
void
part_run_with_retry(void (*work) (void *), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	for (int attempt = 0;; attempt++)
	{
		volatile bool done = false;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			work(arg);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			done = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata = part_subxact_abort(oldcxt, oldowner);

			/* only a lock wait that timed out is worth another try */
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE || attempt >= part_lock_retries)
				ReThrowError(edata);
			FreeErrorData(edata);
		}
		PG_END_TRY();
		if (done)
			return;				/* never return from inside PG_TRY */
		/* back off a little, longer each time, interruptibly */
		for (int i = 0; i < attempt + 1; i++)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(20000L);
		}
	}
}

/* Runs DDL statements (SQL text); the caller's step handles lock timeouts. */
static void
run_ddl(const char *const *stmts, int nstmts)
{
	for (int i = 0; i < nstmts; i++)
	{
		int			rc = SPI_execute(stmts[i], false, 0);

		if (rc < 0)
			elog(ERROR, "elfsofa: SPI failed (%s) running \"%s\"",
				 SPI_result_code_string(rc), stmts[i]);
	}
}

/* An untyped string constant, as the parser makes for 'literal'. */
static Node *
string_const(char *str)
{
	A_Const    *c = makeNode(A_Const);

	ES_SET_STRING_CONST(c, str);
	c->location = -1;
	return (Node *) c;
}

/*
 * CREATE TABLE <p> PARTITION OF <parent> FOR VALUES FROM (lo) TO (hi), as the
 * parse tree the grammar would produce, run through ProcessUtility like SPI
 * would run the text (same context, so event triggers and hooks see the same
 * command) minus the parsing.  sql is that text, for logs and event triggers.
 */
static void
create_partition_of(NewParts *np, NewPart *p)
{
	CreateStmt *cs = makeNode(CreateStmt);
	PartitionBoundSpec *spec = makeNode(PartitionBoundSpec);
	PlannedStmt *ps = makeNode(PlannedStmt);
	char	   *lo = part_key_text(np->s->keytype, p->lo);
	char	   *hi = part_key_text(np->s->keytype, p->hi);
	char	   *sql;

	sql = psprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%s) TO (%s)",
				   p->qname, np->qparent, quote_literal_cstr(lo), quote_literal_cstr(hi));
	spec->strategy = PARTITION_STRATEGY_RANGE;
	spec->is_default = false;
	spec->lowerdatums = list_make1(string_const(lo));
	spec->upperdatums = list_make1(string_const(hi));
	spec->location = -1;
	cs->relation = makeRangeVar(np->nsp, p->name, -1);
	cs->inhRelations = list_make1(makeRangeVar(np->nsp, np->relname, -1));
	cs->partbound = spec;
	cs->oncommit = ONCOMMIT_NOOP;
	cs->if_not_exists = false;

	ps->commandType = CMD_UTILITY;
	ps->canSetTag = false;
	ps->utilityStmt = (Node *) cs;
	ps->stmt_location = 0;
	ps->stmt_len = 0;
	CommandCounterIncrement();
	ProcessUtility(ps, sql, false, PROCESS_UTILITY_QUERY, NULL, NULL, None_Receiver, NULL);
	CommandCounterIncrement();
}

/*
 * Gives a new partition the parent's per-column statistics targets (ALTER
 * COLUMN ... SET STATISTICS), which neither PARTITION OF nor LIKE copies:
 * e.g. the outbox turns off statistics on its jsonb payload, which ANALYZE
 * would otherwise spend most of its time on.
 */
static void
copy_statistics_targets(NewParts *np, NewPart *p)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2] = {ObjectIdGetDatum(np->s->parent), CStringGetTextDatum(p->qname)};
	const char **stmts;
	int			n;
	int			rc = SPI_execute_with_args("SELECT format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', $2, attname, attstattarget)"
										   "  FROM pg_catalog.pg_attribute"
										   " WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0"
										   " ORDER BY attnum",
										   2, argtypes, args, NULL, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "elfsofa: could not read the statistics targets of %s", np->qparent);
	n = (int) SPI_processed;
	if (n == 0)
		return;
	stmts = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
		stmts[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	run_ddl(stmts, n);
}

/* The work of one step: every partition of every set in a list of NewParts. */
typedef struct NewPartsStep
{
	List	   *sets;			/* of NewParts */
	int			current;		/* index of the set being made */
} NewPartsStep;

static void
new_parts_work(void *arg)
{
	NewPartsStep *step = arg;
	ListCell   *lc1;

	step->current = 0;
	foreach(lc1, step->sets)
	{
		NewParts   *np = lfirst(lc1);
		ListCell   *lc;

		np->current = 0;
		foreach(lc, np->parts)
		{
			NewPart    *p = lfirst(lc);

			if (np->attach)
			{
				const char *stmts[2];

				stmts[0] = psprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
									"INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)", p->qname, np->qparent);
				stmts[1] = psprintf("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)",
									np->qparent, p->qname, part_key_literal(np->s->keytype, p->lo),
									part_key_literal(np->s->keytype, p->hi));
				run_ddl(stmts, 2);
			}
			else
				create_partition_of(np, p);
			copy_statistics_targets(np, p);
			np->current++;
		}
		step->current++;
	}
}

/*
 * Makes the partitions of a list of sets in one step: one subtransaction,
 * retried whole on a lock timeout, so a step that cannot get a lock in time
 * gives back every lock it took before it tries again (a shop transaction
 * waiting for one of them never waits long enough to be a deadlock victim).
 * The pg_partman pain "rows stuck in the default partition": when a new
 * period cannot be made because the default partition already holds rows for
 * it, say so plainly instead of leaving a bare constraint error.
 */
void
part_make_partitions(List *sets)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	NewPartsStep *step = palloc0(sizeof(NewPartsStep));	/* read after a longjmp: not on the stack */

	step->sets = sets;
	PG_TRY();
	{
		part_run_with_retry(new_parts_work, step);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		NewParts   *np;
		NewPart    *p;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_CHECK_VIOLATION || step->current >= list_length(sets))
			PG_RE_THROW();
		np = list_nth(sets, step->current);
		if (!np->with_default || np->current >= list_length(np->parts))
			PG_RE_THROW();
		FlushErrorState();
		p = list_nth(np->parts, np->current);
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("rows for partition %s are in the default partition", p->qname),
				 errdetail("%s", edata->message),
				 errhint("Move those rows out of the default partition (or drop it: elfsofa does not need one), then run maintenance again.")));
	}
	PG_END_TRY();
}

/* A partition created while CREATE EXTENSION runs must not become an extension member. */
static void
forget_extension_membership(Oid relid)
{
	if (creating_extension && OidIsValid(CurrentExtensionObject))
		deleteDependencyRecordsForSpecific(RelationRelationId, relid, DEPENDENCY_EXTENSION,
										   ExtensionRelationId, CurrentExtensionObject);
}

/*
 * The partitions one set lacks, from the current period to premake ahead.
 * Maintenance (attach = true) makes a plain table and ATTACHes it: SHARE
 * UPDATE EXCLUSIVE on the parent, so live inserts go on.  Registration uses
 * one CREATE TABLE ... PARTITION OF per period, which is cheaper but takes
 * ACCESS EXCLUSIVE on the parent (under the short lock_timeout) until the
 * registering transaction ends.
 */
NewParts *
part_plan_ahead(PartSet *s, bool attach)
{
	Oid			nspid = get_rel_namespace(s->parent);
	NewParts   *np = palloc0(sizeof(NewParts));
	List	   *bounds;
	int32		start;

	np->s = s;
	np->attach = attach;
	np->nsp = OidIsValid(nspid) ? get_namespace_name(nspid) : NULL;
	np->relname = get_rel_name(s->parent);
	if (np->nsp == NULL || np->relname == NULL)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("partitioned table no longer exists"),
				 errdetail("Set with parent OID %u has no table.", s->parent),
				 errhint("Remove it with DELETE FROM elfsofa.partition_sets.")));
	np->qparent = quote_qualified_identifier(np->nsp, np->relname);
	bounds = part_read_bounds(s->parent, s->keytype);
	np->with_default = part_has_default(bounds);
	start = part_period_start(part_local_today(s), s->unit, s->n);

	for (int i = 0; i <= s->premake; i++)
	{
		int32		next = part_period_next(start, s->unit, s->n);
		int64		lo = part_day_to_key(s, start);
		int64		hi = part_day_to_key(s, next);

		if (!part_overlaps(bounds, lo, hi))
		{
			NewPart    *p = palloc(sizeof(NewPart));

			p->name = part_partition_name(np->relname, s, start);
			p->qname = quote_qualified_identifier(np->nsp, p->name);
			p->lo = lo;
			p->hi = hi;
			if (OidIsValid(get_relname_relid(p->name, nspid)))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_TABLE),
						 errmsg("cannot create partition %s", p->qname),
						 errdetail("A relation named %s exists but is not a partition of %s for this period.",
								   p->qname, np->qparent),
						 errhint("Rename or attach that table, then run maintenance again.")));
			np->parts = lappend(np->parts, p);
		}
		start = next;
	}
	return np;
}

/* After the step: appends the names made to out; returns how many. */
int
part_finish_ahead(NewParts *np, StringInfo out)
{
	ListCell   *lc;

	foreach(lc, np->parts)
	{
		NewPart    *p = lfirst(lc);

		if (creating_extension)
			forget_extension_membership(get_relname_relid(p->name, get_rel_namespace(np->s->parent)));
		if (out->len > 0)
			appendStringInfoChar(out, ',');
		es_json_quote(out, p->qname);
	}
	return list_length(np->parts);
}

/* Creates the missing partitions of one set in one step; appends their names to out. */
int
part_create_ahead(PartSet *s, StringInfo out, bool attach)
{
	NewParts   *np = part_plan_ahead(s, attach);

	if (np->parts == NIL)
		return 0;
	part_make_partitions(list_make1(np));
	return part_finish_ahead(np, out);
}

static EsPlan fk_plan = {
	"SELECT conname::text FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype = 'f'",
	1, {OIDOID}
};

/*
 * Detaches partitions of one set wholly older than its cutoff and archives or
 * drops them.  Runs inside its group's retire step (group_retire), which
 * retries the whole group on a lock timeout.
 */
int
part_retire_old(PartSet *s, StringInfo out)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(s->parent));
	char	   *relname = get_rel_name(s->parent);
	char	   *qparent;
	List	   *bounds;
	int64		cutoff;
	ListCell   *lc;
	int			retired = 0;
	Oid			archive_nsp;

	if (s->retention == NULL)
		return 0;
	if (nsp == NULL || relname == NULL)
		return 0;
	qparent = quote_qualified_identifier(nsp, relname);
	bounds = part_read_bounds(s->parent, s->keytype);
	cutoff = part_cutoff_key(s, s->retention);
	archive_nsp = get_namespace_oid("elfsofa_archive", true);

	foreach(lc, bounds)
	{
		Bound	   *b = lfirst(lc);
		char	   *pname;
		char	   *qname;
		const char *stmts[3];
		int			nstmts = 0;

		if (b->is_default || b->hi == PG_INT64_MAX || b->hi > cutoff)
			continue;
		pname = get_rel_name(b->relid);
		if (pname == NULL)
			continue;
		qname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(b->relid)), pname);
		stmts[nstmts++] = psprintf("ALTER TABLE %s DETACH PARTITION %s", qparent, qname);
		if (s->drop)
			stmts[nstmts++] = psprintf("DROP TABLE %s", qname);
		else
		{
			if (!OidIsValid(archive_nsp))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_SCHEMA),
						 errmsg("schema elfsofa_archive does not exist"),
						 errdetail("Partition %s is past retention and its set archives.", qname)));
			if (OidIsValid(get_relname_relid(pname, archive_nsp)))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_TABLE),
						 errmsg("cannot archive partition %s", qname),
						 errdetail("elfsofa_archive already has a table named %s.", quote_identifier(pname)),
						 errhint("Rename the archived table, then run maintenance again.")));
		}
		run_ddl(stmts, nstmts);
		if (!s->drop)
		{
			/* archived rows must not pin live tables: drop its foreign keys, then move it */
			Datum		v[1] = {ObjectIdGetDatum(b->relid)};
			StringInfoData sql;
			const char *mv[1];

			initStringInfo(&sql);
			es_exec(&fk_plan, v, NULL, true, 0);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				char	   *con = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

				appendStringInfo(&sql, "%s DROP CONSTRAINT %s", sql.len ? "," : "", quote_identifier(con));
			}
			if (sql.len > 0)
			{
				mv[0] = psprintf("ALTER TABLE %s %s", qname, sql.data);
				run_ddl(mv, 1);
			}
			mv[0] = psprintf("ALTER TABLE %s SET SCHEMA elfsofa_archive", qname);
			run_ddl(mv, 1);
		}
		if (out->len > 0)
			appendStringInfoChar(out, ',');
		retired++;
		appendStringInfoString(out, "{\"partition\":");
		es_json_quote(out, qname);
		appendStringInfo(out, ",\"action\":\"%s\"}", s->drop ? "drop" : "archive");
	}
	return retired;
}

/*
 * leafwriter.c — direct inserts into the current partition of one of
 * elfsofa's own time-partitioned tables (audit_log, events), or into a plain
 * table (the publisher's notification queue inserts).
 *
 * Rows that elfsofa writes for its own bookkeeping on every change (an audit
 * row per changed row, an outbox event per business change) would pay, through
 * SPI, for a statement each: executor start-up, tuple routing, opening the
 * partition and its indexes, evaluating column defaults.  Instead the
 * partition covering the transaction's time is found once, opened with its
 * indexes under the top transaction's resource owner, and each row is a heap
 * insert plus index inserts.  The writer is closed before commit (no leak
 * warnings) and forgotten at transaction end; a relcache invalidation of the
 * parent or the partition makes it reopen before the next row.
 *
 * An open partition counts as in use for the rest of the session's
 * statements, so TRUNCATE, ALTER or DROP of it would fail ("being used by
 * active queries in this session"); every utility statement therefore closes
 * the open writers first (they reopen on their next row), except transaction
 * control (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO, COMMIT: commit and prepare
 * close them through their owners' transaction callbacks anyway).
 *
 * What the executor would check is the caller's job: the values must satisfy
 * the table's NOT NULL and CHECK constraints, and the table's triggers (none
 * on elfsofa's own tables) do not fire.  Writing directly also means callers
 * need no privilege on the table.
 */
#include "elfsofa.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "tcop/utility.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

/* Writers that may be open: closed before every utility statement. */
#define ES_LEAF_MAXWRITERS 4
static EsLeafWriter *writers[ES_LEAF_MAXWRITERS];
static int	nwriters = 0;
static ProcessUtility_hook_type prev_process_utility = NULL;

static void
es_leaf_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (!IsA(pstmt->utilityStmt, TransactionStmt))
		for (int i = 0; i < nwriters; i++)
			es_leaf_close(writers[i]);
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* From _PG_init. */
void
es_leafwriter_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = es_leaf_process_utility;
}

/* The partition of root holding ts (its index in the partition descriptor); -1 when none does. */
int
es_leaf_index(Relation root, TimestampTz ts)
{
	PartitionKey key = RelationGetPartitionKey(root);
	PartitionDesc pd = RelationGetPartitionDesc(root, true);
	Datum		tsd = TimestampTzGetDatum(ts);
	int			idx = -1;

	if (pd->nparts == 0 || pd->boundinfo == NULL)
		return -1;
	if (key->strategy == PARTITION_STRATEGY_RANGE && key->partnatts == 1)
	{
		bool		equal;
		int			off = partition_range_datum_bsearch(key->partsupfunc, key->partcollation,
														pd->boundinfo, 1, &tsd, &equal);

		idx = pd->boundinfo->indexes[off + 1];
	}
	if (idx < 0)
		idx = pd->boundinfo->default_index;
	return idx;
}

bool
es_leaf_open(EsLeafWriter *w, Oid rootid, TimestampTz ts)
{
	ResourceOwner save = CurrentResourceOwner;
	MemoryContext old;
	Relation	root;
	Relation	leaf;
	PartitionDesc pd;
	EState	   *estate;
	ResultRelInfo *rri;
	int			idx;

	Assert(w->leaf == NULL && w->ncols <= ES_LEAF_MAXCOLS);
	if (!w->registered)
	{
		if (nwriters == ES_LEAF_MAXWRITERS)
			elog(ERROR, "elfsofa: too many partition writers");
		writers[nwriters++] = w;
		w->registered = true;
	}
	w->rootid = rootid;
	CurrentResourceOwner = TopTransactionResourceOwner;
	root = table_open(rootid, RowExclusiveLock);
	if (root->rd_rel->relkind == RELKIND_RELATION)
		w->leafid = rootid;		/* not partitioned: the table itself */
	else
	{
		if (root->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
			elog(ERROR, "elfsofa.%s is not a table", w->relname);
		idx = es_leaf_index(root, ts);
		if (idx < 0)
		{
			table_close(root, NoLock);
			CurrentResourceOwner = save;
			return false;
		}
		pd = RelationGetPartitionDesc(root, true);
		if (!pd->is_leaf[idx])
			elog(ERROR, "elfsofa.%s partition %u is itself partitioned", w->relname, pd->oids[idx]);
		w->leafid = pd->oids[idx];
	}
	table_close(root, NoLock);

	/* build everything in locals first: w->leaf set means fully open */
	leaf = table_open(w->leafid, RowExclusiveLock);
	if (leaf->rd_rel->relkind != RELKIND_RELATION)
		elog(ERROR, "elfsofa.%s partition \"%s\" is not a plain table",
			 w->relname, RelationGetRelationName(leaf));
	for (int c = 0; c < w->ncols; c++)
	{
		int			attnum = attnameAttNum(leaf, w->colnames[c], false);

		if (attnum == InvalidAttrNumber)
			elog(ERROR, "elfsofa.%s has no column \"%s\"", w->relname, w->colnames[c]);
		w->map[c] = attnum;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, leaf, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	w->estate = estate;
	w->rri = rri;
	if (w->opened)
		w->opened(w);
	w->slot = MakeSingleTupleTableSlot(RelationGetDescr(leaf), &TTSOpsVirtual);
	MemoryContextSwitchTo(old);
	w->leaf = leaf;
	CurrentResourceOwner = save;
	w->stale = false;
	return true;
}

void
es_leaf_insert(EsLeafWriter *w, Datum *values, bool *nulls)
{
	TupleTableSlot *slot = w->slot;

	Assert(w->leaf != NULL);
	ExecClearTuple(slot);
	for (int a = 0; a < slot->tts_tupleDescriptor->natts; a++)
	{
		slot->tts_values[a] = (Datum) 0;
		slot->tts_isnull[a] = true;
	}
	for (int c = 0; c < w->ncols; c++)
	{
		slot->tts_values[w->map[c] - 1] = values[c];
		slot->tts_isnull[w->map[c] - 1] = nulls[c];
	}
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(w->leaf, slot, GetCurrentCommandId(true), 0, NULL);
	if (w->rri->ri_NumIndices > 0)
		ES_EXEC_INSERT_INDEX_TUPLES(w->rri, slot, w->estate);
	if (w->inserted)
		w->inserted(w, slot);
	ResetPerTupleExprContext(w->estate);
	ExecClearTuple(slot);
}

void
es_leaf_close(EsLeafWriter *w)
{
	ResourceOwner save = CurrentResourceOwner;

	if (w->leaf == NULL)
		return;
	if (w->closing)
		w->closing(w);
	CurrentResourceOwner = TopTransactionResourceOwner;
	ExecDropSingleTupleTableSlot(w->slot);
	ExecCloseIndices(w->rri);
	table_close(w->leaf, NoLock);
	FreeExecutorState(w->estate);
	CurrentResourceOwner = save;
	w->leaf = NULL;
	w->rri = NULL;
	w->estate = NULL;
	w->slot = NULL;
	w->leafid = InvalidOid;
}

void
es_leaf_invalidate(EsLeafWriter *w, Oid relid)
{
	if (w->leaf != NULL && (relid == InvalidOid || relid == w->leafid || relid == w->rootid))
		w->stale = true;
}

void
es_leaf_forget(EsLeafWriter *w)
{
	/* at transaction end: memory lived in TopTransactionContext, resources die with the owner */
	w->rootid = InvalidOid;
	w->leafid = InvalidOid;
	w->stale = false;
	w->leaf = NULL;
	w->rri = NULL;
	w->estate = NULL;
	w->slot = NULL;
}

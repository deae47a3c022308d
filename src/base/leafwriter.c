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
#include "postgres.h"

#include "base/compat.h"
#include "base/leafwriter.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "storage/lmgr.h"
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

/*
 * es_leaf_close_for_utility closes the open writers before every utility
 * statement but BEGIN, SAVEPOINT, COMMIT and the like (src/hooks.c): an open
 * partition could not be truncated or altered, and closing writes what a
 * writer kept for later (audit's deferred index entries), so REINDEX, VACUUM
 * and COPY find the indexes complete.
 */
void
es_leaf_close_for_utility(PlannedStmt *pstmt)
{
	if (!IsA(pstmt->utilityStmt, TransactionStmt))
		for (int i = 0; i < nwriters; i++)
			es_leaf_close(writers[i]);
}

/*
 * The partition of root holding ts (its index in the partition descriptor);
 * -1 when none does.  With lo and hi: the range that partition covers, when
 * it is a range partition of a timestamptz key (else lo = hi: not
 * cacheable).
 */
static int
es_leaf_locate(Relation root, TimestampTz ts, TimestampTz *lo, TimestampTz *hi)
{
	PartitionKey key = RelationGetPartitionKey(root);
	PartitionDesc pd = RelationGetPartitionDesc(root, true);
	PartitionBoundInfo b = pd->boundinfo;
	Datum		tsd = TimestampTzGetDatum(ts);
	int			idx = -1;

	*lo = *hi = 0;
	if (pd->nparts == 0 || b == NULL)
		return -1;
	if (key->strategy == PARTITION_STRATEGY_RANGE && key->partnatts == 1)
	{
		bool		equal;
		int			off = partition_range_datum_bsearch(key->partsupfunc, key->partcollation,
														b, 1, &tsd, &equal);

		idx = b->indexes[off + 1];
		if (idx >= 0 && key->parttypid[0] == TIMESTAMPTZOID)
		{
			*lo = (off >= 0 && b->kind[off][0] == PARTITION_RANGE_DATUM_VALUE) ?
				DatumGetTimestampTz(b->datums[off][0]) : DT_NOBEGIN;
			*hi = (off + 1 < b->ndatums && b->kind[off + 1][0] == PARTITION_RANGE_DATUM_VALUE) ?
				DatumGetTimestampTz(b->datums[off + 1][0]) : DT_NOEND;
		}
	}
	if (idx < 0)
		idx = b->default_index;
	return idx;
}

int
es_leaf_index(Relation root, TimestampTz ts)
{
	TimestampTz lo;
	TimestampTz hi;

	return es_leaf_locate(root, ts, &lo, &hi);
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

	/*
	 * The partition of the last open, if it still covers ts: lock it alone.
	 * Holding that lock, it can be neither detached nor dropped, and the
	 * invalidations the lock made us read would have cleared the cache had
	 * it been changed meanwhile; partitions do not overlap, so it is still
	 * the one.  (An insert straight into a partition locks only the
	 * partition too.)
	 */
	if (w->cache_valid && w->cache_rootid == rootid && ts >= w->cache_lo && ts < w->cache_hi)
	{
		LockRelationOid(w->cache_leafid, RowExclusiveLock);
		if (w->cache_valid)
		{
			w->leafid = w->cache_leafid;
			leaf = table_open(w->leafid, NoLock);
			goto opened;
		}
		/* changed meanwhile: the lock stays until the transaction ends, harmlessly */
	}
	w->cache_valid = false;

	root = table_open(rootid, RowExclusiveLock);
	if (root->rd_rel->relkind == RELKIND_RELATION)
		w->leafid = rootid;		/* not partitioned: the table itself */
	else
	{
		TimestampTz lo;
		TimestampTz hi;

		if (root->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
			elog(ERROR, "elfsofa.%s is not a table", w->relname);
		idx = es_leaf_locate(root, ts, &lo, &hi);
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
		if (lo < hi)
		{
			w->cache_rootid = rootid;
			w->cache_leafid = w->leafid;
			w->cache_lo = lo;
			w->cache_hi = hi;
			w->cache_valid = true;
		}
	}
	table_close(root, NoLock);
	leaf = table_open(w->leafid, RowExclusiveLock);

opened:
	/* build everything in locals first: w->leaf set means fully open */
	if (leaf->rd_rel->relkind != RELKIND_RELATION)
		elog(ERROR, "elfsofa.%s partition \"%s\" is not a plain table",
			 w->relname, RelationGetRelationName(leaf));
	/*
	 * Column numbers by name, once per partition: an ALTER of its columns
	 * sends an invalidation for it, read when it was locked above, which
	 * clears map_leafid (es_leaf_invalidate).
	 */
	if (w->map_leafid != w->leafid)
	{
		w->map_leafid = InvalidOid;
		for (int c = 0; c < w->ncols; c++)
		{
			int			attnum = attnameAttNum(leaf, w->colnames[c], false);

			if (attnum == InvalidAttrNumber)
				elog(ERROR, "elfsofa.%s has no column \"%s\"", w->relname, w->colnames[c]);
			w->map[c] = attnum;
		}
		w->map_leafid = w->leafid;
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

/* Stores one row (values in colnames order, the other columns NULL) in slot. */
static void
es_leaf_fill(EsLeafWriter *w, TupleTableSlot *slot, Datum *values, bool *nulls)
{
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
}

/* After the heap insert of the row in slot: its index entries and the inserted hook. */
static void
es_leaf_inserted(EsLeafWriter *w, TupleTableSlot *slot)
{
	if (w->rri->ri_NumIndices > 0)
		ES_EXEC_INSERT_INDEX_TUPLES(w->rri, slot, w->estate);
	if (w->inserted)
		w->inserted(w, slot);
	ResetPerTupleExprContext(w->estate);
	ExecClearTuple(slot);
}

void
es_leaf_insert(EsLeafWriter *w, Datum *values, bool *nulls)
{
	Assert(w->leaf != NULL);
	es_leaf_fill(w, w->slot, values, nulls);
	table_tuple_insert(w->leaf, w->slot, GetCurrentCommandId(true), 0, NULL);
	es_leaf_inserted(w, w->slot);
}

/*
 * n rows at once: values and nulls hold n * ncols entries, row after row.  The
 * heap gets them with one multi-insert (as COPY does); the index entries and
 * the inserted hook follow row by row.
 */
#define ES_LEAF_MAXBATCH 64
void
es_leaf_insert_many(EsLeafWriter *w, int n, Datum *values, bool *nulls)
{
	CommandId	cid = GetCurrentCommandId(true);

	Assert(w->leaf != NULL);
	if (w->mslots == NULL)
		w->mslots = MemoryContextAllocZero(TopTransactionContext, sizeof(TupleTableSlot *) * ES_LEAF_MAXBATCH);
	for (int done = 0; done < n; done += ES_LEAF_MAXBATCH)
	{
		int			m = Min(n - done, ES_LEAF_MAXBATCH);

		for (int r = 0; r < m; r++)
		{
			Datum	   *v = values + (size_t) (done + r) * w->ncols;
			bool	   *nl = nulls + (size_t) (done + r) * w->ncols;

			if (r == w->nmslots)
			{
				/* like the writer's own slot: the tuple descriptor pin belongs to the transaction */
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
				ResourceOwner save = CurrentResourceOwner;

				CurrentResourceOwner = TopTransactionResourceOwner;
				w->mslots[w->nmslots++] = table_slot_create(w->leaf, NULL);
				CurrentResourceOwner = save;
				MemoryContextSwitchTo(old);
			}
			es_leaf_fill(w, w->mslots[r], v, nl);
		}
		table_multi_insert(w->leaf, w->mslots, m, cid, 0, NULL);
		for (int r = 0; r < m; r++)
			es_leaf_inserted(w, w->mslots[r]);
	}
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
	for (int i = 0; i < w->nmslots; i++)
		ExecDropSingleTupleTableSlot(w->mslots[i]);
	w->mslots = NULL;
	w->nmslots = 0;
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
	if (relid == InvalidOid || relid == w->cache_rootid || relid == w->cache_leafid)
		w->cache_valid = false;
	if (relid == InvalidOid || relid == w->map_leafid)
		w->map_leafid = InvalidOid;
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
	w->mslots = NULL;
	w->nmslots = 0;
}

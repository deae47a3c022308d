/*
 * audit_write.c — writing audit rows: the per-transaction facts, the
 * audit_log partition they go to, and its deferred hash index entries.
 *
 * Who/when facts (actor, JWT role, current_user, application_name, txid) are
 * computed once per transaction and recomputed only when the setting they
 * come from changes.  Rows go straight into the current audit_log partition
 * through leafwriter (heap insert plus index insert, no SPI or executor per
 * row, so callers need no privilege on audit_log); its hash index entries are
 * kept and written in bucket order before the next query starts or at
 * commit.  The transaction callbacks that release and forget this state live
 * here too.
 */
#include "audit/audit.h"

#include "access/genam.h"
#include "access/hash.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

static const char *const al_names[AL_NCOLS] = {
	"id", "logged_at", "txid", "actor", "actor_role", "db_user", "application_name",
	"schema_name", "table_name", "operation", "pk", "old_pk", "old_data", "new_data",
	"changed_columns"
};

AuditXact	audit_xact;
static bool callbacks_registered = false;

static void audit_leaf_opened(EsLeafWriter *w);
static void audit_leaf_inserted(EsLeafWriter *w, TupleTableSlot *slot);
static void audit_leaf_closing(EsLeafWriter *w);

/* Opened, written and closed by leafwriter; the hooks keep the hash index entries for later. */
static EsLeafWriter audit_writer = {
	"audit_log", AL_NCOLS, al_names,
	.opened = audit_leaf_opened,
	.inserted = audit_leaf_inserted,
	.closing = audit_leaf_closing
};

/* ---------------------------------------------------------------------
 * Per-transaction facts
 * --------------------------------------------------------------------- */

static bool
str_differs(const char *cached, const char *now)
{
	if (cached == NULL || now == NULL)
		return cached != now;
	return strcmp(cached, now) != 0;
}

static char *
xact_strdup(const char *s)
{
	return s ? MemoryContextStrdup(TopTransactionContext, s) : NULL;
}

/* Recomputes actor facts only when a setting they derive from has changed. */
void
audit_refresh_facts(void)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	const char *actor_guc = es_guc_actor;
	Oid			userid = GetOuterUserId();
	MemoryContext old;

	if (claims != NULL && claims[0] == '\0')
		claims = NULL;
	if (actor_guc != NULL && actor_guc[0] == '\0')
		actor_guc = NULL;

	if (!audit_xact.active)
	{
		FullTransactionId fxid = GetTopFullTransactionId();

		memset(&audit_xact, 0, sizeof(audit_xact));
		audit_xact.active = true;
		audit_xact.txid = (int64) U64FromFullTransactionId(fxid);
		audit_xact.ts = GetCurrentTransactionStartTimestamp();
		old = MemoryContextSwitchTo(TopTransactionContext);
		audit_xact.op_text[OP_INSERT] = CStringGetTextDatum("INSERT");
		audit_xact.op_text[OP_UPDATE] = CStringGetTextDatum("UPDATE");
		audit_xact.op_text[OP_DELETE] = CStringGetTextDatum("DELETE");
		audit_xact.op_text[OP_TRUNCATE] = CStringGetTextDatum("TRUNCATE");
		MemoryContextSwitchTo(old);
		audit_xact.userid = InvalidOid;
		/* force the first computation below */
		audit_xact.claims_raw = xact_strdup("\x01");
	}

	if (userid != audit_xact.userid)
	{
		old = MemoryContextSwitchTo(TopTransactionContext);
		audit_xact.db_user = CStringGetTextDatum(GetUserNameFromId(userid, false));
		MemoryContextSwitchTo(old);
	}

	if (str_differs(audit_xact.claims_raw, claims) || str_differs(audit_xact.actor_guc, actor_guc) ||
		userid != audit_xact.userid)
	{
		Jsonb	   *jb = NULL;
		char	   *sub = NULL;
		char	   *role = NULL;

		if (claims != NULL)
		{
			jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
			sub = es_jsonb_get_text(jb, "sub");
			role = es_jsonb_get_text(jb, "role");
		}
		old = MemoryContextSwitchTo(TopTransactionContext);
		if (sub != NULL && sub[0] != '\0')
			audit_xact.actor = CStringGetTextDatum(sub);
		else if (actor_guc != NULL)
			audit_xact.actor = CStringGetTextDatum(actor_guc);
		else
			audit_xact.actor = audit_xact.db_user;
		audit_xact.actor_role_null = (role == NULL);
		if (role != NULL)
			audit_xact.actor_role = CStringGetTextDatum(role);
		MemoryContextSwitchTo(old);
		audit_xact.claims_raw = xact_strdup(claims);
		audit_xact.actor_guc = xact_strdup(actor_guc);
	}
	audit_xact.userid = userid;

	if (str_differs(audit_xact.appname_raw, application_name) || audit_xact.appname == (Datum) 0)
	{
		const char *a = application_name;

		audit_xact.appname_null = (a == NULL || a[0] == '\0');
		old = MemoryContextSwitchTo(TopTransactionContext);
		audit_xact.appname = CStringGetTextDatum(audit_xact.appname_null ? "" : a);
		MemoryContextSwitchTo(old);
		audit_xact.appname_raw = xact_strdup(a);
	}
}

/* ---------------------------------------------------------------------
 * Writing audit rows directly into the current audit_log partition
 * --------------------------------------------------------------------- */

/* Finds the audit_log partition holding audit_xact.ts and opens it with its indexes. */
static void
audit_open_leaf(void)
{
	Oid			nsp = get_namespace_oid("elfsofa", false);

	audit_xact.rootid = get_relname_relid("audit_log", nsp);
	audit_xact.seqid = get_relname_relid("audit_log_id_seq", nsp);
	if (!OidIsValid(audit_xact.rootid) || !OidIsValid(audit_xact.seqid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("audit log table elfsofa.audit_log does not exist"),
				 errhint("Reinstall the elfsofa extension, or disable auditing with elfsofa.disable_audit().")));
	if (!es_leaf_open(&audit_writer, audit_xact.rootid, audit_xact.ts))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("no partition of elfsofa.audit_log for the current transaction"),
				 errdetail("Audit rows go to the partition covering the transaction start time, %s.",
						   timestamptz_to_str(audit_xact.ts)),
				 errhint("Run elfsofa.run_maintenance() to create audit_log partitions ahead.")));
}

/* Hash indexes on a plain column leave the writer's index list: they are written later, in bucket order. */
static void
audit_leaf_opened(EsLeafWriter *w)
{
	ResultRelInfo *rri = w->rri;
	int			keep = 0;

	audit_xact.ndeferred = 0;
	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	ir = rri->ri_IndexRelationDescs[i];
		IndexInfo  *ii = rri->ri_IndexRelationInfo[i];

		if (ir->rd_rel->relam == HASH_AM_OID && ii->ii_ReadyForInserts &&
			ii->ii_NumIndexAttrs == 1 && ii->ii_IndexAttrNumbers[0] > 0 &&
			ii->ii_Expressions == NIL && audit_xact.ndeferred < AUDIT_MAX_DEFERRED)
		{
			AuditDeferred *d = &audit_xact.deferred[audit_xact.ndeferred++];

			d->index = ir;
			d->attno = ii->ii_IndexAttrNumbers[0];
			d->pred = ii->ii_Predicate != NIL ? ExecPrepareQual(ii->ii_Predicate, w->estate) : NULL;
		}
		else
		{
			rri->ri_IndexRelationDescs[keep] = ir;
			rri->ri_IndexRelationInfo[keep] = ii;
			keep++;
		}
	}
	rri->ri_NumIndices = keep;
}

/*
 * Sorts pending entries by (index, bucket): a stable LSD radix sort over the
 * bytes of that key that differ, far cheaper than qsort for the hundreds of
 * thousands of entries a bulk statement leaves.
 */
static void
audit_sort_pending(void)
{
	int			n = audit_xact.npending;
	uint32		count[5][256];
	AuditPending *src = audit_xact.pending;
	AuditPending *dst;
	AuditPending *tmp;
	AuditPending *swap;

	if (n <= 16)
	{
		/* the few rows of an OLTP statement: insertion sort */
		for (int i = 1; i < n; i++)
		{
			AuditPending cur = src[i];
			uint64		key = ((uint64) cur.which << 32) | cur.bucket;
			int			j = i;

			while (j > 0 && (((uint64) src[j - 1].which << 32) | src[j - 1].bucket) > key)
			{
				src[j] = src[j - 1];
				j--;
			}
			src[j] = cur;
		}
		return;
	}
	memset(count, 0, sizeof(count));
	for (int i = 0; i < n; i++)
	{
		uint64		key = ((uint64) src[i].which << 32) | src[i].bucket;

		for (int b = 0; b < 5; b++)
			count[b][(key >> (8 * b)) & 0xFF]++;
	}
	tmp = palloc(sizeof(AuditPending) * n);
	dst = tmp;
	for (int b = 0; b < 5; b++)
	{
		uint32		pos[256];
		uint32		sum = 0;
		bool		one_value = false;

		for (int v = 0; v < 256; v++)
		{
			if (count[b][v] == (uint32) n)
				one_value = true;
			pos[v] = sum;
			sum += count[b][v];
		}
		if (one_value)
			continue;			/* this byte is the same everywhere */
		for (int i = 0; i < n; i++)
		{
			uint64		key = ((uint64) src[i].which << 32) | src[i].bucket;

			dst[pos[(key >> (8 * b)) & 0xFF]++] = src[i];
		}
		/* the pass's result becomes the next pass's input */
		swap = src;
		src = dst;
		dst = swap;
	}
	if (src != audit_xact.pending)
		memcpy(audit_xact.pending, src, sizeof(AuditPending) * n);
	pfree(tmp);
}

/*
 * Writes the pending hash index entries, sorted by bucket so that each bucket
 * page is visited once per batch.  Runs before any query or utility command
 * starts, before the partition is closed and before commit, so nothing that
 * reads the index can miss a row.  An error part-way (not a cancel: those
 * wait until the entries are written) leaves audit_xact.flushing set and the
 * transaction cannot commit, since it is unknown which entries made it.
 */
void
audit_flush_index(void)
{
	uint32		maxbucket[AUDIT_MAX_DEFERRED];
	uint32		highmask[AUDIT_MAX_DEFERRED];
	uint32		lowmask[AUDIT_MAX_DEFERRED];

	if (audit_xact.flushing)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audit log index entries of this transaction could not be written"),
				 errdetail("An earlier error interrupted writing them, so the transaction cannot commit."),
				 errhint("Roll back the transaction and retry it.")));
	if (audit_xact.npending == 0)
		return;
	audit_xact.flushing = true;
	for (int i = 0; i < audit_xact.ndeferred; i++)
	{
		Buffer		metabuf = InvalidBuffer;
		HashMetaPage meta = _hash_getcachedmetap(audit_xact.deferred[i].index, &metabuf, false);

		maxbucket[i] = meta->hashm_maxbucket;
		highmask[i] = meta->hashm_highmask;
		lowmask[i] = meta->hashm_lowmask;
		if (BufferIsValid(metabuf))
			ReleaseBuffer(metabuf);
	}
	for (int i = 0; i < audit_xact.npending; i++)
	{
		AuditPending *p = &audit_xact.pending[i];

		p->bucket = _hash_hashkey2bucket(p->hashkey, maxbucket[p->which],
										 highmask[p->which], lowmask[p->which]);
	}
	if (audit_xact.npending > 1)
		audit_sort_pending();
	/* a cancel in mid-flush would doom the transaction: take it afterwards */
	HOLD_INTERRUPTS();
	for (int i = 0; i < audit_xact.npending; i++)
	{
		AuditPending *p = &audit_xact.pending[i];
		Relation	index = audit_xact.deferred[p->which].index;
		Datum		key = UInt32GetDatum(p->hashkey);
		bool		isnull = false;
		IndexTuple	itup = index_form_tuple(RelationGetDescr(index), &key, &isnull);

		itup->t_tid = p->tid;
		ES_HASH_DOINSERT(index, itup, audit_writer.leaf);
		pfree(itup);
	}
	RESUME_INTERRUPTS();
	audit_xact.npending = 0;
	audit_xact.flushing = false;
}

/* Keeps the hash index entries of the row just stored in slot for later. */
static void
audit_defer_index(TupleTableSlot *slot)
{
	for (int i = 0; i < audit_xact.ndeferred; i++)
	{
		AuditDeferred *d = &audit_xact.deferred[i];
		AuditPending *p;

		if (slot->tts_isnull[d->attno - 1])
			continue;			/* hash indexes do not store nulls */
		if (d->pred != NULL)
		{
			ExprContext *econtext = GetPerTupleExprContext(audit_writer.estate);

			econtext->ecxt_scantuple = slot;
			if (!ExecQual(d->pred, econtext))
				continue;
		}
		if (audit_xact.npending == audit_xact.maxpending)
		{
			if (audit_xact.maxpending >= AUDIT_MAX_PENDING)
				audit_flush_index();
			else if (audit_xact.pending == NULL)
			{
				audit_xact.maxpending = 1024;
				audit_xact.pending = MemoryContextAlloc(TopTransactionContext,
												sizeof(AuditPending) * audit_xact.maxpending);
			}
			else
			{
				audit_xact.maxpending *= 2;
				audit_xact.pending = repalloc(audit_xact.pending, sizeof(AuditPending) * audit_xact.maxpending);
			}
		}
		p = &audit_xact.pending[audit_xact.npending++];
		p->hashkey = _hash_datum2hashkey(d->index, slot->tts_values[d->attno - 1]);
		p->bucket = 0;
		p->tid = slot->tts_tid;
		p->which = (uint16) i;
		p->subid = GetCurrentSubTransactionId();
	}
}

/* Inserts one audit row; vals/nulls are indexed by the AL_* column ids. */
void
audit_insert(Datum *vals, bool *nulls)
{
	if (audit_writer.stale)
		es_leaf_close(&audit_writer);
	if (audit_writer.leaf == NULL)
		audit_open_leaf();

	vals[AL_ID] = Int64GetDatum(nextval_internal(audit_xact.seqid, false));
	nulls[AL_ID] = false;
	vals[AL_LOGGED_AT] = TimestampTzGetDatum(audit_xact.ts);
	nulls[AL_LOGGED_AT] = false;
	vals[AL_TXID] = Int64GetDatum(audit_xact.txid);
	nulls[AL_TXID] = false;
	vals[AL_ACTOR] = audit_xact.actor;
	nulls[AL_ACTOR] = false;
	vals[AL_ACTOR_ROLE] = audit_xact.actor_role;
	nulls[AL_ACTOR_ROLE] = audit_xact.actor_role_null;
	vals[AL_DB_USER] = audit_xact.db_user;
	nulls[AL_DB_USER] = false;
	vals[AL_APPNAME] = audit_xact.appname;
	nulls[AL_APPNAME] = audit_xact.appname_null;
	es_leaf_insert(&audit_writer, vals, nulls);
	if (audit_xact.closing)
		es_leaf_close(&audit_writer);
}

/*
 * audit_stamp gives a change that another record stands in for (see
 * base/request.h) what its audit row would have held: the next audit id and
 * this transaction's facts, in the caller's memory context.
 */
void
audit_stamp(EsAuditStamp *stamp)
{
	audit_register_callbacks();
	audit_refresh_facts();
	if (!OidIsValid(audit_xact.seqid))
	{
		audit_xact.seqid = get_relname_relid("audit_log_id_seq", get_namespace_oid("elfsofa", false));
		if (!OidIsValid(audit_xact.seqid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("audit log sequence elfsofa.audit_log_id_seq does not exist"),
					 errhint("Reinstall the elfsofa extension.")));
	}
	stamp->id = nextval_internal(audit_xact.seqid, false);
	stamp->txid = audit_xact.txid;
	stamp->db_user = TextDatumGetCString(audit_xact.db_user);
	stamp->actor_role = audit_xact.actor_role_null ? NULL : TextDatumGetCString(audit_xact.actor_role);
	stamp->application_name = audit_xact.appname_null ? NULL : TextDatumGetCString(audit_xact.appname);
}

/* After each audit row: keep its hash index entries for the bucket-ordered write. */
static void
audit_leaf_inserted(EsLeafWriter *w, TupleTableSlot *slot)
{
	if (audit_xact.ndeferred > 0)
		audit_defer_index(slot);
}

/*
 * Before the partition closes: its pending hash index entries are written and
 * the hash indexes, kept out of the writer's own, are closed.
 */
static void
audit_leaf_closing(EsLeafWriter *w)
{
	ResourceOwner save = CurrentResourceOwner;

	audit_flush_index();
	CurrentResourceOwner = TopTransactionResourceOwner;
	for (int i = 0; i < audit_xact.ndeferred; i++)
		index_close(audit_xact.deferred[i].index, RowExclusiveLock);
	audit_xact.ndeferred = 0;
	CurrentResourceOwner = save;
}

/* ---------------------------------------------------------------------
 * Invalidation, transaction end and subtransaction abort
 * --------------------------------------------------------------------- */

/* The metadata cache's relcache callback: the open partition may be stale too. */
void
audit_writer_invalidate(Oid relid)
{
	es_leaf_invalidate(&audit_writer, relid);
}

/* Releases the partition before commit (no leak warnings) and forgets state at the end. */
static void
audit_xact_cb(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (audit_xact.active)
			{
				es_leaf_close(&audit_writer);
				audit_xact.closing = true;
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/* memory lived in TopTransactionContext; resources die with the owner */
			memset(&audit_xact, 0, sizeof(audit_xact));
			es_leaf_forget(&audit_writer);
			break;
		default:
			break;
	}
}

/* Entries of an aborted subtransaction point at dead rows: forget them. */
static void
audit_subxact_cb(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			keep = 0;

	if (event != SUBXACT_EVENT_ABORT_SUB || audit_xact.npending == 0 || audit_xact.flushing)
		return;
	for (int i = 0; i < audit_xact.npending; i++)
		if (audit_xact.pending[i].subid < mySubid)
			audit_xact.pending[keep++] = audit_xact.pending[i];
	audit_xact.npending = keep;
}

/* Sets up the metadata cache and the transaction callbacks, once per backend. */
void
audit_register_callbacks(void)
{
	if (callbacks_registered)
		return;
	audit_meta_register();
	RegisterXactCallback(audit_xact_cb, NULL);
	RegisterSubXactCallback(audit_subxact_cb, NULL);
	callbacks_registered = true;
}

/*
 * audit.c — the audit trail: a generic C trigger that writes one row per
 * changed row into elfsofa.audit_log, plus enable_audit/disable_audit and the
 * append-only guard.
 *
 * Why it is fast:
 *  - who/when facts (actor, JWT role, current_user, application_name, txid)
 *    are computed once per transaction and recomputed only when the setting
 *    they come from changes;
 *  - per-table metadata (key columns, excluded columns, JSON conversion of
 *    every column) is cached by relation OID and dropped on relcache
 *    invalidation;
 *  - row images are written in jsonb's binary form directly from the tuple's
 *    datums (no JsonbValue tree), and an UPDATE compares old and new datums in
 *    C, so unchanged columns cost nothing (toasted ones are not even fetched);
 *  - the audit row goes straight into the current audit_log partition (heap
 *    insert + index insert) through a per-transaction open relation, without
 *    SPI or an executor per row.  Writing directly also means callers need no
 *    privilege on audit_log;
 *  - its hash index entries are collected and written in bucket order before
 *    the next query starts (or at commit), so a 200k-row statement visits
 *    each bucket page once instead of a random page per row.
 */
#include "elfsofa.h"

#include "access/genam.h"
#include "access/hash.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "audit_int.h"

PG_FUNCTION_INFO_V1(es_audit_trigger);
PG_FUNCTION_INFO_V1(es_audit_log_guard);
PG_FUNCTION_INFO_V1(es_enable_audit);
PG_FUNCTION_INFO_V1(es_disable_audit);

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

/* ---------------------------------------------------------------------
 * The trigger
 * --------------------------------------------------------------------- */

/*
 * A TRUNCATE of rel, or (partition != InvalidOid) of that one partition of
 * the audited rel: new_data then names it, {"partition": "schema.name"}.
 */
static void
audit_truncate(Relation rel, Oid partition)
{
	Datum		vals[AL_NCOLS];
	bool		nulls[AL_NCOLS];
	char	   *nsp = get_namespace_name(RelationGetNamespace(rel));

	for (int c = 0; c < AL_NCOLS; c++)
		nulls[c] = true;
	vals[AL_SCHEMA] = CStringGetTextDatum(nsp);
	nulls[AL_SCHEMA] = false;
	vals[AL_TABLE] = CStringGetTextDatum(RelationGetRelationName(rel));
	nulls[AL_TABLE] = false;
	vals[AL_OPERATION] = audit_xact.op_text[OP_TRUNCATE];
	nulls[AL_OPERATION] = false;
	if (OidIsValid(partition))
	{
		JsonbParseState *st = NULL;
		JsonbValue	k,
					v;
		char	   *name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(partition)),
													  get_rel_name(partition));

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "partition";
		k.val.string.len = strlen("partition");
		pushJsonbValue(&st, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = name;
		v.val.string.len = strlen(name);
		pushJsonbValue(&st, WJB_VALUE, &v);
		vals[AL_NEW_DATA] = JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
		nulls[AL_NEW_DATA] = false;
	}
	audit_insert(vals, nulls);
}

/*
 * Whether an UPDATE left a column's value as it was.  An unchanged toasted
 * value keeps its toast pointer, and equal pointers mean equal values, so
 * the value is not fetched and decompressed twice to find out.
 */
static bool
audit_datum_same(Datum a, Datum b, AuditCol *c)
{
	if (c->typlen == -1)
	{
		struct varlena *va = (struct varlena *) DatumGetPointer(a);
		struct varlena *vb = (struct varlena *) DatumGetPointer(b);

		if (VARATT_IS_EXTERNAL_ONDISK(va) && VARATT_IS_EXTERNAL_ONDISK(vb) &&
			VARSIZE_EXTERNAL(va) == VARSIZE_EXTERNAL(vb) &&
			memcmp(va, vb, VARSIZE_EXTERNAL(va)) == 0)
			return true;
	}
	return datum_image_eq(a, b, c->typbyval, c->typlen);
}

static void
audit_row(TriggerData *td, int op)
{
	AuditRel   *e = audit_get_rel(td->tg_relation, td->tg_trigger);
	TupleTableSlot *oldslot = (op == OP_INSERT) ? NULL : td->tg_trigslot;
	TupleTableSlot *newslot = (op == OP_INSERT) ? td->tg_trigslot
		: (op == OP_UPDATE) ? td->tg_newslot : NULL;
	Datum		vals[AL_NCOLS];
	bool		nulls[AL_NCOLS];
	Jsonb	   *pk;

	for (int c = 0; c < AL_NCOLS; c++)
		nulls[c] = true;
	if (oldslot)
		slot_getallattrs(oldslot);
	if (newslot)
		slot_getallattrs(newslot);

	if (op == OP_UPDATE)
	{
		Datum	   *ov = oldslot->tts_values,
				   *nv = newslot->tts_values;
		bool	   *on = oldslot->tts_isnull,
				   *nn = newslot->tts_isnull;
		Datum	   *names = palloc(sizeof(Datum) * Max(e->natts, 1));
		bool	   *changed = palloc0(sizeof(bool) * Max(e->natts, 1));
		int		   *order = palloc(sizeof(int) * Max(e->natts, 1));
		int			nchanged = 0;
		bool		key_changed = false;

		for (int i = 0; i < e->natts; i++)
		{
			AuditCol   *c = &e->cols[i];

			if (c->skip)
				continue;
			if (on[i] && nn[i])
				continue;
			if (!on[i] && !nn[i] && audit_datum_same(ov[i], nv[i], c))
				continue;
			changed[i] = true;
			names[nchanged++] = c->nametext;
			for (int k = 0; k < e->npk; k++)
				if (e->pk[k] == i + 1)
					key_changed = true;
		}
		if (nchanged == 0)
			return;				/* nothing (audited) changed: write nothing */
		nchanged = 0;
		for (int k = 0; k < e->nkeyorder; k++)
			if (changed[e->keyorder[k]])
				order[nchanged++] = e->keyorder[k];
		vals[AL_OLD_DATA] = JsonbPGetDatum(audit_json(e, order, nchanged, ov, on));
		nulls[AL_OLD_DATA] = false;
		vals[AL_NEW_DATA] = JsonbPGetDatum(audit_json(e, order, nchanged, nv, nn));
		nulls[AL_NEW_DATA] = false;
		vals[AL_CHANGED] = PointerGetDatum(construct_array(names, nchanged, TEXTOID, -1, false, TYPALIGN_INT));
		nulls[AL_CHANGED] = false;
		if (key_changed)
		{
			Jsonb	   *opk = audit_key_json(e, ov, on);

			if (opk)
			{
				vals[AL_OLD_PK] = JsonbPGetDatum(opk);
				nulls[AL_OLD_PK] = false;
			}
		}
		pk = audit_key_json(e, nv, nn);
	}
	else if (op == OP_INSERT)
	{
		vals[AL_NEW_DATA] = JsonbPGetDatum(audit_row_json(e, newslot->tts_values, newslot->tts_isnull));
		nulls[AL_NEW_DATA] = false;
		pk = audit_key_json(e, newslot->tts_values, newslot->tts_isnull);
	}
	else
	{
		vals[AL_OLD_DATA] = JsonbPGetDatum(audit_row_json(e, oldslot->tts_values, oldslot->tts_isnull));
		nulls[AL_OLD_DATA] = false;
		pk = audit_key_json(e, oldslot->tts_values, oldslot->tts_isnull);
	}
	if (pk)
	{
		vals[AL_PK] = JsonbPGetDatum(pk);
		nulls[AL_PK] = false;
	}
	vals[AL_SCHEMA] = e->schema_name;
	nulls[AL_SCHEMA] = false;
	vals[AL_TABLE] = e->table_name;
	nulls[AL_TABLE] = false;
	vals[AL_OPERATION] = audit_xact.op_text[op];
	nulls[AL_OPERATION] = false;
	audit_refresh_facts();		/* cheap when nothing changed; after the no-op exit */
	audit_insert(vals, nulls);
}

/* AFTER ROW insert/update/delete and AFTER STATEMENT truncate. */
Datum
es_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	int			op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_trigger() must be fired AFTER"),
				 errhint("Attach it with elfsofa.enable_audit().")));

	audit_register_callbacks();

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		audit_refresh_facts();
		audit_truncate(td->tg_relation, InvalidOid);
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_trigger() must be fired FOR EACH ROW for INSERT, UPDATE and DELETE"),
				 errhint("Attach it with elfsofa.enable_audit().")));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		op = OP_INSERT;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = OP_UPDATE;
	else
		op = OP_DELETE;
	if (!audit_xact.active)
		audit_refresh_facts();	/* op_text lives in the transaction state */
	audit_row(td, op);
	return PointerGetDatum(NULL);
}

/* BEFORE UPDATE/DELETE/TRUNCATE on audit_log: the log is append-only. */
Datum
es_audit_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_log_guard() must be called as a trigger")));
	what = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "UPDATE"
		: TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "DELETE"
		: TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ? "TRUNCATE" : "INSERT";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("audit log is append-only"),
			 errdetail("%s of %s.%s was refused.", what,
					   get_namespace_name(RelationGetNamespace(td->tg_relation)),
					   RelationGetRelationName(td->tg_relation)),
			 errhint("Old audit data leaves only through partition retention or archiving (elfsofa.run_maintenance).")));
	PG_RETURN_NULL();
}

/* ---------------------------------------------------------------------
 * TRUNCATE of an audit_log partition
 *
 * Statement triggers are not cloned onto partitions, and the partition
 * manager creates audit_log partitions at run time, so a direct TRUNCATE of
 * one is refused here instead (in every backend that has loaded elfsofa,
 * i.e. always when it is in shared_preload_libraries).  TRUNCATE of
 * audit_log itself is refused here first and by its statement trigger too.
 * --------------------------------------------------------------------- */

static ProcessUtility_hook_type prev_process_utility = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;

static void
audit_check_truncate(TruncateStmt *stmt)
{
	Oid			nsp = get_namespace_oid("elfsofa", true);
	Oid			logid = OidIsValid(nsp) ? get_relname_relid("audit_log", nsp) : InvalidOid;
	ListCell   *lc;

	if (!OidIsValid(logid))
		return;
	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (!OidIsValid(relid))
			continue;
		/* the root too: its trigger would only fire after the in-use check */
		if (relid == logid ||
			(get_rel_relispartition(relid) && list_member_oid(get_partition_ancestors(relid), logid)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("audit log is append-only"),
					 errdetail("TRUNCATE of %s.%s was refused.",
							   get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
					 errhint("Old audit data leaves only through partition retention or archiving (elfsofa.run_maintenance).")));
	}
}

/* Whether rel carries an enabled elfsofa audit TRUNCATE trigger. */
static bool
audit_records_truncate(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	bool		found = false;

	if (rel->trigdesc)
		for (int i = 0; i < rel->trigdesc->numtriggers && !found; i++)
		{
			Trigger    *t = &rel->trigdesc->triggers[i];

			found = strcmp(t->tgname, AUDIT_TRUNCATE_TRIGGER) == 0 && t->tgenabled != TRIGGER_DISABLED;
		}
	relation_close(rel, AccessShareLock);
	return found;
}

/*
 * Statement triggers are not cloned onto partitions either: a TRUNCATE aimed
 * at one partition of an audited partitioned table fires nothing.  Returns
 * (audited ancestor, partition) oid pairs to record once the TRUNCATE is done.
 */
static List *
audit_truncated_partitions(TruncateStmt *stmt)
{
	List	   *pairs = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);
		ListCell   *ac;

		if (!OidIsValid(relid) || !get_rel_relispartition(relid))
			continue;
		foreach(ac, get_partition_ancestors(relid))
		{
			if (audit_records_truncate(lfirst_oid(ac)))
			{
				pairs = lappend_oid(pairs, lfirst_oid(ac));
				pairs = lappend_oid(pairs, relid);
				break;
			}
		}
	}
	return pairs;
}

static void
audit_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	List	   *truncated = NIL;

	if (IsA(pstmt->utilityStmt, TruncateStmt))
	{
		audit_check_truncate((TruncateStmt *) pstmt->utilityStmt);
		truncated = audit_truncated_partitions((TruncateStmt *) pstmt->utilityStmt);
	}
	/*
	 * REINDEX, VACUUM, COPY and the like must find the index complete:
	 * leafwriter's hook, next in the chain, closes audit_writer before every
	 * such statement, and closing writes the pending entries.
	 */
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	for (int i = 0; i + 1 < list_length(truncated); i += 2)
	{
		Relation	audited = table_open(list_nth_oid(truncated, i), AccessShareLock);

		audit_register_callbacks();
		audit_refresh_facts();
		audit_truncate(audited, list_nth_oid(truncated, i + 1));
		table_close(audited, NoLock);
	}
}

/* Every query, at any nesting level, finds the audit indexes complete. */
static void
audit_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (audit_xact.npending > 0 && !IsInParallelMode())
		audit_flush_index();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

void
es_audit_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = audit_process_utility;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = audit_executor_start;
}

static void
audit_spi_ddl(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "elfsofa: SPI failed (%s) running \"%s\"", SPI_result_code_string(rc), sql);
}

/* Which of our two triggers rel has, and whether the row trigger is a clone. */
static void
audit_trigger_state(Oid relid, bool *has_row, bool *has_truncate, bool *is_clone)
{
	static EsPlan plan = {
		"SELECT tgname::text, tgparentid <> 0 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 "
		"AND tgname IN ('" AUDIT_ROW_TRIGGER "', '" AUDIT_TRUNCATE_TRIGGER "')",
		1, {OIDOID}
	};
	Datum		v[1] = {ObjectIdGetDatum(relid)};

	*has_row = *has_truncate = *is_clone = false;
	es_exec(&plan, v, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (strcmp(name, AUDIT_ROW_TRIGGER) == 0)
		{
			*has_row = true;
			*is_clone = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		}
		else
			*has_truncate = true;
	}
}

/* Drops our triggers from qualname (quietly: only those that exist). */
static void
audit_drop_triggers(const char *qualname, bool has_row, bool has_truncate)
{
	StringInfoData sql;

	initStringInfo(&sql);
	if (has_row)
	{
		appendStringInfo(&sql, "DROP TRIGGER %s ON %s", quote_identifier(AUDIT_ROW_TRIGGER), qualname);
		audit_spi_ddl(sql.data);
	}
	if (has_truncate)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "DROP TRIGGER %s ON %s", quote_identifier(AUDIT_TRUNCATE_TRIGGER), qualname);
		audit_spi_ddl(sql.data);
	}
}

/* Opens the table to (un)audit and checks it is a table we may touch. */
static Relation
audit_open_target(FunctionCallInfo fcinfo, char **qualname)
{
	Oid			relid;
	Relation	rel;
	Oid			nsp;
	Oid			logid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tbl must not be null"),
				 errdetail("Argument \"tbl\" was null.")));
	relid = PG_GETARG_OID(0);
	rel = es_open_relation_arg(relid, "tbl", AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("only tables can be audited"),
				 errdetail("\"%s\" is not a table.", RelationGetRelationName(rel))));
	nsp = get_namespace_oid("elfsofa", true);
	logid = OidIsValid(nsp) ? get_relname_relid("audit_log", nsp) : InvalidOid;
	if (relid == logid || (rel->rd_rel->relispartition && OidIsValid(logid) &&
						   get_partition_parent(relid, true) == logid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the audit log cannot be audited"),
				 errdetail("Argument \"tbl\" was %s.", RelationGetRelationName(rel))));
	*qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										   RelationGetRelationName(rel));
	return rel;
}

static void
audit_refuse_clone(Relation rel, bool is_clone)
{
	if (is_clone)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is audited through its partitioned parent",
						RelationGetRelationName(rel)),
				 errdetail("Its audit trigger was cloned from the parent table."),
				 errhint("Call enable_audit or disable_audit on the partitioned table.")));
}

Datum
es_enable_audit(PG_FUNCTION_ARGS)
{
	char	   *qualname;
	Relation	rel = audit_open_target(fcinfo, &qualname);
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *keys = audit_key_columns(rel);
	Datum	   *elems = NULL;
	bool	   *elnulls = NULL;
	int			nelems = 0;
	StringInfoData sql;
	StringInfoData args;
	bool		has_row,
				has_truncate,
				is_clone;

	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elnulls, &nelems);

	initStringInfo(&args);
	for (int i = 0; i < nelems; i++)
	{
		char	   *col;
		int			attnum;
		bool		dup = false;

		if (elnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("exclude_columns must not contain nulls"),
					 errdetail("exclude_columns[%d] was null.", i + 1)));
		col = TextDatumGetCString(elems[i]);
		attnum = attnameAttNum(rel, col, false);
		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" of table %s does not exist", col, qualname),
					 errdetail("exclude_columns[%d] was \"%s\", which is not a column of %s.",
							   i + 1, col, qualname)));
		if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, keys))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" cannot be excluded from the audit", col),
					 errdetail("exclude_columns[%d] was \"%s\", which is part of the key of %s.",
							   i + 1, col, qualname),
					 errhint("Audit rows are identified by the primary key.")));
		for (int j = 0; j < i; j++)
			if (!elnulls[j] && strcmp(TextDatumGetCString(elems[j]), col) == 0)
				dup = true;
		if (dup)
			continue;
		appendStringInfo(&args, "%s%s", args.len > 0 ? ", " : "",
						 quote_literal_cstr(psprintf("%d:%s", attnum, col)));
	}
	(void) desc;

	if (bms_is_empty(keys))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no primary key", qualname),
				 errdetail("Audit rows identify the changed row by its primary key."),
				 errhint("Add a primary key (or set REPLICA IDENTITY USING INDEX on a unique index) and call enable_audit again.")));

	SPI_connect();
	audit_trigger_state(RelationGetRelid(rel), &has_row, &has_truncate, &is_clone);
	audit_refuse_clone(rel, is_clone);
	audit_drop_triggers(qualname, has_row, has_truncate);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION elfsofa.audit_trigger(%s)",
					 quote_identifier(AUDIT_ROW_TRIGGER), qualname, args.data);
	audit_spi_ddl(sql.data);
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TRIGGER %s AFTER TRUNCATE ON %s "
					 "FOR EACH STATEMENT EXECUTE FUNCTION elfsofa.audit_trigger()",
					 quote_identifier(AUDIT_TRUNCATE_TRIGGER), qualname);
	audit_spi_ddl(sql.data);
	SPI_finish();

	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

Datum
es_disable_audit(PG_FUNCTION_ARGS)
{
	char	   *qualname;
	Relation	rel = audit_open_target(fcinfo, &qualname);
	bool		has_row,
				has_truncate,
				is_clone;

	SPI_connect();
	audit_trigger_state(RelationGetRelid(rel), &has_row, &has_truncate, &is_clone);
	audit_refuse_clone(rel, is_clone);
	audit_drop_triggers(qualname, has_row, has_truncate);
	SPI_finish();
	relation_close(rel, NoLock);
	PG_RETURN_BOOL(has_row || has_truncate);
}

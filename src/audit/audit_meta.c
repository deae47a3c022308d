/*
 * audit_meta.c — per-relation metadata of audited tables, cached by OID.
 *
 * The audit trigger needs, for every table it fires on, the key columns, the
 * excluded columns and how each column becomes JSON.  Working that out reads
 * the catalogs, so it is done once per relation and kept in
 * CacheMemoryContext until a relcache (or schema rename) invalidation marks
 * the entry stale; the next row then rebuilds it.
 */
#include "audit/audit.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

static HTAB *audit_rels = NULL;

/* ---------------------------------------------------------------------
 * Cache invalidation
 * --------------------------------------------------------------------- */

/* Marks cached metadata stale; never frees here (an entry may be in use). */
static void
audit_relcache_cb(Datum arg, Oid relid)
{
	if (audit_rels != NULL)
	{
		HASH_SEQ_STATUS st;
		AuditRel   *e;

		hash_seq_init(&st, audit_rels);
		while ((e = hash_seq_search(&st)) != NULL)
		{
			if (relid == InvalidOid || e->relid == relid || e->defrelid == relid)
				e->valid = false;
		}
	}
	audit_writer_invalidate(relid);
}

/* Schema renames change recorded names without a relcache event. */
static void
audit_syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	audit_relcache_cb(arg, InvalidOid);
}

/*
 * Creates the cache and registers its invalidation callbacks; called once
 * per backend, from audit_register_callbacks.
 */
void
audit_meta_register(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(AuditRel);
	ctl.hcxt = CacheMemoryContext;
	audit_rels = hash_create("elfsofa audit relations", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(audit_relcache_cb, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, audit_syscache_cb, (Datum) 0);
}

/* ---------------------------------------------------------------------
 * Building the per-relation metadata
 * --------------------------------------------------------------------- */

/* The table a (possibly cloned) trigger was originally created on. */
static Oid
audit_trigger_root(Oid tgoid, Oid relid)
{
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);

	for (int depth = 0; depth < 64 && OidIsValid(tgoid); depth++)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;
		Oid			parent = InvalidOid;

		ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(tgoid));
		scan = systable_beginscan(tgrel, TriggerOidIndexId, true, NULL, 1, &key);
		tup = systable_getnext(scan);
		if (HeapTupleIsValid(tup))
		{
			Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);

			relid = t->tgrelid;
			parent = t->tgparentid;
		}
		systable_endscan(scan);
		tgoid = parent;
	}
	table_close(tgrel, AccessShareLock);
	return relid;
}

/* Key columns: the primary key, else the replica identity index. */
Bitmapset *
audit_key_columns(Relation rel)
{
	Bitmapset  *b = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);

	if (bms_is_empty(b))
		b = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	return b;
}

static JsonCat
audit_json_category(Oid basetype)
{
	switch (basetype)
	{
		case BOOLOID:
			return JC_BOOL;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return JC_INT;
		case NUMERICOID:
			return JC_NUMERIC;
		case FLOAT4OID:
		case FLOAT8OID:
			return JC_FLOAT;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return JC_DATETIME;
		case JSONBOID:
			return JC_JSONB;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return JC_TEXT;
		case JSONOID:
			return JC_TO_JSONB;
		default:
			break;
	}
	/* user types may carry a cast to json; arrays and rows nest */
	if (basetype >= FirstNormalObjectId || OidIsValid(get_element_type(basetype)) ||
		type_is_rowtype(basetype) || basetype == RECORDOID)
		return JC_TO_JSONB;
	return JC_OUTPUT;
}

/*
 * Current names of the excluded columns.  Trigger arguments are "attnum:name"
 * with attnum in the table auditing was enabled on, so a renamed column stays
 * excluded (its attnum still names it) and a dropped one simply disappears;
 * partitions match by the parent's current name.  A bare "name" argument
 * (trigger made by hand) is matched by name; AUDIT_ARG_INSERT_KEY is an
 * option, not a column.
 */
char	  **
audit_excluded_names(Trigger *tg, Oid defrelid, int *n)
{
	char	  **out = palloc(sizeof(char *) * Max(tg->tgnargs, 1));

	*n = 0;
	for (int a = 0; a < tg->tgnargs; a++)
	{
		char	   *arg = tg->tgargs[a];
		char	   *colon = strchr(arg, ':');
		char	   *end;
		long		attnum;

		if (strcmp(arg, AUDIT_ARG_INSERT_KEY) == 0)
			continue;			/* an option (audit_build_rel), no column */
		attnum = colon ? strtol(arg, &end, 10) : 0;
		if (colon && end == colon && attnum > 0 && attnum <= MaxAttrNumber)
		{
			char	   *name = get_attname(defrelid, (AttrNumber) attnum, true);

			/* dropped columns keep a placeholder name no live column has */
			out[(*n)++] = name ? name : pstrdup(colon + 1);
		}
		else
			out[(*n)++] = arg;
	}
	return out;
}

static int
audit_key_cmp(const AuditCol *a, const AuditCol *b)
{
	if (a->namelen != b->namelen)
		return a->namelen - b->namelen;
	return memcmp(a->name, b->name, a->namelen);
}

static void
audit_build_rel(AuditRel *e, Relation rel, Trigger *tg)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;
	Bitmapset  *keys;
	int			k;
	char	   *nsp;
	char	  **excl;
	int			nexcl;

	if (e->cxt != NULL)
		MemoryContextDelete(e->cxt);
	e->cxt = NULL;
	e->valid = false;

	e->defrelid = tg->tgisclone ? audit_trigger_root(tg->tgoid, RelationGetRelid(rel))
		: RelationGetRelid(rel);
	nsp = get_namespace_name(get_rel_namespace(e->defrelid));
	excl = audit_excluded_names(tg, e->defrelid, &nexcl);
	keys = audit_key_columns(rel);

	e->cxt = AllocSetContextCreate(CacheMemoryContext, "elfsofa audit relation",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(e->cxt);

	e->tgoid = tg->tgoid;
	e->insert_key_only = false;
	for (int a = 0; a < tg->tgnargs; a++)
		if (strcmp(tg->tgargs[a], AUDIT_ARG_INSERT_KEY) == 0)
			e->insert_key_only = true;
	e->schema_name = CStringGetTextDatum(nsp ? nsp : "?");
	e->table_name = CStringGetTextDatum(get_rel_name(e->defrelid));
	e->natts = desc->natts;
	e->cols = palloc0(sizeof(AuditCol) * desc->natts);
	e->npk = bms_num_members(keys);
	e->pk = palloc(sizeof(AttrNumber) * Max(e->npk, 1));
	k = 0;
	for (int i = -1; (i = bms_next_member(keys, i)) >= 0;)
		e->pk[k++] = i + FirstLowInvalidHeapAttributeNumber;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AuditCol   *c = &e->cols[i];

		if (att->attisdropped)
		{
			c->skip = true;
			continue;
		}
		c->name = pstrdup(NameStr(att->attname));
		c->namelen = strlen(c->name);
		c->nametext = PointerGetDatum(cstring_to_text_with_len(c->name, c->namelen));
		/* excluded columns still get conversion info: a key may come to include one */
		for (int a = 0; a < nexcl; a++)
			if (strcmp(excl[a], c->name) == 0)
				c->skip = true;
		c->typlen = att->attlen;
		c->typbyval = att->attbyval;
		c->basetype = getBaseType(att->atttypid);
		c->cat = audit_json_category(c->basetype);
		if (c->cat == JC_TO_JSONB)
		{
			fmgr_info_cxt(F_TO_JSONB, &c->fn, e->cxt);
			c->fn.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
												  list_make1(makeNullConst(att->atttypid, att->atttypmod,
																		   att->attcollation)),
												  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		}
		else if (c->cat == JC_OUTPUT || c->cat == JC_FLOAT || c->cat == JC_NUMERIC)
		{
			Oid			outfn;
			bool		varlena;

			getTypeOutputInfo(c->basetype, &outfn, &varlena);
			fmgr_info_cxt(outfn, &c->fn, e->cxt);
		}
	}
	/*
	 * jsonb stores object keys sorted by length then bytes and sorts them on
	 * every build; pushing them in that order makes the sort a single pass.
	 */
	e->keyorder = palloc(sizeof(int) * Max(desc->natts, 1));
	e->nkeyorder = 0;
	for (int i = 0; i < desc->natts; i++)
	{
		int			j;

		if (e->cols[i].skip)
			continue;
		j = e->nkeyorder++;
		while (j > 0 && audit_key_cmp(&e->cols[e->keyorder[j - 1]], &e->cols[i]) > 0)
		{
			e->keyorder[j] = e->keyorder[j - 1];
			j--;
		}
		e->keyorder[j] = i;
	}
	e->pkorder = palloc(sizeof(int) * Max(e->npk, 1));
	for (int k = 0; k < e->npk; k++)
	{
		int			i = e->pk[k] - 1;
		int			j = k;

		while (j > 0 && audit_key_cmp(&e->cols[e->pkorder[j - 1]], &e->cols[i]) > 0)
		{
			e->pkorder[j] = e->pkorder[j - 1];
			j--;
		}
		e->pkorder[j] = i;
	}
	MemoryContextSwitchTo(old);
	e->valid = true;
}

AuditRel *
audit_get_rel(Relation rel, Trigger *tg)
{
	Oid			relid = RelationGetRelid(rel);
	bool		found;
	AuditRel   *e = hash_search(audit_rels, &relid, HASH_ENTER, &found);

	if (!found)
	{
		e->cxt = NULL;
		e->valid = false;
		e->defrelid = InvalidOid;
	}
	if (!e->valid || e->tgoid != tg->tgoid)
		audit_build_rel(e, rel, tg);
	return e;
}

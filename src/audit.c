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
 *  - row images are turned into jsonb directly from the tuple's datums, and an
 *    UPDATE compares old and new datums in C, so unchanged columns cost nothing;
 *  - the audit row goes straight into the current audit_log partition (heap
 *    insert + index insert) through a per-transaction open relation, without
 *    SPI or an executor per row.  Writing directly also means callers need no
 *    privilege on audit_log.
 */
#include "elfsofa.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "tcop/utility.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(es_audit_trigger);
PG_FUNCTION_INFO_V1(es_audit_log_guard);
PG_FUNCTION_INFO_V1(es_enable_audit);
PG_FUNCTION_INFO_V1(es_disable_audit);

#define AUDIT_ROW_TRIGGER		"elfsofa_audit"
#define AUDIT_TRUNCATE_TRIGGER	"elfsofa_audit_truncate"

/* ---------------------------------------------------------------------
 * Per-relation metadata cache
 * --------------------------------------------------------------------- */

/* How a column's value becomes JSON (mirrors to_jsonb's categories). */
typedef enum JsonCat
{
	JC_BOOL,
	JC_INT,
	JC_NUMERIC,
	JC_FLOAT,
	JC_DATETIME,
	JC_JSONB,
	JC_TEXT,
	JC_OUTPUT,					/* type output function, as a JSON string */
	JC_TO_JSONB					/* arrays, composites, json, user types: to_jsonb() */
} JsonCat;

typedef struct AuditCol
{
	bool		skip;			/* dropped or excluded */
	char	   *name;
	int			namelen;
	Oid			basetype;
	int16		typlen;
	bool		typbyval;
	JsonCat		cat;
	FmgrInfo	fn;				/* output function, or to_jsonb with fn_expr set */
} AuditCol;

typedef struct AuditRel
{
	Oid			relid;			/* hash key: the relation the trigger fired on */
	bool		valid;
	Oid			tgoid;			/* trigger this entry was built for */
	Oid			defrelid;		/* table auditing was enabled on (parent of a partition) */
	MemoryContext cxt;
	Datum		schema_name;	/* text */
	Datum		table_name;		/* text */
	int			natts;
	AuditCol   *cols;
	int			nkeyorder;
	int		   *keyorder;		/* audited columns in jsonb key order (length, then bytes) */
	int			npk;
	AttrNumber *pk;				/* 1-based attnums of the key */
} AuditRel;

static HTAB *audit_rels = NULL;

/* ---------------------------------------------------------------------
 * Per-transaction state: who is acting, and the open audit_log partition
 * --------------------------------------------------------------------- */

/* Logical columns of audit_log, in the order we fill them. */
enum
{
	AL_ID, AL_LOGGED_AT, AL_TXID, AL_ACTOR, AL_ACTOR_ROLE, AL_DB_USER, AL_APPNAME,
	AL_SCHEMA, AL_TABLE, AL_OPERATION, AL_PK, AL_OLD_PK, AL_OLD_DATA, AL_NEW_DATA,
	AL_CHANGED, AL_NCOLS
};
static const char *const al_names[AL_NCOLS] = {
	"id", "logged_at", "txid", "actor", "actor_role", "db_user", "application_name",
	"schema_name", "table_name", "operation", "pk", "old_pk", "old_data", "new_data",
	"changed_columns"
};

typedef struct AuditXact
{
	bool		active;			/* set up in this transaction */
	bool		closing;		/* past PRE_COMMIT: do not keep relations open */
	/* facts and the settings they were computed from */
	char	   *claims_raw;
	char	   *actor_guc;
	char	   *appname_raw;
	Oid			userid;
	int64		txid;
	TimestampTz ts;
	Datum		actor;
	Datum		actor_role;
	bool		actor_role_null;
	Datum		db_user;
	Datum		appname;
	bool		appname_null;
	Datum		op_text[4];		/* INSERT, UPDATE, DELETE, TRUNCATE */
	Oid			seqid;
} AuditXact;

static AuditXact ax;

/* the audit_log partition for ts, opened under the top transaction's owner (src/leafwriter.c) */
static EsLeafWriter audit_leaf = {"audit_log", AL_NCOLS, al_names};
static bool callbacks_registered = false;

enum
{
	OP_INSERT, OP_UPDATE, OP_DELETE, OP_TRUNCATE
};

/* ---------------------------------------------------------------------
 * Cache invalidation and transaction end
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
	if (ax.active)
		es_leaf_invalidate(&audit_leaf, relid);
}

/* Schema renames change recorded names without a relcache event. */
static void
audit_syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	audit_relcache_cb(arg, InvalidOid);
}

/* Releases the partition before commit (no leak warnings) and forgets state at the end. */
static void
audit_xact_cb(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (ax.active)
			{
				es_leaf_close(&audit_leaf);
				ax.closing = true;
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/* memory lived in TopTransactionContext; resources die with the owner */
			memset(&ax, 0, sizeof(ax));
			es_leaf_forget(&audit_leaf);
			break;
		default:
			break;
	}
}

static void
audit_register_callbacks(void)
{
	HASHCTL		ctl;

	if (callbacks_registered)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(AuditRel);
	ctl.hcxt = CacheMemoryContext;
	audit_rels = hash_create("elfsofa audit relations", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(audit_relcache_cb, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, audit_syscache_cb, (Datum) 0);
	RegisterXactCallback(audit_xact_cb, NULL);
	callbacks_registered = true;
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
static Bitmapset *
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
 * (trigger made by hand) is matched by name.
 */
static char **
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
	MemoryContextSwitchTo(old);
	e->valid = true;
}

static AuditRel *
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

/* ---------------------------------------------------------------------
 * Row images as jsonb, straight from the datums
 * --------------------------------------------------------------------- */

static void
audit_push_jsonb(JsonbParseState **st, Jsonb *jb)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbExtractScalar(&jb->root, &v);
		pushJsonbValue(st, WJB_VALUE, &v);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &jb->root;
	v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
audit_push_string(JsonbParseState **st, char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = s;
	v.val.string.len = strlen(s);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Appends "name": value for one column, the way to_jsonb would render it. */
static void
audit_push_column(JsonbParseState **st, AuditCol *c, Datum d, bool isnull)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = c->name;
	v.val.string.len = c->namelen;
	pushJsonbValue(st, WJB_KEY, &v);

	if (isnull)
	{
		v.type = jbvNull;
		pushJsonbValue(st, WJB_VALUE, &v);
		return;
	}
	switch (c->cat)
	{
		case JC_BOOL:
			v.type = jbvBool;
			v.val.boolean = DatumGetBool(d);
			break;
		case JC_INT:
			{
				int64		n = c->basetype == INT2OID ? DatumGetInt16(d)
					: c->basetype == INT4OID ? DatumGetInt32(d) : DatumGetInt64(d);

				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(n);
				break;
			}
		case JC_NUMERIC:
			{
				Numeric		n = DatumGetNumeric(d);

				if (numeric_is_nan(n) || numeric_is_inf(n))
				{
					audit_push_string(st, OutputFunctionCall(&c->fn, d));
					return;
				}
				v.type = jbvNumeric;
				v.val.numeric = n;
				break;
			}
		case JC_FLOAT:
			{
				char	   *s = OutputFunctionCall(&c->fn, d);
				double		f = c->basetype == FLOAT4OID ? DatumGetFloat4(d) : DatumGetFloat8(d);

				if (isnan(f) || isinf(f))
				{
					audit_push_string(st, s);
					return;
				}
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
																	ObjectIdGetDatum(InvalidOid),
																	Int32GetDatum(-1)));
				break;
			}
		case JC_DATETIME:
			audit_push_string(st, JsonEncodeDateTime(NULL, d, c->basetype, NULL));
			return;
		case JC_JSONB:
			audit_push_jsonb(st, DatumGetJsonbP(d));
			return;
		case JC_TEXT:
			{
				text	   *t = DatumGetTextPP(d);

				v.type = jbvString;
				v.val.string.val = VARDATA_ANY(t);
				v.val.string.len = VARSIZE_ANY_EXHDR(t);
				break;
			}
		case JC_OUTPUT:
			audit_push_string(st, OutputFunctionCall(&c->fn, d));
			return;
		case JC_TO_JSONB:
			audit_push_jsonb(st, DatumGetJsonbP(FunctionCall1(&c->fn, d)));
			return;
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Whole row (INSERT/DELETE) as a jsonb object, excluded columns left out. */
static Jsonb *
audit_row_json(AuditRel *e, Datum *values, bool *nulls)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int k = 0; k < e->nkeyorder; k++)
	{
		int			i = e->keyorder[k];

		audit_push_column(&st, &e->cols[i], values[i], nulls[i]);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* The row's key as a jsonb object, or NULL when the table has none. */
static Jsonb *
audit_key_json(AuditRel *e, Datum *values, bool *nulls)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	if (e->npk == 0)
		return NULL;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int k = 0; k < e->npk; k++)
	{
		int			i = e->pk[k] - 1;

		audit_push_column(&st, &e->cols[i], values[i], nulls[i]);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

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
static void
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

	if (!ax.active)
	{
		FullTransactionId fxid = GetTopFullTransactionId();

		memset(&ax, 0, sizeof(ax));
		ax.active = true;
		ax.txid = (int64) U64FromFullTransactionId(fxid);
		ax.ts = GetCurrentTransactionStartTimestamp();
		old = MemoryContextSwitchTo(TopTransactionContext);
		ax.op_text[OP_INSERT] = CStringGetTextDatum("INSERT");
		ax.op_text[OP_UPDATE] = CStringGetTextDatum("UPDATE");
		ax.op_text[OP_DELETE] = CStringGetTextDatum("DELETE");
		ax.op_text[OP_TRUNCATE] = CStringGetTextDatum("TRUNCATE");
		MemoryContextSwitchTo(old);
		ax.userid = InvalidOid;
		/* force the first computation below */
		ax.claims_raw = xact_strdup("\x01");
	}

	if (userid != ax.userid)
	{
		old = MemoryContextSwitchTo(TopTransactionContext);
		ax.db_user = CStringGetTextDatum(GetUserNameFromId(userid, false));
		MemoryContextSwitchTo(old);
	}

	if (str_differs(ax.claims_raw, claims) || str_differs(ax.actor_guc, actor_guc) ||
		userid != ax.userid)
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
			ax.actor = CStringGetTextDatum(sub);
		else if (actor_guc != NULL)
			ax.actor = CStringGetTextDatum(actor_guc);
		else
			ax.actor = ax.db_user;
		ax.actor_role_null = (role == NULL);
		if (role != NULL)
			ax.actor_role = CStringGetTextDatum(role);
		MemoryContextSwitchTo(old);
		ax.claims_raw = xact_strdup(claims);
		ax.actor_guc = xact_strdup(actor_guc);
	}
	ax.userid = userid;

	if (str_differs(ax.appname_raw, application_name) || ax.appname == (Datum) 0)
	{
		const char *a = application_name;

		ax.appname_null = (a == NULL || a[0] == '\0');
		old = MemoryContextSwitchTo(TopTransactionContext);
		ax.appname = CStringGetTextDatum(ax.appname_null ? "" : a);
		MemoryContextSwitchTo(old);
		ax.appname_raw = xact_strdup(a);
	}
}

/* ---------------------------------------------------------------------
 * Writing audit rows directly into the current audit_log partition
 * --------------------------------------------------------------------- */

/* Opens the audit_log partition holding ax.ts with its indexes. */
static void
audit_open_leaf(void)
{
	Oid			nsp = get_namespace_oid("elfsofa", false);
	Oid			rootid = get_relname_relid("audit_log", nsp);

	ax.seqid = get_relname_relid("audit_log_id_seq", nsp);
	if (!OidIsValid(rootid) || !OidIsValid(ax.seqid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("audit log table elfsofa.audit_log does not exist"),
				 errhint("Reinstall the elfsofa extension, or disable auditing with elfsofa.disable_audit().")));
	if (!es_leaf_open(&audit_leaf, rootid, ax.ts))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("no partition of elfsofa.audit_log for the current transaction"),
				 errdetail("Audit rows go to the partition covering the transaction start time, %s.",
						   timestamptz_to_str(ax.ts)),
				 errhint("Run elfsofa.run_maintenance() to create audit_log partitions ahead.")));
}

/* Inserts one audit row; vals/nulls are indexed by the AL_* column ids. */
static void
audit_insert(Datum *vals, bool *nulls)
{
	if (audit_leaf.stale)
		es_leaf_close(&audit_leaf);
	if (audit_leaf.leaf == NULL)
		audit_open_leaf();

	vals[AL_ID] = Int64GetDatum(nextval_internal(ax.seqid, false));
	nulls[AL_ID] = false;
	vals[AL_LOGGED_AT] = TimestampTzGetDatum(ax.ts);
	nulls[AL_LOGGED_AT] = false;
	vals[AL_TXID] = Int64GetDatum(ax.txid);
	nulls[AL_TXID] = false;
	vals[AL_ACTOR] = ax.actor;
	nulls[AL_ACTOR] = false;
	vals[AL_ACTOR_ROLE] = ax.actor_role;
	nulls[AL_ACTOR_ROLE] = ax.actor_role_null;
	vals[AL_DB_USER] = ax.db_user;
	nulls[AL_DB_USER] = false;
	vals[AL_APPNAME] = ax.appname;
	nulls[AL_APPNAME] = ax.appname_null;
	es_leaf_insert(&audit_leaf, vals, nulls);
	if (ax.closing)
		es_leaf_close(&audit_leaf);
}

/* ---------------------------------------------------------------------
 * The trigger
 * --------------------------------------------------------------------- */

static void
audit_truncate(Relation rel)
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
	vals[AL_OPERATION] = ax.op_text[OP_TRUNCATE];
	nulls[AL_OPERATION] = false;
	audit_insert(vals, nulls);
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
		JsonbParseState *ost = NULL,
				   *nst = NULL;
		Datum	   *names = NULL;
		int			nchanged = 0;
		bool		key_changed = false;

		for (int i = 0; i < e->natts; i++)
		{
			AuditCol   *c = &e->cols[i];

			if (c->skip)
				continue;
			if (on[i] && nn[i])
				continue;
			if (!on[i] && !nn[i] && datum_image_eq(ov[i], nv[i], c->typbyval, c->typlen))
				continue;
			if (nchanged == 0)
			{
				names = palloc(sizeof(Datum) * e->natts);
				pushJsonbValue(&ost, WJB_BEGIN_OBJECT, NULL);
				pushJsonbValue(&nst, WJB_BEGIN_OBJECT, NULL);
			}
			names[nchanged++] = PointerGetDatum(cstring_to_text_with_len(c->name, c->namelen));
			audit_push_column(&ost, c, ov[i], on[i]);
			audit_push_column(&nst, c, nv[i], nn[i]);
			for (int k = 0; k < e->npk; k++)
				if (e->pk[k] == i + 1)
					key_changed = true;
		}
		if (nchanged == 0)
			return;				/* nothing (audited) changed: write nothing */
		vals[AL_OLD_DATA] = JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&ost, WJB_END_OBJECT, NULL)));
		nulls[AL_OLD_DATA] = false;
		vals[AL_NEW_DATA] = JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&nst, WJB_END_OBJECT, NULL)));
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
	vals[AL_OPERATION] = ax.op_text[op];
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
		audit_truncate(td->tg_relation);
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
	if (!ax.active)
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

static void
audit_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (IsA(pstmt->utilityStmt, TruncateStmt))
		audit_check_truncate((TruncateStmt *) pstmt->utilityStmt);
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
es_audit_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = audit_process_utility;
}

/* ---------------------------------------------------------------------
 * enable_audit / disable_audit
 * --------------------------------------------------------------------- */

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

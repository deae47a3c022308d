/*
 * elfsofa.c — module entry point, settings, and the small utilities every area
 * shares: cached SPI plans, the acting user, and argument validation.
 */
#include "elfsofa.h"

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "access/relation.h"
#include "utils/lsyscache.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "executor/tuptable.h"
#include "parser/parse_relation.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

char	   *es_guc_actor = NULL;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("elfsofa.actor",
							   "Who is acting when no JWT claims are present (psql, pg_cron).",
							   "Recorded in the stock ledger and the audit log; empty means current_user.",
							   &es_guc_actor,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
	es_ops_init();
	es_orders_init();

	es_leafwriter_init();
	es_events_init();
	es_partitions_init();
	es_ratelimit_init();
	es_audit_init();

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("elfsofa");
#else
	EmitWarningsOnPlaceholders("elfsofa");
#endif
}

SPIPlanPtr
es_plan(EsPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes,
											   p->generic ? CURSOR_OPT_GENERIC_PLAN : 0);

		if (plan == NULL)
			elog(ERROR, "elfsofa: could not prepare \"%s\": %s",
				 p->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "elfsofa: could not keep plan");
		p->plan = plan;
	}
	return p->plan;
}

int
es_exec(EsPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc = SPI_execute_plan(es_plan(p), values, nulls, read_only, count);

	if (rc < 0)
		elog(ERROR, "elfsofa: SPI failed (%s) running \"%s\"",
			 SPI_result_code_string(rc), p->sql);
	return rc;
}

Jsonb *
es_jwt_claims(void)
{
	const char *raw = GetConfigOption("request.jwt.claims", true, false);

	if (raw == NULL || raw[0] == '\0')
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(raw)));
}

void
es_jo_keyval(EsJo *o, const char *key, int keylen, const JsonbValue *val)
{
	JsonbPair  *p;

	if (o->n == ES_JO_MAXPAIRS)
		elog(ERROR, "elfsofa: too many keys in a built jsonb object");
	p = &o->pairs[o->n];
	p->key.type = jbvString;
	p->key.val.string.val = (char *) key;
	p->key.val.string.len = keylen;
	p->value = *val;
	p->order = o->n++;
}

void
es_jo_val(EsJo *o, const char *key, const JsonbValue *val)
{
	es_jo_keyval(o, key, strlen(key), val);
}

/* A jsonb string (null for NULL) and a jsonb number (null for NULL), as both builders push them. */
void
es_jbv_str(JsonbValue *v, const char *val)
{
	if (val == NULL)
		v->type = jbvNull;
	else
	{
		v->type = jbvString;
		v->val.string.val = (char *) val;
		v->val.string.len = strlen(val);
	}
}

void
es_jbv_num(JsonbValue *v, struct NumericData *val)
{
	if (val == NULL)
		v->type = jbvNull;
	else
	{
		v->type = jbvNumeric;
		v->val.numeric = val;
	}
}

void
es_jo_str(EsJo *o, const char *key, const char *val)
{
	JsonbValue	v;

	es_jbv_str(&v, val);
	es_jo_val(o, key, &v);
}

void
es_jo_num(EsJo *o, const char *key, struct NumericData *val)
{
	JsonbValue	v;

	es_jbv_num(&v, val);
	es_jo_val(o, key, &v);
}

void
es_jo_int(EsJo *o, const char *key, int64 val)
{
	es_jo_num(o, key, int64_to_numeric(val));
}

/* Sorts the pairs as jsonb stores object keys (shorter first, then bytewise) and points out at them. */
void
es_jo_value(EsJo *o, JsonbValue *out)
{
	for (int i = 1; i < o->n; i++)
	{
		JsonbPair	cur = o->pairs[i];
		int			j = i - 1;

		for (; j >= 0; j--)
		{
			JsonbValue *a = &o->pairs[j].key;
			int			c = a->val.string.len != cur.key.val.string.len ?
				(a->val.string.len > cur.key.val.string.len ? 1 : -1) :
				memcmp(a->val.string.val, cur.key.val.string.val, a->val.string.len);

			if (c == 0)
				elog(ERROR, "elfsofa: key \"%.*s\" twice in a built jsonb object",
					 cur.key.val.string.len, cur.key.val.string.val);
			if (c < 0)
				break;
			o->pairs[j + 1] = o->pairs[j];
		}
		o->pairs[j + 1] = cur;
	}
	out->type = jbvObject;
	out->val.object.nPairs = o->n;
	out->val.object.pairs = o->pairs;
}

Jsonb *
es_jo_finish(EsJo *o)
{
	JsonbValue	v;

	es_jo_value(o, &v);
	return JsonbValueToJsonb(&v);
}

/*
 * jsonb as text, the same text as jsonb_out (JsonbToCString) gives, written
 * straight from the binary containers: no iterator, and strings copied in
 * runs between the characters that need escaping.  Every event's payload is
 * made with it.
 */
static void es_jb_text_container(StringInfo out, JsonbContainer *c);

/*
 * appendBinaryStringInfo and appendStringInfoChar, inlined: the text writer
 * makes a hundred small appends per event.
 */
static inline void
es_put(StringInfo out, const char *s, int n)
{
	if (out->len + n >= out->maxlen)
		enlargeStringInfo(out, n);
	memcpy(out->data + out->len, s, n);
	out->len += n;
	out->data[out->len] = '\0';
}

static inline void
es_putc(StringInfo out, char c)
{
	if (out->len + 1 >= out->maxlen)
		enlargeStringInfo(out, 1);
	out->data[out->len++] = c;
	out->data[out->len] = '\0';
}

/*
 * How jsonb_out writes the bytes a JSON string cannot hold as they are
 * (control characters, '"' and '\\'); NULL for every other byte.
 */
static const char *const es_json_escape[256] = {
	[0x00] = "\\u0000", [0x01] = "\\u0001", [0x02] = "\\u0002", [0x03] = "\\u0003",
	[0x04] = "\\u0004", [0x05] = "\\u0005", [0x06] = "\\u0006", [0x07] = "\\u0007",
	[0x08] = "\\b", [0x09] = "\\t", [0x0a] = "\\n", [0x0b] = "\\u000b",
	[0x0c] = "\\f", [0x0d] = "\\r", [0x0e] = "\\u000e", [0x0f] = "\\u000f",
	[0x10] = "\\u0010", [0x11] = "\\u0011", [0x12] = "\\u0012", [0x13] = "\\u0013",
	[0x14] = "\\u0014", [0x15] = "\\u0015", [0x16] = "\\u0016", [0x17] = "\\u0017",
	[0x18] = "\\u0018", [0x19] = "\\u0019", [0x1a] = "\\u001a", [0x1b] = "\\u001b",
	[0x1c] = "\\u001c", [0x1d] = "\\u001d", [0x1e] = "\\u001e", [0x1f] = "\\u001f",
	['"'] = "\\\"", ['\\'] = "\\\\"
};

void
es_json_string(StringInfo out, const char *s, int len)
{
	const char *run = s;
	const char *end = s + len;

	/* room for the quotes and the string as it is: escapes are rare */
	enlargeStringInfo(out, len + 2);
	es_putc(out, '"');
	for (const char *p = s; p < end; p++)
	{
		const char *esc = es_json_escape[(unsigned char) *p];

		if (likely(esc == NULL))
			continue;
		es_put(out, run, p - run);
		es_put(out, esc, strlen(esc));
		run = p + 1;
	}
	es_put(out, run, end - run);
	es_putc(out, '"');
}

/*
 * Where a child's data ends, given where it starts: its JEntry holds either
 * the end offset or the length (as getJsonbOffset/getJsonbLength read them,
 * here without walking back for every child).
 */
static inline uint32
es_jb_end(JEntry e, uint32 start)
{
	return JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : start + JBE_OFFLENFLD(e);
}

/* A value whose data is base[off, off + len) and whose JEntry is e. */
static void
es_jb_text_child(StringInfo out, JEntry e, char *base, uint32 off, uint32 len)
{
	if (JBE_ISNULL(e))
		es_put(out, "null", 4);
	else if (JBE_ISBOOL_TRUE(e))
		es_put(out, "true", 4);
	else if (JBE_ISBOOL_FALSE(e))
		es_put(out, "false", 5);
	else if (JBE_ISSTRING(e))
		es_json_string(out, base + off, len);
	else if (JBE_ISNUMERIC(e))
		appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																		PointerGetDatum(base + INTALIGN(off)))));
	else
		es_jb_text_container(out, (JsonbContainer *) (base + INTALIGN(off)));
}

static void
es_jb_text_container(StringInfo out, JsonbContainer *c)
{
	uint32		n = JsonContainerSize(c);

	check_stack_depth();
	if (JsonContainerIsObject(c))
	{
		/* keys are children 0..n-1, their values n..2n-1; the data follows in that order */
		char	   *base = (char *) &c->children[n * 2];
		uint32		kstart = 0;
		uint32		vstart = n > 0 ? getJsonbOffset(c, n) : 0;

		es_putc(out, '{');
		for (uint32 i = 0; i < n; i++)
		{
			uint32		kend = es_jb_end(c->children[i], kstart);
			uint32		vend = es_jb_end(c->children[n + i], vstart);

			if (i > 0)
				es_put(out, ", ", 2);
			es_json_string(out, base + kstart, kend - kstart);
			es_put(out, ": ", 2);
			es_jb_text_child(out, c->children[n + i], base, vstart, vend - vstart);
			kstart = kend;
			vstart = vend;
		}
		es_putc(out, '}');
	}
	else
	{
		char	   *base = (char *) &c->children[n];
		uint32		start = 0;

		es_putc(out, '[');
		for (uint32 i = 0; i < n; i++)
		{
			uint32		end = es_jb_end(c->children[i], start);

			if (i > 0)
				es_put(out, ", ", 2);
			es_jb_text_child(out, c->children[i], base, start, end - start);
			start = end;
		}
		es_putc(out, ']');
	}
}

char *
es_jsonb_text(Jsonb *jb)
{
	StringInfoData out;

	if (JB_ROOT_IS_SCALAR(jb))
		return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	initStringInfo(&out);
	es_jb_text_container(&out, &jb->root);
	return out.data;
}

char *
es_jsonb_get_text(Jsonb *jb, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

char *
es_actor(void)
{
	Jsonb	   *claims = es_jwt_claims();
	char	   *sub;

	sub = es_jsonb_get_text(claims, "sub");
	if (sub != NULL && sub[0] != '\0')
		return sub;
	if (es_guc_actor != NULL && es_guc_actor[0] != '\0')
		return pstrdup(es_guc_actor);
	return GetUserNameFromId(GetOuterUserId(), false);
}

char *
es_require_text(FunctionCallInfo fcinfo, int argno, const char *argname, int maxlen)
{
	text	   *t;
	char	   *s;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", argname),
				 errdetail("Argument \"%s\" was null.", argname)));
	t = PG_GETARG_TEXT_PP(argno);
	s = text_to_cstring(t);
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname),
				 errdetail("Argument \"%s\" was an empty string.", argname)));
	if (maxlen > 0 && strlen(s) > (size_t) maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", argname),
				 errdetail("Argument \"%s\" has %zu bytes; at most %d are allowed.",
						   argname, strlen(s), maxlen)));
	return s;
}

int32
es_require_quantity(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	int32		q;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", argname),
				 errdetail("Argument \"%s\" was null.", argname)));
	q = PG_GETARG_INT32(argno);
	if (q <= 0 || q > ES_MAX_QUANTITY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity must be between 1 and %d", ES_MAX_QUANTITY),
				 errdetail("Argument \"%s\" was %d.", argname, q)));
	return q;
}

void
es_check_location(const char *location, const char *argname)
{
	size_t		len = strlen(location);

	if (len == 0 || len > 32)
		goto bad;
	for (const char *c = location; *c; c++)
	{
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			goto bad;
	}
	return;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid location code"),
			 errdetail("Argument \"%s\" was \"%s\".", argname, location),
			 errhint("Location codes are 1 to 32 characters of a-z, 0-9, \"_\" and \"-\".")));
}

Relation
es_open_relation_arg(Oid relid, const char *argname, LOCKMODE lockmode)
{
	Relation	rel = OidIsValid(relid) ? try_relation_open(relid, lockmode) : NULL;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation does not exist"),
				 errdetail("Argument \"%s\" was OID %u, which names no relation.", argname, relid)));
	return rel;
}

/* ---------------------------------------------------------------------
 * Direct lookups by a unique key (EsKeyLookup, see elfsofa.h)
 * --------------------------------------------------------------------- */

#define ES_MAX_KEY_LOOKUPS 16
static EsKeyLookup *key_lookups[ES_MAX_KEY_LOOKUPS];
static int	n_key_lookups;

/* Any change to a looked-up table or its indexes: find everything again. */
static void
key_lookup_inval(Datum arg, Oid relid)
{
	for (int i = 0; i < n_key_lookups; i++)
		if (relid == InvalidOid || key_lookups[i]->relid == relid || key_lookups[i]->indexid == relid)
			key_lookups[i]->relid = InvalidOid;
}

/* Finds table, unique btree index on keycol and column numbers; rel is open and locked. */
static void
key_lookup_resolve(EsKeyLookup *l, Relation rel)
{
	AttrNumber	key = attnameAttNum(rel, l->keycol, false);
	List	   *indexes;
	ListCell   *lc;
	Oid			found = InvalidOid;
	Relation	irel;
	bool		known = false;

	if (key == InvalidAttrNumber)
		elog(ERROR, "elfsofa: table elfsofa.%s has no column \"%s\"", l->relname, l->keycol);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Oid			io = lfirst_oid(lc);
		HeapTuple	t = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(io));
		Form_pg_index ix;

		if (!HeapTupleIsValid(t))
			continue;
		ix = (Form_pg_index) GETSTRUCT(t);
		if (ix->indisunique && ix->indisvalid && ix->indisready && ix->indnkeyatts == 1 &&
			ix->indkey.values[0] == key &&
			heap_attisnull(t, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(t, Anum_pg_index_indpred, NULL))
		{
			Relation	cand = index_open(io, AccessShareLock);

			if (cand->rd_rel->relam == BTREE_AM_OID)
				found = io;
			index_close(cand, NoLock);
		}
		ReleaseSysCache(t);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	if (!OidIsValid(found))
		elog(ERROR, "elfsofa: table elfsofa.%s has no unique btree index on \"%s\"", l->relname, l->keycol);

	irel = index_open(found, AccessShareLock);
	l->eqproc = get_opcode(get_opfamily_member(irel->rd_opfamily[0], irel->rd_opcintype[0],
											   irel->rd_opcintype[0], BTEqualStrategyNumber));
	index_close(irel, NoLock);
	if (!RegProcedureIsValid(l->eqproc))
		elog(ERROR, "elfsofa: no equality operator for the index on elfsofa.%s(%s)", l->relname, l->keycol);
	for (int c = 0; c < l->ncols; c++)
	{
		l->attnums[c] = attnameAttNum(rel, l->cols[c], false);
		if (l->attnums[c] == InvalidAttrNumber)
			elog(ERROR, "elfsofa: table elfsofa.%s has no column \"%s\"", l->relname, l->cols[c]);
	}

	for (int i = 0; i < n_key_lookups; i++)
		known |= (key_lookups[i] == l);
	if (!known)
	{
		if (n_key_lookups == 0)
			CacheRegisterRelcacheCallback(key_lookup_inval, (Datum) 0);
		if (n_key_lookups >= ES_MAX_KEY_LOOKUPS)
			elog(ERROR, "elfsofa: too many key lookups");
		key_lookups[n_key_lookups++] = l;
	}
	l->indexid = found;
	l->relid = RelationGetRelid(rel);
}

void
es_key_scan_begin(EsKeyScan *s, EsKeyLookup *l)
{
	Relation	rel = NULL;

	/* the lock taken by table_open may bring invalidations: resolve under it */
	for (int tries = 0; rel == NULL || !OidIsValid(l->relid); tries++)
	{
		Oid			relid = l->relid;

		if (rel != NULL)
			table_close(rel, NoLock);
		if (tries > 3)
			elog(ERROR, "elfsofa: elfsofa.%s keeps changing", l->relname);
		if (!OidIsValid(relid))
		{
			relid = get_relname_relid(l->relname, get_namespace_oid("elfsofa", false));
			if (!OidIsValid(relid))
				elog(ERROR, "elfsofa: table elfsofa.%s does not exist", l->relname);
		}
		/* a cached oid may name a table dropped since: find it again by name */
		rel = try_relation_open(relid, AccessShareLock);
		if (rel == NULL)
		{
			l->relid = InvalidOid;
			continue;
		}
		if (!OidIsValid(l->relid))
			key_lookup_resolve(l, rel);
	}
	s->l = l;
	s->rel = rel;
	/* what the locks hold still: l's cache may be cleared meanwhile, not these */
	memcpy(s->attnums, l->attnums, sizeof(s->attnums));
	s->eqproc = l->eqproc;
	s->irel = index_open(l->indexid, AccessShareLock);
	s->scan = ES_INDEX_BEGINSCAN(rel, s->irel, GetActiveSnapshot(), 1);
	s->slot = table_slot_create(rel, NULL);
}

bool
es_key_scan_get(EsKeyScan *s, Datum key, Datum *values, bool *nulls)
{
	ScanKeyData sk;
	bool		found;

	ScanKeyEntryInitialize(&sk, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   s->irel->rd_indcollation[0], s->eqproc, key);
	index_rescan(s->scan, &sk, 1, NULL, 0);
	found = index_getnext_slot(s->scan, ForwardScanDirection, s->slot);
	if (found)
	{
		TupleDesc	desc = RelationGetDescr(s->rel);

		for (int c = 0; c < s->l->ncols; c++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, s->attnums[c] - 1);

			values[c] = slot_getattr(s->slot, s->attnums[c], &nulls[c]);
			if (!nulls[c])
				values[c] = datumCopy(values[c], att->attbyval, att->attlen);
		}
	}
	ExecClearTuple(s->slot);
	return found;
}

void
es_key_scan_end(EsKeyScan *s)
{
	index_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->slot);
	index_close(s->irel, NoLock);
	table_close(s->rel, NoLock);
}

bool
es_key_lookup(EsKeyLookup *l, Datum key, Datum *values, bool *nulls)
{
	EsKeyScan	s;
	bool		found;

	es_key_scan_begin(&s, l);
	found = es_key_scan_get(&s, key, values, nulls);
	es_key_scan_end(&s);
	return found;
}

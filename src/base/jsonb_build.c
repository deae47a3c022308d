/*
 * jsonb_build.c — jsonb objects with a fixed set of keys (EsJo): the pairs are
 * collected in place, sorted once in jsonb's key order and converted once,
 * for the objects built on every order.
 */
#include "base/jsonb.h"

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

void
es_jb_key(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &v);
}

void
es_jb_str(JsonbParseState **st, const char *key, const char *val)
{
	JsonbValue	v;

	es_jb_key(st, key);
	es_jbv_str(&v, val);
	pushJsonbValue(st, WJB_VALUE, &v);
}

void
es_jb_num(JsonbParseState **st, const char *key, Numeric val)
{
	JsonbValue	v;

	es_jb_key(st, key);
	es_jbv_num(&v, val);
	pushJsonbValue(st, WJB_VALUE, &v);
}

void
es_jb_int(JsonbParseState **st, const char *key, int64 val)
{
	es_jb_num(st, key, int64_to_numeric(val));
}

void
es_jb_bool(JsonbParseState **st, const char *key, bool val)
{
	JsonbValue	v;

	es_jb_key(st, key);
	v.type = jbvBool;
	v.val.boolean = val;
	pushJsonbValue(st, WJB_VALUE, &v);
}

Jsonb *
es_jb_finish(JsonbParseState **st)
{
	return JsonbValueToJsonb(pushJsonbValue(st, WJB_END_OBJECT, NULL));
}

/*
 * jsonb_read.c — reading fields of jsonb values.
 */
#include "base/jsonb.h"
#include "base/args.h"
#include "base/errcodes.h"

#include "miscadmin.h"
#include <math.h>
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

JsonbValue *
es_jget(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
}

const char *
es_jtype(JsonbValue *v)
{
	if (v == NULL)
		return "missing";
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "a value";
	}
}

char *
es_jtext(JsonbContainer *obj, const char *key, const char *path, int maxlen, bool required)
{
	JsonbValue *v = es_jget(obj, key);

	if (v == NULL || v->type == jbvNull)
	{
		if (required)
			es_bad_input(path, "required field is missing", v ? "was null" : "was missing");
		return NULL;
	}
	if (v->type != jbvString)
		es_bad_input(path, "field has the wrong type", psprintf("was %s; it must be a string", es_jtype(v)));
	if (v->val.string.len == 0)
		es_bad_input(path, "field must not be empty", "was an empty string");
	if (maxlen > 0 && v->val.string.len > maxlen)
		es_bad_input(path, "field is too long",
					 psprintf("has %d bytes; at most %d are allowed", v->val.string.len, maxlen));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A jsonb value is "absent" when it is SQL NULL or the json literal null. */
bool
es_jsonb_is_null(Jsonb *jb)
{
	JsonbValue	v;

	if (jb == NULL)
		return true;
	return JB_ROOT_IS_SCALAR(jb) && JsonbExtractScalar(&jb->root, &v) && v.type == jbvNull;
}

/* Root object of an argument, or 22023 naming it. */
JsonbContainer *
es_jsonb_root_object(Jsonb *jb, const char *path)
{
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	v;
		const char *t = "an array";

		if (JB_ROOT_IS_SCALAR(jb) && JsonbExtractScalar(&jb->root, &v))
			t = es_jtype(&v);
		es_bad_input(path, psprintf("%s must be a JSON object", path), psprintf("was %s", t));
	}
	return &jb->root;
}

/* quantities are whole json numbers in 1..ES_MAX_QUANTITY */
int32
es_jsonb_quantity(JsonbContainer *obj, const char *key, const char *path)
{
	JsonbValue *v = es_jget(obj, key);
	char	   *s;
	double		d;

	if (v == NULL || v->type == jbvNull)
		es_bad_input(path, "required field is missing", v ? "was null" : "was missing");
	if (v->type != jbvNumeric)
		es_bad_input(path, "invalid quantity", psprintf("was %s; it must be a whole number", es_jtype(v)));
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	d = strtod(s, NULL);
	if (isfinite(d) && d != floor(d))
		es_bad_input(path, "invalid quantity", psprintf("was %s; it must be a whole number", s));
	if (d < 1 || d > ES_MAX_QUANTITY)
		es_bad_input(path, "invalid quantity",
					 psprintf("was %s; it must be between 1 and %d", strlen(s) > 20 ? "out of range" : s,
							  ES_MAX_QUANTITY));
	return (int32) d;
}

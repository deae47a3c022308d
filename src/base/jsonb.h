/*
 * jsonb.h — building, reading and writing jsonb (in jsonb_build.c, jsonb_read.c, jsonb_text.c).
 */
#ifndef ES_JSONB_H
#define ES_JSONB_H

#include "postgres.h"

#include "base/compat.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* in jsonb_build.c */
/*
 * jsonb building for a fixed set of keys: the pairs are collected in place,
 * sorted once in jsonb's key order and converted once (no JsonbParseState,
 * no qsort), for the objects built on every order.  Keys must be distinct.
 * Start with an EsJo whose n is 0; es_jo_value makes a nested value (it
 * points into o, which must outlive the conversion).
 */
#define ES_JO_MAXPAIRS 16
typedef struct EsJo
{
	int			n;
	JsonbPair	pairs[ES_JO_MAXPAIRS];
} EsJo;
extern void es_jbv_str(JsonbValue *v, const char *val);
extern void es_jbv_num(JsonbValue *v, struct NumericData *val);
extern void es_jo_keyval(EsJo *o, const char *key, int keylen, const JsonbValue *val);
extern void es_jo_val(EsJo *o, const char *key, const JsonbValue *val);
extern void es_jo_str(EsJo *o, const char *key, const char *val);
extern void es_jo_num(EsJo *o, const char *key, struct NumericData *val);
extern void es_jo_int(EsJo *o, const char *key, int64 val);
extern void es_jo_value(EsJo *o, JsonbValue *out);
extern Jsonb *es_jo_finish(EsJo *o);
/* in jsonb_text.c */
/* jsonb as text, exactly as jsonb_out writes it (faster, for event payloads). */
extern char *es_jsonb_text(Jsonb *jb);
/* s[0..len) as a JSON string, quoted and escaped as jsonb_out writes it */
extern void es_json_string(StringInfo out, const char *s, int len);
/* s quoted as a JSON string; null when s is NULL */
extern void es_json_quote(StringInfo out, const char *s);


/* in jsonb_read.c */
/* in jsonb_build.c: keys and values pushed onto a JsonbParseState. */
extern void es_jb_key(JsonbParseState **st, const char *key);
extern void es_jb_str(JsonbParseState **st, const char *key, const char *val);
extern void es_jb_int(JsonbParseState **st, const char *key, int64 val);
extern void es_jb_num(JsonbParseState **st, const char *key, Numeric val);
extern void es_jb_bool(JsonbParseState **st, const char *key, bool val);
extern Jsonb *es_jb_finish(JsonbParseState **st);

/* jsonb reading: a key of an object container, or NULL when absent. */
extern JsonbValue *es_jget(JsonbContainer *obj, const char *key);
/* A human name for a json value's type ("a string", "null", ...). */
extern const char *es_jtype(JsonbValue *v);
/* Optional string field: NULL when absent or json null; 22023 when wrong-typed, empty or too long. */
extern char *es_jtext(JsonbContainer *obj, const char *key, const char *path, int maxlen, bool required);

/* A jsonb value is "absent" when it is SQL NULL or the json literal null. */
extern bool es_jsonb_is_null(Jsonb *jb);
/* Root object of an argument, or 22023 naming it (path). */
extern JsonbContainer *es_jsonb_root_object(Jsonb *jb, const char *path);
/* A quantity field: a whole json number in 1..ES_MAX_QUANTITY, or 22023 naming path. */
extern int32 es_jsonb_quantity(JsonbContainer *obj, const char *key, const char *path);
/* Text value of a top-level string key in a jsonb object, or NULL. */
extern char *es_jsonb_get_text(Jsonb *jb, const char *key);

#endif							/* ES_JSONB_H */

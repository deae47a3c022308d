/*
 * args.h — argument checks that raise 22023 or 42P01 naming the argument (in args.c).
 */
#ifndef ES_ARGS_H
#define ES_ARGS_H

#include "postgres.h"

#include "base/compat.h"

#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"
#include "storage/lockdefs.h"
#include "utils/rel.h"

/* Validation helpers: raise 22023 naming the argument. */
extern char *es_require_text(FunctionCallInfo fcinfo, int argno, const char *argname, int maxlen);
/* An optional text argument: NULL when SQL NULL, else at most maxlen bytes (empty allowed). */
extern char *es_optional_text(FunctionCallInfo fcinfo, int argno, const char *argname, int maxlen);
extern int32 es_require_quantity(FunctionCallInfo fcinfo, int argno, const char *argname);
extern void es_check_location(const char *location, const char *argname);


/* Opens a regclass argument, 42P01 naming the argument when it names no relation. */
extern Relation es_open_relation_arg(Oid relid, const char *argname, LOCKMODE lockmode);

/* Raises 22023: errmsg msg, DETAIL "<path> <why>." */
extern void es_bad_input(const char *path, const char *msg, const char *why) pg_attribute_noreturn();
/* Parses a uuid in its canonical text form; false when s is not one. */
extern bool es_parse_uuid(const char *s, pg_uuid_t *out);

/* A jsonb object argument of at most maxbytes, or 22023 naming argname. */
extern void es_require_object(Jsonb *jb, const char *argname, int maxbytes);

/* 22023 "<argname> must not be null" when argument argno is SQL NULL. */
extern void es_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *argname);
/* 22023 with this message, DETAIL and optional HINT. */
extern void es_invalid_arg(const char *msg, const char *detail, const char *hint) pg_attribute_noreturn();

#endif							/* ES_ARGS_H */

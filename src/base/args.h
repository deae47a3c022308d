/*
 * args.h — argument checks that raise 22023 or 42P01 naming the argument (in args.c).
 */
#ifndef ES_ARGS_H
#define ES_ARGS_H

#include "postgres.h"

#include "base/compat.h"

#include "fmgr.h"
#include "storage/lockdefs.h"
#include "utils/rel.h"

/* Validation helpers: raise 22023 naming the argument. */
extern char *es_require_text(FunctionCallInfo fcinfo, int argno, const char *argname, int maxlen);
extern int32 es_require_quantity(FunctionCallInfo fcinfo, int argno, const char *argname);
extern void es_check_location(const char *location, const char *argname);


/* Opens a regclass argument, 42P01 naming the argument when it names no relation. */
extern Relation es_open_relation_arg(Oid relid, const char *argname, LOCKMODE lockmode);

#endif							/* ES_ARGS_H */

/*
 * args.c — argument checks shared by the SQL-callable functions: each raises
 * 22023 (or 42P01) with a DETAIL that names the argument.
 */
#include "base/args.h"
#include "base/errcodes.h"

#include "miscadmin.h"
#include "utils/uuid.h"
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

/* es_arg_not_null raises 22023 when argument argno (named argname) is SQL NULL. */
void
es_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", argname),
				 errdetail("Argument \"%s\" was null.", argname)));
}

/*
 * es_invalid_arg raises 22023 with the given message, DETAIL and optional
 * HINT; every "bad argument" error of the SQL functions goes through it or
 * through es_bad_input (a json path and what was wrong with it).
 */
void
es_invalid_arg(const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 errdetail("%s", detail),
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

char *
es_require_text(FunctionCallInfo fcinfo, int argno, const char *argname, int maxlen)
{
	char	   *s;

	es_arg_not_null(fcinfo, argno, argname);
	s = es_optional_text(fcinfo, argno, argname, maxlen);
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname),
				 errdetail("Argument \"%s\" was an empty string.", argname)));
	return s;
}

char *
es_optional_text(FunctionCallInfo fcinfo, int argno, const char *argname, int maxlen)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
		return NULL;
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
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

	es_arg_not_null(fcinfo, argno, argname);
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

/* es_bad_input raises 22023: errmsg msg, DETAIL "<path> <why>." */
void
es_bad_input(const char *path, const char *msg, const char *why)
{
	es_invalid_arg(msg, psprintf("%s %s.", path, why), NULL);
}

bool
es_parse_uuid(const char *s, pg_uuid_t *out)
{
	int			n = 0;
	size_t		len = strlen(s);

	if (len != 32 && len != 36)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];
		int			v;

		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23))
		{
			if (c != '-')
				return false;
			continue;
		}
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return false;
		if (n % 2 == 0)
			out->data[n / 2] = v << 4;
		else
			out->data[n / 2] |= v;
		n++;
	}
	return n == 32;
}

/* Raises 22023 when jb is not a JSON object or is larger than maxbytes. */
void
es_require_object(Jsonb *jb, const char *argname, int maxbytes)
{
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", argname),
				 errdetail("Argument \"%s\" was a JSON %s.", argname,
						   JB_ROOT_IS_SCALAR(jb) ? "scalar" : "array")));
	if (maxbytes > 0 && VARSIZE(jb) > (Size) maxbytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too large", argname),
				 errdetail("Argument \"%s\" takes %zu bytes; at most %d are allowed.",
						   argname, (size_t) VARSIZE(jb), maxbytes)));
}

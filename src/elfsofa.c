/*
 * elfsofa.c — module entry point, settings, and the small utilities every area
 * shares: cached SPI plans, the acting user, and argument validation.
 */
#include "elfsofa.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "access/relation.h"
#include "utils/lsyscache.h"

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
		SPIPlanPtr	plan = SPI_prepare(p->sql, p->nargs, p->argtypes);

		if (plan == NULL)
			elog(ERROR, "elfsofa: could not prepare \"%s\": %s",
				 p->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "elfsofa: could not keep plan");
		p->plan = plan;
	}
	return p->plan;
}

/*
 * Like es_plan, but always a generic plan.  For statements that run very
 * often with parameters the planner cannot use well (partitioned tables,
 * unnest of arrays): plancache would otherwise keep choosing custom plans,
 * re-planning on every call, because a custom plan's estimate for the actual
 * parameters always looks cheaper.
 */
SPIPlanPtr
es_plan_generic(EsPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes, CURSOR_OPT_GENERIC_PLAN);

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
es_exec_generic(EsPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc = SPI_execute_plan(es_plan_generic(p), values, nulls, read_only, count);

	if (rc < 0)
		elog(ERROR, "elfsofa: SPI failed (%s) running \"%s\"",
			 SPI_result_code_string(rc), p->sql);
	return rc;
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

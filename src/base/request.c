/*
 * request.c — facts about the request: the JWT claims PostgREST set, and the
 * acting user recorded in the ledger and the audit log.
 */
#include "base/request.h"
#include "base/args.h"
#include "base/jsonb.h"

#include "miscadmin.h"
#include "utils/acl.h"
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

void		(*es_audit_stamp) (EsAuditStamp *stamp) = NULL;
int64		es_audit_stock_in_ledger = 0;

char	   *es_guc_actor = NULL;

Jsonb *
es_jwt_claims(void)
{
	const char *raw = GetConfigOption("request.jwt.claims", true, false);

	if (raw == NULL || raw[0] == '\0')
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(raw)));
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

/* Defines elfsofa.actor; called once from _PG_init. */
void
es_request_init(void)
{
	DefineCustomStringVariable("elfsofa.actor",
							   "Who is acting when no JWT claims are present (psql, pg_cron).",
							   "Recorded in the stock ledger and the audit log; empty means current_user.",
							   &es_guc_actor,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
}

/*
 * Judged on the outer role (current_user outside any SECURITY DEFINER
 * function), never on JWT claims, which a caller can only assert.
 */
bool
es_role_is_privileged(void)
{
	Oid			role = GetOuterUserId();
	Oid			service = get_role_oid("service_role", true);

	if (superuser_arg(role) || has_bypassrls_privilege(role))
		return true;
	return OidIsValid(service) && is_member_of_role(role, service);
}

/* The JWT sub claim as a uuid; false when there is none or it is not a uuid. */
bool
es_jwt_sub_uuid(pg_uuid_t *out)
{
	Jsonb	   *claims = es_jwt_claims();
	char	   *sub = es_jsonb_get_text(claims, "sub");

	return sub != NULL && es_parse_uuid(sub, out);
}

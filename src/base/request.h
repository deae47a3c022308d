/*
 * request.h — who is asking: JWT claims, the acting user (in request.c).
 */
#ifndef ES_REQUEST_H
#define ES_REQUEST_H

#include "postgres.h"

#include "base/compat.h"

#include "utils/jsonb.h"
#include "utils/uuid.h"

/* The acting user: JWT sub, else elfsofa.actor, else current_user (palloc'd). */
extern char *es_actor(void);

/* JWT claims of the current request (request.jwt.claims) as Jsonb, or NULL. */
extern Jsonb *es_jwt_claims(void);


/* elfsofa.actor */
extern char *es_guc_actor;

/* Defines elfsofa.actor; called once from _PG_init. */
extern void es_request_init(void);

/*
 * The audit facts of a change whose own record stands in for its audit_log
 * row: process_order's stock reservations are recorded by their stock_ledger
 * rows alone.  id comes from audit_log's sequence (so such a row sorts among
 * the audit rows), the others are what the audit row would have held;
 * actor_role and application_name may be NULL.  The audit area sets the
 * function at load (es_audit_init); NULL until then.
 */
typedef struct EsAuditStamp
{
	int64		id;
	int64		txid;
	char	   *db_user;
	char	   *actor_role;
	char	   *application_name;
} EsAuditStamp;
extern void (*es_audit_stamp) (EsAuditStamp *stamp);

/*
 * Set (to the product's id, else 0) while inventory changes a stock row of an
 * order whose ledger row stands in for its audit row (a product that is not
 * hot): the audit trigger writes no row for an UPDATE of that product's row
 * of elfsofa.stock_levels meanwhile.
 */
extern int64 es_audit_stock_in_ledger;

/* Whether the outer role is privileged: superuser, BYPASSRLS or member of service_role. */
extern bool es_role_is_privileged(void);

/* The JWT sub claim as a uuid; false when there is none or it is not a uuid. */
extern bool es_jwt_sub_uuid(pg_uuid_t *out);

#endif							/* ES_REQUEST_H */

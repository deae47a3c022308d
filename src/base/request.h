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

/* Whether the outer role is privileged: superuser, BYPASSRLS or member of service_role. */
extern bool es_role_is_privileged(void);

/* The JWT sub claim as a uuid; false when there is none or it is not a uuid. */
extern bool es_jwt_sub_uuid(pg_uuid_t *out);

#endif							/* ES_REQUEST_H */

/*
 * customers.h — the customers area: customers and the customer a request acts for (owns customers).
 */
#ifndef ES_CUSTOMERS_H
#define ES_CUSTOMERS_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"
#include "utils/uuid.h"

/*
 * in caller.c: the customer a request acts for.  given is the customer id text
 * from the request (NULL when omitted: then the customer whose auth_user_id is
 * the JWT sub).  A JWT sub acting on another customer's id is 42501 unless the
 * outer database role is privileged (superuser, BYPASSRLS, or member of
 * service_role).  22023 on a malformed id (DETAIL names argpath), PT404 on an
 * unknown customer.  Returns a uuid Datum palloc'd in the current context;
 * SPI must be connected.
 */
extern Datum es_caller_customer(const char *given, const char *argpath);


/* in caller.c: the customer whose auth_user_id is the JWT sub (false when none). */
extern bool es_current_customer_id(pg_uuid_t *out);

#endif							/* ES_CUSTOMERS_H */

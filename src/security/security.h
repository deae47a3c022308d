/*
 * security.h — the security area: rate limits and the API guard (owns rate_limits).
 */
#ifndef ES_SECURITY_H
#define ES_SECURITY_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"

/* Defines the rate-limit settings; called once from _PG_init. */
extern void es_ratelimit_init(void);
extern void es_ratelimit_shmem_request(void);
extern void es_ratelimit_shmem_startup(void);

#endif							/* ES_SECURITY_H */

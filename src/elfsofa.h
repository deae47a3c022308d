/*
 * elfsofa.h — the base layer (src/base/) and the declarations the areas share.
 */
#ifndef ELFSOFA_H
#define ELFSOFA_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/leafwriter.h"
#include "base/request.h"
#include "base/spi.h"



/*
 * events.c: append an event to the outbox in the current transaction and
 * return its id.  SPI must be connected.  data may be NULL ('{}').
 */
extern int64 es_emit_event(const char *topic, const char *key, Jsonb *data);

/*
 * events.c: only the outbox row (es_emit_event without the topic check and
 * without es_event_written), for callers that emit several events and then
 * call es_event_written for each.  Needs no SPI.
 */
extern int64 es_outbox_write(const char *topic, const char *key, Jsonb *data);
/* n of them at once (one heap multi-insert); their ids go to ids[]. */
extern void es_outbox_write_many(int n, const char *const *topics, const char *const *keys,
								 Jsonb *const *data, int64 *ids);

/*
 * audit.c: installs the hook that refuses TRUNCATE of audit_log partitions and
 * the hooks that write deferred audit index entries before any query runs.
 */
extern void es_audit_init(void);
/* orders.c: the orders area's settings */
extern void es_orders_init(void);

/*
 * orders.c: the customer a request acts for.  given is the customer id text
 * from the request (NULL when omitted: then the customer whose auth_user_id is
 * the JWT sub).  A JWT sub acting on another customer's id is 42501 unless the
 * outer database role is privileged (superuser, BYPASSRLS, or member of
 * service_role).  22023 on a malformed id (DETAIL names argpath), PT404 on an
 * unknown customer.  Returns a uuid Datum palloc'd in the current context;
 * SPI must be connected.
 */
extern Datum es_caller_customer(const char *given, const char *argpath);

/*
 * Change events (events.c, publisher.c, changes.c, notifications.c).
 * NOTIFY payloads must stay below BLCKSZ - NAMEDATALEN - 128 bytes.
 */
#define ES_EVENTS_CHANNEL		"elfsofa_events"
#define ES_CACHE_CHANNEL		"elfsofa_cache"
#define ES_NOTIFY_MAX_PAYLOAD	(BLCKSZ - NAMEDATALEN - 128)
extern void es_events_init(void);
extern void es_publisher_init(void);
extern void es_notifications_init(void);
/*
 * After an outbox row was written (es_emit_event, or es_outbox_write):
 * wake-up, or NOTIFY and queue.  SPI must be connected; SPI_tuptable and
 * SPI_processed are left as they were.
 */
extern void es_event_written(int64 id, const char *topic, const char *key, Jsonb *data);
extern char *es_event_payload(int64 id, const char *topic, const char *key, const char *data_json);
/* Runs the events-after query into SPI_tuptable; returns how many leading rows are safe. */
extern int	es_fetch_events(int64 after_id, int max_events);
extern bool es_publisher_serves_this_database(void);
extern void es_check_topic(const char *topic);
extern void es_queue_notifications(int64 event_id, const char *topic, const char *key, Jsonb *data);
extern void es_queue_batch_begin(int capacity);
extern void es_queue_batch_flush(void);
extern void es_publisher_wake(void);
extern bool es_guc_emit_events;
extern char *es_guc_database;

/*
 * partitions.c / archive.c / schedule.c (issue 6): GUCs of partition
 * maintenance, registered from _PG_init.
 */
extern void es_partitions_init(void);


/*
 * security.c and ratelimit.c (issue 7).  es_current_customer_id() maps the
 * JWT sub to customers.id (false when there is none); privilege is
 * es_role_is_privileged() above, never a JWT claim.
 */
extern bool es_jwt_sub_uuid(pg_uuid_t *out);
extern bool es_current_customer_id(pg_uuid_t *out);
extern void es_ratelimit_init(void);

/*
 * ops (health.c, logging.c, carts.c, crm.c, analytics.c): settings defined by
 * es_ops_init() from _PG_init, and a jsonb-object check shared by log/CRM.
 */
extern void es_ops_init(void);
extern void es_require_object(Jsonb *jb, const char *argname, int maxbytes);
extern int	es_guc_recommend_window_days;
extern int	es_guc_restock_lookback_days;
extern int	es_guc_cart_abandon_hours;


#endif							/* ELFSOFA_H */

/*
 * events.h — the events area: the outbox, the publisher, change triggers and the notification queue (owns events, event_consumers, event_publisher, notifications).
 */
#ifndef ES_EVENTS_H
#define ES_EVENTS_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"
#include "base/leafwriter.h"

#include "access/transam.h"
#include "nodes/plannodes.h"
#include "storage/latch.h"

/*
 * Appends an event to the outbox in the current transaction and
 * return its id.  SPI must be connected.  data may be NULL ('{}').
 */
extern int64 es_emit_event(const char *topic, const char *key, Jsonb *data);

/*
 * Only the outbox row (es_emit_event without the topic check and
 * without es_event_written), for callers that emit several events and then
 * call es_event_written for each.  Needs no SPI.
 */
extern int64 es_outbox_write(const char *topic, const char *key, Jsonb *data);
/* n of them at once (one heap multi-insert); their ids go to ids[]. */
extern void es_outbox_write_many(int n, const char *const *topics, const char *const *keys,
								 Jsonb *const *data, int64 *ids);


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

/* launcher.c: one publisher per database (see there) */
typedef enum EsPublisherState
{
	ES_PUB_FREE = 0,			/* no publisher wanted (slot unused) */
	ES_PUB_WANTED,				/* the launcher is to start one */
	ES_PUB_STARTING,			/* started, not yet serving */
	ES_PUB_RUNNING,				/* serving: writers only wake it */
	ES_PUB_ABSENT,				/* elfsofa is not installed there */
	ES_PUB_DISABLED,			/* elfsofa.publisher is off there */
	ES_PUB_STOPPED,				/* it could not start */
	ES_PUB_NO_WORKER			/* no background worker left (max_worker_processes) */
} EsPublisherState;

typedef struct EsPublisherSlot
{
	Oid			dboid;
	int			state;			/* EsPublisherState */
	pid_t		pid;			/* 0 while no publisher runs */
	Latch	   *latch;
	int64		last_id;
	int64		published;		/* since it started */
	bool		held;			/* a utility statement needs the database alone */
	bool		logged_no_worker;
} EsPublisherSlot;

extern bool es_guc_publisher;
extern bool es_publisher_wanted_at_commit;
extern void es_launcher_shmem_request(void);
extern void es_launcher_shmem_startup(void);
extern void es_launcher_register(void);
extern EsPublisherSlot *es_publisher_my_slot(bool create);
extern EsPublisherSlot *es_publisher_slot_of(Oid db);
extern void es_publisher_slot_set(EsPublisherSlot *slot, int state);
extern int	es_publisher_state(void);
extern bool es_publisher_available(void);
extern Oid	es_publisher_utility_before(PlannedStmt *pstmt);
extern void es_publisher_utility_after(Oid db);
extern const char *es_publisher_state_name(int state);

/* watermark.c: which event ids are final (see there) */
extern void es_watermark_shmem_request(void);
extern void es_watermark_shmem_startup(void);
extern int64 es_event_nextval(Oid seqid, bool check_permissions);
extern void es_watermark_xact_end(void);
extern bool es_watermark_precise(void);
extern int64 es_watermark_read(Oid seqid, Oid owner);
extern int64 es_events_watermark(void);	/* in events.c: es_watermark_read of the outbox */
extern FullTransactionId es_watermark_prepared_xid(void);
extern void es_check_topic(const char *topic);
extern void es_queue_notifications(int64 event_id, const char *topic, const char *key, Jsonb *data);
extern void es_queue_batch_begin(int capacity);
extern void es_queue_batch_flush(void);
extern void es_publisher_wake(void);
extern bool es_guc_emit_events;
extern bool es_guc_notify_data;
extern int	es_guc_event_max_bytes;
extern char *es_guc_database;

/* in events.c: the payloads of inventory.updated and (NULL when not crossed) inventory.low_stock */
extern Jsonb *es_stock_updated_json(const char *sku, const char *location, int32 on_hand, int32 reserved,
									int32 delta_on_hand, int32 delta_reserved, const char *reason, int64 order_id);
extern Jsonb *es_low_stock_json(const char *sku, const char *location, int64 available, int64 taken,
								int32 threshold);

/* in events.c: inventory.updated for a stock change of the inventory area (see inventory.h) */
extern void es_events_stock_changed(const char *sku, const char *location, int32 on_hand, int32 reserved,
									int32 delta_on_hand, int32 delta_reserved, const char *reason,
									int32 threshold);

#endif							/* ES_EVENTS_H */

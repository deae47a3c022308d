-- elfsofa install script, part 20: change events (src/events/: events.c, publisher.c,
-- changes.c, notifications.c): the durable outbox, the publisher's
-- position, named consumers, the change trigger and the notification queue.
CREATE SEQUENCE @extschema@.events_id_seq AS bigint;

CREATE FUNCTION @extschema@.next_event_id(seq regclass) RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_next_event_id';
COMMENT ON FUNCTION @extschema@.next_event_id(regclass) IS
    'Default of events.id: assigns the transaction id first, then takes nextval(seq), so an id is never older than its writer''s xid (events_since relies on it); also has the publisher woken at commit, whoever inserted the event.';

CREATE FUNCTION @extschema@.next_xid() RETURNS xid8
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_next_xid';
COMMENT ON FUNCTION @extschema@.next_xid() IS
    'Default of events.xid_horizon: the next transaction id to be assigned, read after the event id was taken.';

CREATE TABLE @extschema@.events (
    id          bigint NOT NULL DEFAULT @extschema@.next_event_id('@extschema@.events_id_seq'),
    -- Topics are checked in C (es_emit_event): a CHECK here would be re-read for every insert.
    topic       text NOT NULL,
    key         text,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Evaluated after id (defaults run in column order): must be read after nextval.
    xid_horizon xid8 NOT NULL DEFAULT @extschema@.next_xid(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE @extschema@.events_id_seq OWNED BY @extschema@.events.id;
-- No query filters on data: statistics on it would be most of ANALYZE's work on the outbox
-- (~1 s per autoanalyze of a busy day's partition, ~0.2 s without).  Partitions copy it.
ALTER TABLE @extschema@.events ALTER COLUMN data SET STATISTICS 0;
COMMENT ON TABLE @extschema@.events IS 'Durable outbox of change events (order.created, inventory.updated, ...), written in the same transaction as the change; partitioned by day.';
COMMENT ON COLUMN @extschema@.events.xid_horizon IS
    'Next transaction id at the time the id was taken: every transaction that could still hold a smaller event id has an xid below it, so the event is safe to hand out once the snapshot xmin reaches it.';

CREATE FUNCTION @extschema@.emit_event(topic text, key text DEFAULT NULL, data jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_emit_event_sql';
COMMENT ON FUNCTION @extschema@.emit_event(text, text, jsonb) IS
    'Appends an event to the outbox in the current transaction (NOTIFY follows at commit) and returns its id; NULL when elfsofa.emit_events is off.';

CREATE TABLE @extschema@.event_publisher (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id     bigint NOT NULL DEFAULT 0,
    published   bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.event_publisher IS 'Position of the background publisher (last event id it sent with NOTIFY) in the database named by elfsofa.database; updated in the same transaction as its NOTIFYs; the worker creates the row on its first run (so a dump and restore does not double it).';

CREATE TABLE @extschema@.event_consumers (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$'),
    last_id     bigint NOT NULL DEFAULT 0 CHECK (last_id >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.event_consumers IS 'Named at-least-once consumers of the outbox: consumer_poll hands out events after last_id, consumer_ack moves last_id.';

CREATE FUNCTION @extschema@.events_since(after_id bigint, max_events int DEFAULT 1000)
    RETURNS SETOF @extschema@.events
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_events_since';
COMMENT ON FUNCTION @extschema@.events_since(bigint, int) IS
    'Committed events with id > after_id in id order, at most max_events (1..100000); stops before any event while a transaction that may still commit a smaller id is in flight, so repeated calls see no gap and no duplicate.';

CREATE FUNCTION @extschema@.consumer_poll(name text, max_events int DEFAULT 1000)
    RETURNS SETOF @extschema@.events
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_consumer_poll';
COMMENT ON FUNCTION @extschema@.consumer_poll(text, int) IS
    'Events after the named consumer''s acknowledged position (created at 0 on first poll); repeats them until consumer_ack moves the position (at-least-once).';

CREATE FUNCTION @extschema@.consumer_ack(name text, last_id bigint) RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_consumer_ack';
COMMENT ON FUNCTION @extschema@.consumer_ack(text, bigint) IS
    'Marks every event up to last_id as processed by the named consumer and returns its new position; acknowledging an older id changes nothing.';

CREATE FUNCTION @extschema@.publisher_status() RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_publisher_status';
COMMENT ON FUNCTION @extschema@.publisher_status() IS
    'How this database''s events reach NOTIFY: {"mode": "worker"|"commit", "database", "worker_pid", "last_id", "published"}.';

---------------------------------------------------------------------------
-- Change trigger for any table, and the catalog's cache invalidation
---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.change_event_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'es_change_event_trigger';
COMMENT ON FUNCTION @extschema@.change_event_trigger() IS
    'AFTER ROW trigger: writes one outbox event per changed row (argument 1: topic; argument 2: optional key column).';

CREATE FUNCTION @extschema@.catalog_change_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'es_catalog_change_trigger';
COMMENT ON FUNCTION @extschema@.catalog_change_trigger() IS
    'AFTER ROW trigger on products and categories: NOTIFY elfsofa_cache with invalidation tags and write product.changed / category.changed events.';

CREATE FUNCTION @extschema@.enable_change_events(tbl regclass, topic text DEFAULT NULL) RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_enable_change_events';
COMMENT ON FUNCTION @extschema@.enable_change_events(regclass, text) IS
    'Attaches the change trigger (elfsofa_change_events) to a table; topic defaults to <table>.changed; returns the topic.';

CREATE FUNCTION @extschema@.disable_change_events(tbl regclass) RETURNS boolean
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_disable_change_events';
COMMENT ON FUNCTION @extschema@.disable_change_events(regclass) IS
    'Removes the change trigger from a table; returns whether there was one.';

CREATE TRIGGER elfsofa_catalog_changes AFTER INSERT OR UPDATE OR DELETE ON @extschema@.products
    FOR EACH ROW EXECUTE FUNCTION @extschema@.catalog_change_trigger();
CREATE TRIGGER elfsofa_catalog_changes AFTER INSERT OR UPDATE OR DELETE ON @extschema@.categories
    FOR EACH ROW EXECUTE FUNCTION @extschema@.catalog_change_trigger();

---------------------------------------------------------------------------
-- Outbound notification queue (order confirmation, shipping notice)
---------------------------------------------------------------------------
CREATE TABLE @extschema@.notification_preferences (
    customer_id uuid PRIMARY KEY REFERENCES @extschema@.customers(id) ON DELETE CASCADE,
    channel     text NOT NULL CHECK (channel IN ('email', 'line', 'sms')),
    address     text CHECK (length(address) BETWEEN 1 AND 254),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.notification_preferences IS 'How a customer wants to hear from the shop: email (default), LINE or SMS, and the address (LINE user id, phone) when it is not the customer''s e-mail or phone.';

CREATE TABLE @extschema@.notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('order_confirmation', 'shipping_notice')),
    channel     text NOT NULL CHECK (channel IN ('email', 'line', 'sms')),
    recipient   text NOT NULL,
    customer_id uuid NOT NULL,
    order_id    bigint NOT NULL,
    event_id    bigint,
    payload     jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'sent', 'dead')),
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    visible_at  timestamptz NOT NULL DEFAULT now(),
    locked_by   text,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    UNIQUE (order_id, kind)
);
CREATE INDEX notifications_ready_idx ON @extschema@.notifications (visible_at, id) WHERE status IN ('pending', 'processing');
-- Nothing filters on payload; its statistics would be most of ANALYZE's work on the queue.
ALTER TABLE @extschema@.notifications ALTER COLUMN payload SET STATISTICS 0;
COMMENT ON TABLE @extschema@.notifications IS 'Outbound messages to customers, queued by es_emit_event in the transaction that raised order.created / shipped; claimed with SKIP LOCKED, retried with exponential backoff, dead after elfsofa.notification_max_attempts.';
COMMENT ON COLUMN @extschema@.notifications.visible_at IS 'Not claimable before this time: the retry time after a failure, or the end of a claim''s lease while processing.';

CREATE FUNCTION @extschema@.claim_notifications(worker text, max int DEFAULT 10)
    RETURNS SETOF @extschema@.notifications
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_claim_notifications';
COMMENT ON FUNCTION @extschema@.claim_notifications(text, int) IS
    'Claims up to max (1..1000) due notifications for a worker (FOR UPDATE SKIP LOCKED), counting an attempt and leasing them for elfsofa.notification_lease seconds.';

CREATE FUNCTION @extschema@.complete_notification(id bigint) RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_complete_notification';
COMMENT ON FUNCTION @extschema@.complete_notification(bigint) IS
    'Marks a claimed notification as sent.';

CREATE FUNCTION @extschema@.fail_notification(id bigint, error text) RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'es_fail_notification';
COMMENT ON FUNCTION @extschema@.fail_notification(bigint, text) IS
    'Records a failed delivery: retry after base * 2^(attempts-1) seconds (capped), or status dead after elfsofa.notification_max_attempts attempts.';

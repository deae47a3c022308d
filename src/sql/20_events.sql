-- elfsofa install script, part 20: the durable event outbox (src/events.c).
CREATE SEQUENCE @extschema@.events_id_seq AS bigint;
CREATE TABLE @extschema@.events (
    id          bigint NOT NULL DEFAULT nextval('@extschema@.events_id_seq'),
    topic       text NOT NULL CHECK (topic ~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$'),
    key         text,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE @extschema@.events_id_seq OWNED BY @extschema@.events.id;
COMMENT ON TABLE @extschema@.events IS 'Durable outbox of change events (order.created, inventory.updated, ...), written in the same transaction as the change; partitioned by day.';

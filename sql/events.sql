\i test/regress_setup.sql
-- The outbox, events_since, named consumers and the change trigger.
-- The suite runs with elfsofa.publisher = off (test/run.sh), so NOTIFY is sent by the writers at commit.
SELECT elfsofa.publisher_status()->>'mode' AS mode;

-- emit_event: the SQL door to the outbox
SELECT elfsofa.emit_event('order.created', '42', '{"total": 1780.00}') AS id;
SELECT elfsofa.emit_event('inventory.low_stock') AS id;
SELECT id, topic, key, data FROM elfsofa.events_since(0);
SELECT elfsofa.emit_event('Order.Created', '1');
:err
SELECT elfsofa.emit_event('order..created', '1');
:err
SELECT elfsofa.emit_event(NULL, '1');
:err
SELECT elfsofa.emit_event('order.created', repeat('k', 1001));
:err
SELECT count(*) AS events FROM elfsofa.events;

-- events_since: arguments, limits, order
SELECT id FROM elfsofa.events_since(1);
SELECT id FROM elfsofa.events_since(0, 1);
SELECT count(*) FROM elfsofa.events_since(2);
SELECT * FROM elfsofa.events_since(NULL);
:err
SELECT * FROM elfsofa.events_since(0, 0);
:err
SELECT * FROM elfsofa.events_since(0, 100001);
:err
-- our own uncommitted events are not handed out, even to ourselves
BEGIN;
SELECT elfsofa.emit_event('order.cancelled', '42') AS id;
SELECT count(*) AS handed_out FROM elfsofa.events_since(2);
ROLLBACK;
SELECT count(*) AS handed_out FROM elfsofa.events_since(2);

-- elfsofa.emit_events = off writes nothing
SET elfsofa.emit_events = off;
SELECT elfsofa.emit_event('order.created', '43') IS NULL AS skipped;
RESET elfsofa.emit_events;
SELECT count(*) AS events FROM elfsofa.events;

-- named consumers: at-least-once until acknowledged
SELECT id, topic FROM elfsofa.consumer_poll('mailer', 10);
SELECT id, topic FROM elfsofa.consumer_poll('mailer', 10);
SELECT elfsofa.consumer_ack('mailer', 1);
SELECT id, topic FROM elfsofa.consumer_poll('mailer', 10);
SELECT elfsofa.consumer_ack('mailer', 0) AS ack_older_keeps_position;
SELECT elfsofa.consumer_ack('mailer', 5);
SELECT count(*) FROM elfsofa.consumer_poll('mailer', 10);
SELECT elfsofa.consumer_ack('nobody', 1);
:err
SELECT elfsofa.consumer_ack('mailer', -1);
:err
SELECT elfsofa.consumer_ack('mailer', NULL);
:err
SELECT * FROM elfsofa.consumer_poll('', 10);
:err
SELECT * FROM elfsofa.consumer_poll('bad name!', 10);
:err
SELECT name, last_id FROM elfsofa.event_consumers ORDER BY name;

-- the change trigger on any table
TRUNCATE elfsofa.events;
CREATE TABLE public.parcels (carrier text, tracking text, note text, weight_g int, fragile boolean,
                             PRIMARY KEY (carrier, tracking));
CREATE TABLE public.couriers (id int PRIMARY KEY, name text);
SELECT elfsofa.enable_change_events('public.parcels');
SELECT elfsofa.enable_change_events('public.couriers', 'courier.updated');
INSERT INTO public.parcels VALUES ('kerry', 'KE1', 'sofa cover', 900, false);
UPDATE public.parcels SET tracking = 'KE2', weight_g = 950;
UPDATE public.parcels SET note = 'L-shape';
DELETE FROM public.parcels;
INSERT INTO public.couriers VALUES (1, 'Kerry Express');
SELECT topic, key, data FROM elfsofa.events_since(0) ORDER BY id;
-- a role may change a table with change events without any right on the outbox itself
CREATE ROLE regress_events_clerk;
GRANT USAGE ON SCHEMA public TO regress_events_clerk;
GRANT INSERT ON public.couriers TO regress_events_clerk;
SET ROLE regress_events_clerk;
INSERT INTO public.couriers VALUES (7, 'J&T Express');
INSERT INTO elfsofa.events (topic) VALUES ('forged.event');
:err
RESET ROLE;
SELECT topic, key FROM elfsofa.events_since(0) WHERE key = '7';
REVOKE ALL ON public.couriers FROM regress_events_clerk;
REVOKE ALL ON SCHEMA public FROM regress_events_clerk;
DROP ROLE regress_events_clerk;
-- the outbox keeps a big row whole (up to elfsofa.event_max_bytes, 1 MB by default) ...
INSERT INTO public.couriers VALUES (2, repeat('x', 7000));
SELECT key, length(data->'row'->>'name') AS name_bytes, data ? 'row_truncated' AS truncated
  FROM elfsofa.events_since(0) WHERE key = '2';
-- ... and beyond it keeps the key, with a WARNING naming the table and key
SET elfsofa.event_max_bytes = 4096;
INSERT INTO public.couriers VALUES (200, repeat('x', 7000));
RESET elfsofa.event_max_bytes;
SELECT key, data FROM elfsofa.events_since(0) WHERE key = '200';
-- re-enabling changes the topic; disabling removes the trigger
SELECT elfsofa.enable_change_events('public.couriers', 'courier.changed');
SELECT tgname, encode(tgargs, 'escape') AS args FROM pg_trigger WHERE tgrelid = 'public.couriers'::regclass;
SELECT elfsofa.disable_change_events('public.couriers');
SELECT elfsofa.disable_change_events('public.couriers');
INSERT INTO public.couriers VALUES (3, 'Flash');
SELECT count(*) AS events_for_courier_3 FROM elfsofa.events WHERE key = '3';
-- rejected
CREATE TABLE public.no_pk (a int);
CREATE VIEW public.parcel_view AS SELECT * FROM public.parcels;
SELECT elfsofa.enable_change_events(NULL);
:err
SELECT elfsofa.enable_change_events('public.no_pk');
:err
SELECT elfsofa.enable_change_events('public.parcel_view');
:err
SELECT elfsofa.enable_change_events('elfsofa.events');
:err
SELECT elfsofa.enable_change_events('public.couriers', 'Courier Changed');
:err
SELECT count(*) AS triggers FROM pg_trigger
 WHERE tgrelid IN ('public.no_pk'::regclass, 'public.couriers'::regclass, 'elfsofa.events'::regclass)
   AND tgname = 'elfsofa_change_events';
SELECT elfsofa.change_event_trigger();
:err

-- keys in the primary key's order, the same in every partition whatever its
-- physical column order; a key of more than 16 columns is kept whole
TRUNCATE elfsofa.events;
CREATE TABLE public.shipments (id int, note text, region text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE public.shipments_north PARTITION OF public.shipments FOR VALUES IN ('north');
CREATE TABLE public.shipments_south (note text, region text NOT NULL, dropped int, id int NOT NULL);
ALTER TABLE public.shipments_south DROP COLUMN dropped;
ALTER TABLE public.shipments ATTACH PARTITION public.shipments_south FOR VALUES IN ('south');
SELECT elfsofa.enable_change_events('public.shipments');
INSERT INTO public.shipments VALUES (1, 'a', 'north'), (2, 'b', 'south');
UPDATE public.shipments SET id = id + 10;
SELECT topic, key, data->>'op' AS op, data->>'table' AS tbl, data->'key' AS k, data->'old_key' AS old_k
  FROM elfsofa.events_since(0) ORDER BY id;
DO $$
BEGIN
    EXECUTE 'CREATE TABLE public.wide_key (' ||
            (SELECT string_agg(format('k%s int', i), ', ') FROM generate_series(1, 17) i) ||
            ', PRIMARY KEY (' || (SELECT string_agg(format('k%s', i), ', ' ORDER BY i DESC) FROM generate_series(1, 17) i) || '))';
END
$$;
SELECT elfsofa.enable_change_events('public.wide_key');
INSERT INTO public.wide_key SELECT 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17;
SELECT key, (SELECT count(*) FROM jsonb_object_keys(data->'key')) AS key_columns
  FROM elfsofa.events_since(0) WHERE topic = 'wide_key.changed';
DROP TABLE public.shipments, public.wide_key;

-- the catalog: product.changed / category.changed keyed by sku / slug
TRUNCATE elfsofa.events;
INSERT INTO elfsofa.categories (slug, name) VALUES ('3-seat', '3-seat covers');
INSERT INTO elfsofa.products (sku, name, price, category_id) VALUES ('ELF-3S-GRY', 'grey', 1190, 1);
UPDATE elfsofa.products SET price = 1290;
SELECT topic, key, data->>'op' AS op, data->>'table' AS tbl, data->'key' AS k, data->'row'->>'price' AS price
  FROM elfsofa.events_since(0) ORDER BY id;

DROP TABLE public.parcels, public.couriers, public.no_pk CASCADE;

-- next_event_id (events.id's default) only takes a sequence
SELECT elfsofa.next_event_id('elfsofa.orders');
:err

-- a column the outbox writer fills, dropped and added back (a new column number):
-- the writer keeps column numbers per partition, and must make them again
SELECT elfsofa.emit_event('order.created', 'before', '{}') IS NOT NULL AS written;
ALTER TABLE elfsofa.events DROP COLUMN key;
ALTER TABLE elfsofa.events ADD COLUMN key text;
SELECT elfsofa.emit_event('order.created', 'after', '{}') IS NOT NULL AS written;
SELECT topic, key FROM elfsofa.events WHERE topic = 'order.created' ORDER BY id DESC LIMIT 1;

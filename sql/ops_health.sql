-- health() and metrics(): a healthy shop, then damage (detached partitions,
-- overdue logs, low stock, a session idle in transaction) and the status change.
\i test/regress_setup.sql
CREATE TEMP VIEW checks AS
  SELECT c->>'name' AS name, c->>'status' AS status
    FROM jsonb_array_elements(elfsofa.health()->'checks') c;

SELECT elfsofa.health()->>'status' AS status;
SELECT * FROM checks;
-- the same checks as rows, for dashboards
SELECT position, name, status FROM elfsofa.health_checks ORDER BY position;
SELECT jsonb_object_keys(c) AS keys FROM jsonb_array_elements(elfsofa.health()->'checks') c GROUP BY 1 ORDER BY 1;

-- metrics: valid Prometheus text exposition, the same verdict as health()
SELECT count(*) AS bad_lines
  FROM regexp_split_to_table(rtrim(elfsofa.metrics(), E'\n'), E'\n') l
 WHERE l !~ '^# (HELP|TYPE) elfsofa_[a-z_]+ '
   AND l !~ '^elfsofa_[a-z_]+(\{[a-z]+="[^"]*"\})? -?[0-9.e+]+$';
SELECT l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l
 WHERE l ~ '^elfsofa_(health_status|partitions_ahead\{table="elfsofa\.orders"\}|archive_overdue_rows|low_stock_products) ';

-- 1. the partition manager fell behind: orders has no partition ahead of now
CREATE TEMP TABLE detached AS
SELECT k.oid::regclass AS part, pg_get_expr(k.relpartbound, k.oid) AS bound
  FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
 WHERE i.inhparent = 'elfsofa.orders'::regclass
   AND btrim(substring(pg_get_expr(k.relpartbound, k.oid) FROM 'FROM \(([^)]*)\)'), '''')::timestamptz > now();
SELECT count(*) > 0 AS some_detached FROM detached;
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT part FROM detached LOOP
    EXECUTE format('ALTER TABLE elfsofa.orders DETACH PARTITION %s', r.part);
  END LOOP; END $$;
SELECT elfsofa.health()->>'status' AS status;
SELECT * FROM checks WHERE name = 'partitions';
SELECT regexp_replace(c->>'detail', 'last ends .*', 'last ends ...') AS detail
  FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'partitions';
-- the threshold is a setting
SET elfsofa.health_partitions_ahead = 0;
SELECT * FROM checks WHERE name = 'partitions';
RESET elfsofa.health_partitions_ahead;
-- ... and with the current month gone too, inserts would fail: failing
CREATE TEMP TABLE current_part AS
SELECT k.oid::regclass AS part, pg_get_expr(k.relpartbound, k.oid) AS bound
  FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
 WHERE i.inhparent = 'elfsofa.orders'::regclass;
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT part FROM current_part LOOP
    EXECUTE format('ALTER TABLE elfsofa.orders DETACH PARTITION %s', r.part);
  END LOOP; END $$;
SELECT elfsofa.health()->>'status' AS status;
SELECT * FROM checks WHERE name = 'partitions';
SELECT l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l
 WHERE l ~ '^elfsofa_(health_status|partitions_ahead\{table="elfsofa\.orders"\}) ';
-- repaired by the partition manager: drop the strays, run maintenance
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT part FROM detached UNION ALL SELECT part FROM current_part LOOP
    EXECUTE format('DROP TABLE %s', r.part);
  END LOOP; END $$;
SELECT (elfsofa.run_maintenance('elfsofa.orders') ->> 'created')::int > 0 AS recreated;
SELECT elfsofa.health()->>'status' AS status;
-- a maintenance run that failed is reported
UPDATE elfsofa.partition_sets SET last_error = 'could not create partition: out of disk' WHERE parent = 'elfsofa.events'::regclass;
SELECT c->>'status' AS status, c->>'detail' AS detail
  FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'partitions';
UPDATE elfsofa.partition_sets SET last_error = NULL;

-- 2. archiving is behind: a log row 100 days old
CREATE TABLE elfsofa.system_logs_old PARTITION OF elfsofa.system_logs
  FOR VALUES FROM (now() - interval '101 days') TO (now() - interval '99 days');
INSERT INTO elfsofa.system_logs (created_at, level, message) VALUES (now() - interval '100 days', 'info', 'old');
SELECT elfsofa.health()->>'status' AS status;
SELECT * FROM checks WHERE name = 'archiving';
SELECT l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l WHERE l ~ '^elfsofa_archive_overdue_rows ';
-- still within the grace period when retention is 99 days (the partition manager's setting counts)
UPDATE elfsofa.partition_sets SET retention = '99 days' WHERE parent = 'elfsofa.system_logs'::regclass;
SELECT * FROM checks WHERE name = 'archiving';
UPDATE elfsofa.partition_sets SET retention = '90 days' WHERE parent = 'elfsofa.system_logs'::regclass;
-- the retention run moves the old partition into elfsofa_archive
SELECT elfsofa.run_maintenance('elfsofa.system_logs') -> 'retired' AS retired;
SELECT count(*) AS archived_rows FROM elfsofa_archive.system_logs_old;
SELECT * FROM checks WHERE name = 'archiving';

-- 3. low stock: available below the product's threshold
INSERT INTO elfsofa.products (sku, name, price, low_stock_threshold) VALUES
  ('ELF-LOW', 'low cover', 100, 5), ('ELF-OK', 'ok cover', 100, 5), ('ELF-NONE', 'sold-out cover', 100, 1);
SELECT elfsofa.restock('ELF-LOW', 4), elfsofa.restock('ELF-OK', 5);
SELECT elfsofa.health()->>'status' AS status;
SELECT c->>'status' AS status, c->>'detail' AS detail
  FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'low_stock';
SELECT l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l WHERE l ~ '^elfsofa_(low|out_of)_stock_products ';
SET elfsofa.health_low_stock_products = 3;
SELECT * FROM checks WHERE name = 'low_stock';
RESET elfsofa.health_low_stock_products;
SELECT elfsofa.restock('ELF-LOW', 1), elfsofa.restock('ELF-NONE', 1);
SELECT * FROM checks WHERE name = 'low_stock';

-- 4. a session left idle in a transaction
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('idler', format('host=%s port=%s dbname=%s user=%s',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
       current_database(), current_user));
SELECT dblink_exec('idler', 'BEGIN');
SELECT dblink_exec('idler', 'SET LOCAL application_name = ''idler''');
SELECT * FROM checks WHERE name = 'sessions';
SET elfsofa.health_idle_in_transaction_seconds = 0;
SELECT elfsofa.health()->>'status' AS status;
SELECT * FROM checks WHERE name = 'sessions';
SELECT l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l WHERE l ~ '^elfsofa_idle_in_transaction_sessions ';
SELECT dblink_exec('idler', 'COMMIT');
SELECT * FROM checks WHERE name = 'sessions';
SELECT dblink_disconnect('idler');
RESET elfsofa.health_idle_in_transaction_seconds;

-- 5. an event consumer falls behind, a notification is dead-lettered
INSERT INTO elfsofa.customers (id, email) VALUES ('c0000000-0000-4000-8000-000000000001', 'somchai@example.com');
SELECT elfsofa.restock('ELF-OK', 10) AS on_hand;
-- a consumer registers with its first poll and acknowledges what it read
SELECT count(*) >= 0 AS polled FROM elfsofa.consumer_poll('mailer');
SELECT elfsofa.consumer_ack('mailer', (SELECT max(id) FROM elfsofa.events)) >= 0 AS acked;
SELECT * FROM checks WHERE name = 'event_consumers';
SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-000000000001", "items": [{"sku": "ELF-OK", "quantity": 1}]}') ->> 'status' AS order_status;
SELECT * FROM checks WHERE name IN ('event_consumers', 'dead_letters');
-- dashboard gauges: orders waiting for fulfilment, open carts
SELECT l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l WHERE l ~ '^elfsofa_(orders|carts)_open';
SET elfsofa.health_event_lag_seconds = 0;
SELECT elfsofa.health()->>'status' AS status;
SELECT * FROM checks WHERE name = 'event_consumers';
SET elfsofa.health_event_lag_fail_seconds = 0;
SELECT elfsofa.health()->>'status' AS status;
SELECT regexp_replace(c->>'detail', '[0-9]+ s behind', 'N s behind') AS detail
  FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'event_consumers';
SELECT regexp_replace(l, ' [0-9.e+]+$', ' N') AS l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l
 WHERE l ~ '^elfsofa_event_consumer_lag_seconds';
-- the consumer catches up
SELECT elfsofa.consumer_ack('mailer', (SELECT max(id) FROM elfsofa.events)) > 0 AS acked;
SELECT * FROM checks WHERE name = 'event_consumers';
RESET elfsofa.health_event_lag_seconds;
RESET elfsofa.health_event_lag_fail_seconds;
-- the order confirmation fails its only attempt: dead letter
SET elfsofa.notification_max_attempts = 1;
SELECT elfsofa.fail_notification(id, 'smtp 554') ->> 'status' AS notification FROM elfsofa.claim_notifications('test-worker');
RESET elfsofa.notification_max_attempts;
SELECT elfsofa.health()->>'status' AS status;
SELECT c->>'status' AS status, regexp_replace(c->>'detail', 'ids [0-9]+', 'ids N') AS detail
  FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'dead_letters';
SELECT l FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l WHERE l ~ '^elfsofa_notifications_';
SET elfsofa.health_dead_letters = 0;
SELECT * FROM checks WHERE name = 'dead_letters';
RESET elfsofa.health_dead_letters;

-- 6. database size over a (tiny) limit
SET elfsofa.health_database_size_mb = 1;
SELECT * FROM checks WHERE name = 'database_size';
RESET elfsofa.health_database_size_mb;

DELETE FROM elfsofa.notifications WHERE status = 'dead';
SELECT elfsofa.health()->>'status' AS status;
-- settings are checked
SET elfsofa.health_partitions_ahead = -1;
:err
SET elfsofa.health_no_such_setting = 1;
:err

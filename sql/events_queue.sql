\i test/regress_setup.sql
-- The outbound notification queue: queued from order events in the same
-- transaction, claimed with SKIP LOCKED, retried with exponential backoff,
-- dead after elfsofa.notification_max_attempts.
SET elfsofa.actor = 'regress';
SELECT elfsofa.upsert_customer('somchai@example.co.th', 'Somchai Jaidee', '+66 81 234 5678') AS somchai \gset
SELECT elfsofa.upsert_customer('malee@example.co.th', 'Malee') AS malee \gset
SELECT elfsofa.upsert_customer('niran@example.co.th', 'Niran') AS niran \gset
INSERT INTO elfsofa.notification_preferences (customer_id, channel, address) VALUES (:'malee', 'line', 'U4af4980629');
INSERT INTO elfsofa.notification_preferences (customer_id, channel) VALUES (:'niran', 'sms');  -- no phone: e-mail
INSERT INTO elfsofa.orders (id, order_number, customer_id, total) VALUES
  (1, 'ELF-2026-000001', :'somchai', 1790.00),
  (2, 'ELF-2026-000002', :'malee', 890.00),
  (3, 'ELF-2026-000003', :'niran', 590.00);

-- order.created queues a confirmation; a rolled-back event queues nothing
SELECT elfsofa.emit_event('order.created', '1', '{}') > 0 AS emitted;
-- (process_order's order.created carries the customer: no order lookup then)
SELECT elfsofa.emit_event('order.created', '2', jsonb_build_object('customer_id', :'malee', 'order_number', 'ELF-2026-000002',
                          'total', 890.00, 'items', '[{"sku": "ELF-2S-GRY", "quantity": 1}]'::jsonb)) > 0 AS emitted;
BEGIN;
SELECT elfsofa.emit_event('order.created', '3', '{}') > 0 AS emitted;
ROLLBACK;
-- other topics and statuses queue nothing; a repeated event does not queue twice
SELECT elfsofa.emit_event('order.status.updated', '1', '{"status": "confirmed"}') > 0 AS emitted;
SELECT elfsofa.emit_event('inventory.updated', '1', '{}') > 0 AS emitted;
SELECT elfsofa.emit_event('order.created', '1', '{}') > 0 AS emitted;
SELECT elfsofa.emit_event('order.created', '999', '{}') > 0 AS unknown_order_emitted;
-- shipped: a shipping notice, whichever field carries the new status
SELECT elfsofa.emit_event('order.status.updated', '1', '{"from": "packed", "to": "shipped"}') > 0 AS emitted;
SELECT elfsofa.emit_event('order.status.updated', '3', '{"status": "shipped"}') > 0 AS emitted;
SELECT order_id, kind, channel, recipient, status, attempts, payload->>'order_number' AS order_number,
       payload->>'customer_name' AS customer_name, payload ? 'items' AS has_items
  FROM elfsofa.notifications ORDER BY id;

SELECT id AS n1 FROM elfsofa.notifications WHERE order_id = 1 AND kind = 'order_confirmation' \gset
SELECT id AS n2 FROM elfsofa.notifications WHERE order_id = 2 AND kind = 'order_confirmation' \gset
SELECT id AS n3 FROM elfsofa.notifications WHERE order_id = 1 AND kind = 'shipping_notice' \gset
SELECT id AS n4 FROM elfsofa.notifications WHERE order_id = 3 AND kind = 'shipping_notice' \gset

-- claim: due rows only (oldest first), one attempt each, leased; SKIP LOCKED across senders
SELECT order_id, kind, status, attempts, locked_by, visible_at > now() AS leased
  FROM elfsofa.claim_notifications('mailer-1', 2) ORDER BY id;
SELECT order_id, kind FROM elfsofa.claim_notifications('mailer-2', 1);
SELECT order_id, kind, status, attempts, locked_by FROM elfsofa.notifications ORDER BY id;
SELECT elfsofa.complete_notification(:n1) - 'id' AS completed;
SELECT elfsofa.complete_notification(:n1);
:err
SELECT elfsofa.complete_notification(:n4);
:err
SELECT elfsofa.complete_notification(12345);
:err
SELECT elfsofa.complete_notification(NULL);
:err
SELECT elfsofa.claim_notifications(NULL, 1);
:err
SELECT elfsofa.claim_notifications('mailer-1', 0);
:err
SELECT elfsofa.claim_notifications('mailer-1', 1001);
:err

-- failures: base * 2^(attempts-1) seconds, capped, then dead
SET elfsofa.notification_max_attempts = 4;
SET elfsofa.notification_backoff_base = 10;
SET elfsofa.notification_backoff_max = 30;
SELECT elfsofa.fail_notification(:n2, 'LINE API 503') - 'id' AS failed;
SELECT count(*) AS claimable_during_backoff FROM elfsofa.claim_notifications('mailer-1', 10) WHERE id = :n2;
UPDATE elfsofa.notifications SET visible_at = now() WHERE id = :n2;   -- time passes
SELECT attempts FROM elfsofa.claim_notifications('mailer-1', 10) WHERE id = :n2;
SELECT elfsofa.fail_notification(:n2, 'LINE API 503') - 'id' AS failed;
UPDATE elfsofa.notifications SET visible_at = now() WHERE id = :n2;
SELECT attempts FROM elfsofa.claim_notifications('mailer-1', 10) WHERE id = :n2;
SELECT elfsofa.fail_notification(:n2, 'LINE API 503') - 'id' AS capped;
UPDATE elfsofa.notifications SET visible_at = now() WHERE id = :n2;
SELECT attempts FROM elfsofa.claim_notifications('mailer-1', 10) WHERE id = :n2;
SELECT elfsofa.fail_notification(:n2, 'LINE API 410 gone') - 'id' AS dead_letter;
UPDATE elfsofa.notifications SET visible_at = now() WHERE id = :n2;
SELECT count(*) AS dead_is_never_claimed FROM elfsofa.claim_notifications('mailer-1', 10) WHERE id = :n2;
SELECT elfsofa.fail_notification(:n2, 'again');
:err
SELECT elfsofa.fail_notification(:n3, NULL);
:err
SELECT order_id, kind, status, attempts, last_error FROM elfsofa.notifications ORDER BY id;

-- a sender that dies: its lease runs out and the row is claimed again,
-- or declared dead when that was its last attempt
SELECT attempts, locked_by FROM elfsofa.notifications WHERE id = :n3;
UPDATE elfsofa.notifications SET visible_at = now() - interval '1 second' WHERE id = :n3;
SELECT attempts, locked_by FROM elfsofa.claim_notifications('rescuer', 10) WHERE id = :n3;
SET elfsofa.notification_max_attempts = 2;
UPDATE elfsofa.notifications SET visible_at = now() - interval '1 second' WHERE id = :n3;
SELECT count(*) AS reclaimed FROM elfsofa.claim_notifications('rescuer', 10) WHERE id = :n3;
SELECT status, attempts, last_error FROM elfsofa.notifications WHERE id = :n3;
SET elfsofa.notification_max_attempts = 0;
:err
RESET ALL;

-- the same event twice in one statement queues one message (commit mode: the
-- writer queues it directly, and its probe sees its own earlier row)
SELECT elfsofa.emit_event('order.created', '3', jsonb_build_object('customer_id', :'niran',
       'order_number', 'ELF-2026-000003', 'total', 590.00)) > 0 AS emitted FROM generate_series(1, 2);
SELECT order_id, kind, recipient FROM elfsofa.notifications WHERE order_id = 3 ORDER BY id;

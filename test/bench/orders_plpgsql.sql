-- test/bench/orders_plpgsql.sql — a fair PL/pgSQL implementation of
-- elfsofa.process_order's contract, for the benchmark only.  Same validation
-- (22023 with the path in DETAIL), same customer and JWT rule, same
-- idempotency (advisory lock, SHA-256 of the canonical request), duplicate
-- SKUs merged, catalog prices, stock rows locked in (product, location) order
-- with one sorted FOR UPDATE, set-based reads and writes, no temp tables, the
-- same rows written (order, lines, ledger, payment, events, key).
CREATE SCHEMA IF NOT EXISTS bench;

CREATE OR REPLACE FUNCTION bench.bad(path text, msg text, why text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = msg, DETAIL = path || ' ' || why || '.';
END $$;

CREATE OR REPLACE FUNCTION bench.process_order(order_data jsonb, inventory_updates jsonb DEFAULT NULL, payment_info jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_item jsonb;
  v_idx int := 0;
  v_n int;
  v_sku text;
  v_loc text;
  v_q numeric;
  v_k int;
  v_skus text[] := '{}';
  v_qtys int[] := '{}';
  v_first int[] := '{}';
  v_alloc_sku text[] := '{}';
  v_alloc_loc text[] := '{}';
  v_alloc_q int[] := '{}';
  v_alloc_auto boolean[] := '{}';
  v_placed int[];
  v_cust uuid;
  v_cust_text text;
  v_owner text;
  v_sub text;
  v_key text;
  v_note text;
  v_ship jsonb;
  v_hash text;
  v_resp jsonb;
  v_pay boolean := false;
  v_pm text; v_pa numeric; v_pp text; v_pr text; v_ps text;
  v_pids bigint[]; v_locs text[]; v_qs int[]; v_prices numeric[]; v_lskus text[]; v_thr int[]; v_avail int[]; v_auto boolean[];
  v_total numeric;
  v_bad record;
  v_order_id bigint;
  v_number text;
  v_status text;
  v_actor text;
BEGIN
  ---------------------------------------------------------------- validation
  IF order_data IS NULL OR jsonb_typeof(order_data) = 'null' THEN
    PERFORM bench.bad('order_data', 'order_data is required', 'was null');
  END IF;
  IF jsonb_typeof(order_data) <> 'object' THEN
    PERFORM bench.bad('order_data', 'order_data must be a JSON object', 'was ' || jsonb_typeof(order_data));
  END IF;
  IF jsonb_typeof(order_data->'customer_id') IS NOT NULL AND jsonb_typeof(order_data->'customer_id') <> 'null' THEN
    IF jsonb_typeof(order_data->'customer_id') <> 'string' THEN
      PERFORM bench.bad('customer_id', 'field has the wrong type', 'was ' || jsonb_typeof(order_data->'customer_id') || '; it must be a uuid string');
    END IF;
    v_cust_text := order_data->>'customer_id';
  END IF;
  IF jsonb_typeof(order_data->'idempotency_key') IS NOT NULL AND jsonb_typeof(order_data->'idempotency_key') <> 'null' THEN
    IF jsonb_typeof(order_data->'idempotency_key') <> 'string' THEN
      PERFORM bench.bad('idempotency_key', 'field has the wrong type', 'must be a string');
    END IF;
    v_key := order_data->>'idempotency_key';
    IF v_key = '' OR octet_length(v_key) > 255 THEN
      PERFORM bench.bad('idempotency_key', 'invalid idempotency key', 'must have 1 to 255 bytes');
    END IF;
  END IF;
  IF jsonb_typeof(order_data->'note') IS NOT NULL AND jsonb_typeof(order_data->'note') <> 'null' THEN
    IF jsonb_typeof(order_data->'note') <> 'string' THEN
      PERFORM bench.bad('note', 'field has the wrong type', 'must be a string');
    END IF;
    v_note := order_data->>'note';
    IF octet_length(v_note) > 2000 THEN PERFORM bench.bad('note', 'field is too long', 'has more than 2000 bytes'); END IF;
    v_note := nullif(v_note, '');
  END IF;
  IF jsonb_typeof(order_data->'shipping_address') IS NOT NULL AND jsonb_typeof(order_data->'shipping_address') <> 'null' THEN
    IF jsonb_typeof(order_data->'shipping_address') <> 'object' THEN
      PERFORM bench.bad('shipping_address', 'field has the wrong type', 'must be an object');
    END IF;
    v_ship := order_data->'shipping_address';
  END IF;
  IF order_data->'items' IS NULL OR jsonb_typeof(order_data->'items') = 'null' THEN
    PERFORM bench.bad('items', 'required field is missing', 'was missing');
  END IF;
  IF jsonb_typeof(order_data->'items') <> 'array' THEN
    PERFORM bench.bad('items', 'field has the wrong type', 'must be an array');
  END IF;
  v_n := jsonb_array_length(order_data->'items');
  IF v_n = 0 THEN PERFORM bench.bad('items', 'order has no items', 'was an empty array'); END IF;
  IF v_n > 100 THEN PERFORM bench.bad('items', 'too many order lines', 'had ' || v_n || ' elements; at most 100 are allowed'); END IF;

  FOR v_item IN SELECT e FROM jsonb_array_elements(order_data->'items') e LOOP
    IF jsonb_typeof(v_item) <> 'object' THEN
      PERFORM bench.bad(format('items[%s]', v_idx), 'order item must be an object', 'was ' || jsonb_typeof(v_item));
    END IF;
    IF jsonb_typeof(v_item->'sku') IS DISTINCT FROM 'string' THEN
      PERFORM bench.bad(format('items[%s].sku', v_idx), 'required field is missing', 'was missing or not a string');
    END IF;
    v_sku := v_item->>'sku';
    IF v_sku = '' OR octet_length(v_sku) > 64 THEN
      PERFORM bench.bad(format('items[%s].sku', v_idx), 'invalid sku', 'must have 1 to 64 bytes');
    END IF;
    IF jsonb_typeof(v_item->'quantity') IS DISTINCT FROM 'number' THEN
      PERFORM bench.bad(format('items[%s].quantity', v_idx), 'invalid quantity', 'was missing or not a number');
    END IF;
    v_q := (v_item->>'quantity')::numeric;
    IF v_q <> trunc(v_q) OR v_q < 1 OR v_q > 100000 THEN
      PERFORM bench.bad(format('items[%s].quantity', v_idx), 'invalid quantity', 'was ' || v_q || '; it must be between 1 and 100000');
    END IF;
    v_k := array_position(v_skus, v_sku);
    IF v_k IS NULL THEN
      v_skus := v_skus || v_sku;
      v_qtys := v_qtys || v_q::int;
      v_first := v_first || v_idx;
    ELSE
      IF v_qtys[v_k] + v_q > 100000 THEN
        PERFORM bench.bad(format('items[%s].quantity', v_idx), 'invalid quantity', 'brings the sku over 100000 units');
      END IF;
      v_qtys[v_k] := v_qtys[v_k] + v_q::int;
    END IF;
    v_idx := v_idx + 1;
  END LOOP;

  -- where the units come from
  v_placed := array_fill(0, ARRAY[cardinality(v_skus)]);
  IF inventory_updates IS NOT NULL AND jsonb_typeof(inventory_updates) <> 'null' THEN
    IF jsonb_typeof(inventory_updates) <> 'array' THEN
      PERFORM bench.bad('inventory_updates', 'inventory_updates must be a JSON array', 'was not an array');
    END IF;
    v_idx := 0;
    FOR v_item IN SELECT e FROM jsonb_array_elements(inventory_updates) e LOOP
      IF jsonb_typeof(v_item) <> 'object' THEN
        PERFORM bench.bad(format('inventory_updates[%s]', v_idx), 'inventory update must be an object', 'was ' || jsonb_typeof(v_item));
      END IF;
      v_sku := v_item->>'sku';
      v_loc := v_item->>'location';
      IF jsonb_typeof(v_item->'sku') IS DISTINCT FROM 'string' OR jsonb_typeof(v_item->'location') IS DISTINCT FROM 'string' THEN
        PERFORM bench.bad(format('inventory_updates[%s]', v_idx), 'required field is missing', 'needs sku and location strings');
      END IF;
      IF v_loc !~ '^[a-z0-9_-]{1,32}$' THEN
        PERFORM bench.bad(format('inventory_updates[%s].location', v_idx), 'invalid location code', 'was "' || v_loc || '"');
      END IF;
      IF jsonb_typeof(v_item->'quantity') IS DISTINCT FROM 'number' THEN
        PERFORM bench.bad(format('inventory_updates[%s].quantity', v_idx), 'invalid quantity', 'was not a number');
      END IF;
      v_q := (v_item->>'quantity')::numeric;
      IF v_q <> trunc(v_q) OR v_q < 1 OR v_q > 100000 THEN
        PERFORM bench.bad(format('inventory_updates[%s].quantity', v_idx), 'invalid quantity', 'must be between 1 and 100000');
      END IF;
      v_k := array_position(v_skus, v_sku);
      IF v_k IS NULL THEN
        PERFORM bench.bad(format('inventory_updates[%s].sku', v_idx), 'inventory update for a sku that is not ordered', 'was "' || v_sku || '"');
      END IF;
      v_placed[v_k] := v_placed[v_k] + v_q::int;
      v_alloc_sku := v_alloc_sku || v_sku;
      v_alloc_loc := v_alloc_loc || v_loc;
      v_alloc_q := v_alloc_q || v_q::int;
      v_alloc_auto := v_alloc_auto || false;
      v_idx := v_idx + 1;
    END LOOP;
    FOR v_k IN 1 .. cardinality(v_skus) LOOP
      IF v_placed[v_k] <> 0 AND v_placed[v_k] <> v_qtys[v_k] THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'inventory updates do not match the items',
          DETAIL = format('inventory_updates place %s units of sku "%s" but items order %s.', v_placed[v_k], v_skus[v_k], v_qtys[v_k]);
      END IF;
    END LOOP;
  END IF;
  FOR v_k IN 1 .. cardinality(v_skus) LOOP
    IF v_placed[v_k] = 0 THEN
      v_alloc_sku := v_alloc_sku || v_skus[v_k];
      v_alloc_loc := v_alloc_loc || 'main'::text;
      v_alloc_q := v_alloc_q || v_qtys[v_k];
      v_alloc_auto := v_alloc_auto || true;
    END IF;
  END LOOP;

  IF payment_info IS NOT NULL AND jsonb_typeof(payment_info) <> 'null' THEN
    IF jsonb_typeof(payment_info) <> 'object' THEN
      PERFORM bench.bad('payment_info', 'payment_info must be a JSON object', 'was ' || jsonb_typeof(payment_info));
    END IF;
    v_pay := true;
    v_pm := payment_info->>'method';
    IF v_pm IS NULL OR v_pm NOT IN ('promptpay', 'card', 'bank_transfer', 'cod') THEN
      PERFORM bench.bad('payment_info.method', 'unknown payment method', 'was missing or unknown');
    END IF;
    IF jsonb_typeof(payment_info->'amount') IS DISTINCT FROM 'number' THEN
      PERFORM bench.bad('payment_info.amount', 'required field is missing', 'was missing or not a number');
    END IF;
    v_pa := (payment_info->>'amount')::numeric;
    IF v_pa < 0 THEN PERFORM bench.bad('payment_info.amount', 'invalid payment amount', 'must not be negative'); END IF;
    IF payment_info->>'currency' IS NOT NULL AND payment_info->>'currency' <> 'THB' THEN
      PERFORM bench.bad('payment_info.currency', 'unsupported currency', 'must be THB');
    END IF;
    v_pp := payment_info->>'provider';
    v_pr := payment_info->>'provider_ref';
    IF octet_length(v_pp) > 50 OR octet_length(v_pr) > 200 THEN
      PERFORM bench.bad('payment_info.provider_ref', 'field is too long', 'is too long');
    END IF;
    IF v_pr IS NOT NULL AND v_pp IS NULL THEN
      PERFORM bench.bad('payment_info.provider', 'payment provider is required with provider_ref', 'was missing');
    END IF;
    v_ps := coalesce(payment_info->>'status', 'pending');
    IF v_ps NOT IN ('pending', 'authorized', 'captured') THEN
      PERFORM bench.bad('payment_info.status', 'invalid payment status', 'was "' || v_ps || '"');
    END IF;
  END IF;

  ---------------------------------------------------------------- customer
  v_sub := nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb->>'sub', '');
  IF v_cust_text IS NOT NULL THEN
    IF v_cust_text !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' THEN
      PERFORM bench.bad('customer_id', 'invalid customer id', 'was "' || v_cust_text || '", which is not a uuid');
    END IF;
    v_cust := v_cust_text::uuid;
    SELECT c.auth_user_id::text INTO v_owner FROM elfsofa.customers c WHERE c.id = v_cust;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'PT404', MESSAGE = 'unknown customer', DETAIL = format('customer_id "%s" matches no customer.', v_cust_text);
    END IF;
    IF v_sub IS NOT NULL AND v_owner IS DISTINCT FROM lower(v_sub)
       AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user)
       AND NOT (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') AND pg_has_role(current_user, 'service_role', 'member')) THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'customer belongs to another user';
    END IF;
  ELSE
    IF v_sub IS NULL THEN
      PERFORM bench.bad('customer_id', 'required field is missing', 'was missing and the request carries no JWT sub');
    END IF;
    IF v_sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
      SELECT c.id INTO v_cust FROM elfsofa.customers c WHERE c.auth_user_id = v_sub::uuid;
    END IF;
    IF v_cust IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'PT404', MESSAGE = 'unknown customer';
    END IF;
  END IF;
  v_actor := coalesce(v_sub, nullif(current_setting('elfsofa.actor', true), ''), current_user);

  ---------------------------------------------------------------- idempotency
  IF v_key IS NOT NULL THEN
    SELECT encode(sha256(convert_to(concat_ws(';', v_cust::text,
             (SELECT string_agg(a.s || '@' || a.l || ':' || a.q, ',' ORDER BY a.s, a.l)
                FROM unnest(v_alloc_sku, v_alloc_loc, v_alloc_q) a(s, l, q)),
             v_ship::text, v_note, v_pm, v_pa::text, v_pp, v_pr, v_ps), 'UTF8')), 'hex')
      INTO v_hash;
    PERFORM pg_advisory_xact_lock(hashtext(v_cust::text || v_key));
    SELECT k.request_hash, k.response || '{"replayed": true}' INTO v_bad
      FROM elfsofa.idempotency_keys k WHERE k.customer_id = v_cust AND k.key = v_key AND k.expires_at > now();
    IF FOUND THEN
      IF v_bad.request_hash <> v_hash THEN
        RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'idempotency key was already used for a different request';
      END IF;
      RETURN v_bad."?column?";
    END IF;
  END IF;

  ---------------------------------------------------------------- catalog
  SELECT array_agg(p.id ORDER BY p.id, a.l), array_agg(a.l ORDER BY p.id, a.l), array_agg(a.q ORDER BY p.id, a.l),
         array_agg(p.price ORDER BY p.id, a.l), array_agg(p.sku ORDER BY p.id, a.l),
         array_agg(p.low_stock_threshold ORDER BY p.id, a.l), array_agg(a.auto ORDER BY p.id, a.l), sum(p.price * a.q)
    INTO v_pids, v_locs, v_qs, v_prices, v_lskus, v_thr, v_auto, v_total
    FROM unnest(v_alloc_sku, v_alloc_loc, v_alloc_q, v_alloc_auto) a(s, l, q, auto) JOIN elfsofa.products p ON p.sku = a.s AND p.is_active;
  IF coalesce(cardinality(v_pids), 0) <> cardinality(v_alloc_sku) THEN
    SELECT u.s, u.i, p.is_active INTO v_bad FROM unnest(v_skus, v_first) u(s, i) LEFT JOIN elfsofa.products p ON p.sku = u.s
     WHERE p.id IS NULL OR NOT p.is_active LIMIT 1;
    RAISE EXCEPTION USING ERRCODE = 'PT404', MESSAGE = 'unknown sku',
      DETAIL = format('items[%s].sku "%s" matches no product.', v_bad.i, v_bad.s);
  END IF;

  IF v_pay THEN
    IF v_pa <> v_total THEN
      RAISE EXCEPTION USING ERRCODE = 'PT422', MESSAGE = 'payment amount differs from the order total',
        DETAIL = format('payment_info.amount was %s but the order total is %s.', v_pa, v_total);
    END IF;
    IF v_pr IS NOT NULL AND EXISTS (SELECT 1 FROM elfsofa.payments WHERE provider = v_pp AND provider_ref = v_pr) THEN
      RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'payment reference was already recorded';
    END IF;
  END IF;

  ---------------------------------------------------------------- stock: sorted locks, check, split, reserve
  -- placed allocations lock their row; automatic ones (no inventory_updates for
  -- the sku) every location of the product: main first, then the others by name
  PERFORM 1 FROM elfsofa.stock_levels s
    JOIN unnest(v_pids, v_locs, v_auto) u(pid, loc, auto) ON s.product_id = u.pid AND (u.auto OR s.location = u.loc)
   ORDER BY s.product_id, s.location <> 'main', s.location FOR UPDATE OF s;
  -- fast path: every allocation fits at its own row (placed location, or main)
  SELECT u.sku, u.loc, u.q, u.auto, coalesce(s.on_hand - s.reserved, 0) AS avail INTO v_bad
    FROM unnest(v_pids, v_locs, v_qs, v_lskus, v_auto) u(pid, loc, q, sku, auto)
    LEFT JOIN elfsofa.stock_levels s ON s.product_id = u.pid AND s.location = u.loc
   WHERE coalesce(s.on_hand - s.reserved, 0) < u.q ORDER BY u.auto LIMIT 1;
  IF FOUND AND NOT v_bad.auto THEN
    RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'insufficient stock',
      DETAIL = format('sku "%s" has %s available at location "%s"; the order needs %s.', v_bad.sku, greatest(v_bad.avail, 0), v_bad.loc, v_bad.q);
  END IF;
  IF FOUND THEN
    -- an automatic allocation does not fit at main: split over the locked rows
    WITH c AS (
      SELECT u.n, u.pid, u.sku, u.q, u.price, u.thr, u.auto, coalesce(s.location, u.loc) AS loc,
             greatest(coalesce(s.on_hand - s.reserved, 0), 0) AS avail
        FROM unnest(v_pids, v_locs, v_qs, v_lskus, v_prices, v_thr, v_auto) WITH ORDINALITY u(pid, loc, q, sku, price, thr, auto, n)
        LEFT JOIN elfsofa.stock_levels s ON s.product_id = u.pid AND (u.auto OR s.location = u.loc)),
    w AS (
      SELECT c.*, sum(c.avail) OVER (PARTITION BY c.n) AS total,
             coalesce(sum(c.avail) OVER (PARTITION BY c.n ORDER BY c.loc <> 'main', c.loc
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM c),
    t AS (SELECT w.*, least(w.avail, greatest(w.q - w.before, 0))::int AS take FROM w)
    SELECT (SELECT CASE WHEN t2.auto THEN format('sku "%s" has %s available over all locations; the order needs %s.', t2.sku, t2.total, t2.q)
                        ELSE format('sku "%s" has %s available at location "%s"; the order needs %s.', t2.sku, t2.total, t2.loc, t2.q) END
              FROM t t2 WHERE t2.total < t2.q ORDER BY t2.n LIMIT 1),
           array_agg(t.pid ORDER BY t.pid, t.loc <> 'main', t.loc), array_agg(t.loc ORDER BY t.pid, t.loc <> 'main', t.loc), array_agg(t.take ORDER BY t.pid, t.loc <> 'main', t.loc),
           array_agg(t.price ORDER BY t.pid, t.loc <> 'main', t.loc), array_agg(t.sku ORDER BY t.pid, t.loc <> 'main', t.loc), array_agg(t.thr ORDER BY t.pid, t.loc <> 'main', t.loc)
      INTO v_sku, v_pids, v_locs, v_qs, v_prices, v_lskus, v_thr
      FROM t WHERE t.take > 0;
    IF v_sku IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'insufficient stock', DETAIL = v_sku;
    END IF;
  END IF;
  WITH upd AS (
    UPDATE elfsofa.stock_levels s SET reserved = s.reserved + u.q, updated_at = now()
      FROM unnest(v_pids, v_locs, v_qs) u(pid, loc, q)
     WHERE s.product_id = u.pid AND s.location = u.loc
    RETURNING s.product_id, s.location, s.on_hand - s.reserved AS avail)
  SELECT array_agg(upd.avail ORDER BY upd.product_id, upd.location) INTO v_avail FROM upd;

  ---------------------------------------------------------------- writes
  WITH o AS (
    INSERT INTO elfsofa.orders (id, order_number, customer_id, payment_status, payment_method, total, shipping_address, note, idempotency_key)
    SELECT n.id, 'ELF-' || to_char(now(), 'YYYY') || '-' || lpad(n.id::text, greatest(6, length(n.id::text)), '0'),
           v_cust, CASE v_ps WHEN 'captured' THEN 'paid' WHEN 'authorized' THEN 'authorized' ELSE 'unpaid' END,
           v_pm, v_total, v_ship, v_note, v_key
      FROM (SELECT nextval('elfsofa.orders_id_seq') AS id) n
    RETURNING id, order_number, created_at, status),
  l AS (INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, unit_price, line_total, created_at)
    SELECT o.id, u.n, u.pid, u.sku, u.loc, u.q, u.price, u.price * u.q, o.created_at
      FROM o, unnest(v_pids, v_lskus, v_locs, v_qs, v_prices) WITH ORDINALITY u(pid, sku, loc, q, price, n)),
  g AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_reserved, reason, order_id, actor)
    SELECT u.pid, u.loc, u.q, 'reserve', o.id, v_actor FROM o, unnest(v_pids, v_locs, v_qs) u(pid, loc, q)),
  p AS (INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount, provider, provider_ref, status)
    SELECT o.id, o.created_at, v_pm, v_pa, v_pp, v_pr, v_ps FROM o WHERE v_pay)
  SELECT o.id, o.order_number, o.status INTO v_order_id, v_number, v_status FROM o;

  INSERT INTO elfsofa.events (topic, key, data)
  SELECT 'order.created', v_order_id::text,
         jsonb_build_object('order_id', v_order_id, 'order_number', v_number, 'customer_id', v_cust, 'status', v_status,
                            'total', v_total, 'currency', 'THB',
                            'payment_status', CASE v_ps WHEN 'captured' THEN 'paid' WHEN 'authorized' THEN 'authorized' ELSE 'unpaid' END,
                            'items', (SELECT jsonb_agg(jsonb_build_object('sku', u.sku, 'location', u.loc, 'quantity', u.q, 'unit_price', u.price) ORDER BY u.n)
                                        FROM unnest(v_lskus, v_locs, v_qs, v_prices) WITH ORDINALITY u(sku, loc, q, price, n)))
  UNION ALL
  SELECT e.topic, e.sku, e.data FROM (
    SELECT u.n, 1 AS k, 'inventory.updated' AS topic, u.sku,
           jsonb_build_object('sku', u.sku, 'location', u.loc, 'available', u.avail, 'delta_reserved', u.q, 'reason', 'reserve', 'order_id', v_order_id) AS data
      FROM unnest(v_lskus, v_locs, v_qs, v_avail, v_thr) WITH ORDINALITY u(sku, loc, q, avail, thr, n)
    UNION ALL
    SELECT u.n, 2, 'inventory.low_stock', u.sku,
           jsonb_build_object('sku', u.sku, 'location', u.loc, 'available', u.avail, 'threshold', u.thr)
      FROM unnest(v_lskus, v_locs, v_qs, v_avail, v_thr) WITH ORDINALITY u(sku, loc, q, avail, thr, n)
     WHERE u.avail < u.thr AND u.avail + u.q >= u.thr
    ORDER BY 1, 2) e;

  v_resp := jsonb_build_object('order_id', v_order_id, 'order_number', v_number, 'status', v_status,
                               'total', v_total, 'currency', 'THB', 'replayed', false);
  IF v_key IS NOT NULL THEN
    INSERT INTO elfsofa.idempotency_keys AS k (customer_id, key, request_hash, order_id, response)
    VALUES (v_cust, v_key, v_hash, v_order_id, v_resp)
    ON CONFLICT (customer_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id,
      response = EXCLUDED.response, created_at = now(), expires_at = now() + interval '24 hours'
    WHERE k.expires_at <= now();
  END IF;
  RETURN v_resp;
END
$fn$;

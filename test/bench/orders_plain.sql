-- test/bench/orders_plain.sql — the shop a Supabase user writes by hand, for
-- the benchmark only: its own schema of plain tables (products with a stock
-- column, orders, order_items, payments), a supa_audit-style row trigger
-- (to_jsonb(NEW) / to_jsonb(OLD)) on each into one audit table, a pg_notify
-- row trigger on orders, and one PL/pgSQL process_order that validates,
-- takes and locks the units SKU by SKU in sku order with
-- UPDATE ... WHERE stock >= qty, and inserts.  Same order contract as
-- elfsofa.process_order for the fields the bench uses (customer, items,
-- optional payment), same 22023 / PT404 / PT409 errors.
DROP SCHEMA IF EXISTS plainshop CASCADE;
CREATE SCHEMA plainshop;

CREATE TABLE plainshop.customers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plainshop.products (
  id bigserial PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  name text NOT NULL,
  price numeric(12,2) NOT NULL CHECK (price >= 0),
  stock int NOT NULL DEFAULT 0 CHECK (stock >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plainshop.orders (
  id bigserial PRIMARY KEY,
  customer_id uuid NOT NULL REFERENCES plainshop.customers (id),
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'confirmed', 'packed', 'shipped', 'delivered', 'cancelled', 'returned')),
  total numeric(12,2) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON plainshop.orders (customer_id);

CREATE TABLE plainshop.order_items (
  id bigserial PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES plainshop.orders (id),
  product_id bigint NOT NULL REFERENCES plainshop.products (id),
  quantity int NOT NULL CHECK (quantity > 0),
  unit_price numeric(12,2) NOT NULL
);
CREATE INDEX ON plainshop.order_items (order_id);

CREATE TABLE plainshop.payments (
  id bigserial PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES plainshop.orders (id),
  method text NOT NULL,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON plainshop.payments (order_id);

-- supa_audit's shape: one table, the row image as jsonb, indexed by table and row id.
CREATE TABLE plainshop.audit_log (
  id bigserial PRIMARY KEY,
  ts timestamptz NOT NULL DEFAULT now(),
  op text NOT NULL,
  table_name text NOT NULL,
  record_id text,
  old_record_id text,
  record jsonb,
  old_record jsonb,
  actor text NOT NULL DEFAULT coalesce(current_setting('request.jwt.claims', true)::jsonb->>'sub', current_user)
);
CREATE INDEX ON plainshop.audit_log USING brin (ts);
CREATE INDEX ON plainshop.audit_log (table_name, record_id);
CREATE INDEX ON plainshop.audit_log (table_name, old_record_id);

CREATE FUNCTION plainshop.audit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO plainshop.audit_log (op, table_name, record_id, old_record_id, record, old_record)
  VALUES (TG_OP, TG_TABLE_NAME,
          CASE WHEN TG_OP <> 'DELETE' THEN NEW.id::text END,
          CASE WHEN TG_OP <> 'INSERT' THEN OLD.id::text END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
          CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
  RETURN NULL;
END $$;

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON plainshop.products FOR EACH ROW EXECUTE FUNCTION plainshop.audit();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON plainshop.orders FOR EACH ROW EXECUTE FUNCTION plainshop.audit();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON plainshop.order_items FOR EACH ROW EXECUTE FUNCTION plainshop.audit();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON plainshop.payments FOR EACH ROW EXECUTE FUNCTION plainshop.audit();

CREATE FUNCTION plainshop.notify_order() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('orders', json_build_object('op', TG_OP, 'id', NEW.id, 'status', NEW.status)::text);
  RETURN NULL;
END $$;
CREATE TRIGGER notify AFTER INSERT OR UPDATE ON plainshop.orders FOR EACH ROW EXECUTE FUNCTION plainshop.notify_order();

CREATE FUNCTION plainshop.process_order(order_data jsonb, payment_info jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_customer uuid;
  v_item jsonb;
  v_i int := 0;
  v_q numeric;
  v_line record;
  v_pid bigint;
  v_price numeric(12,2);
  v_stock int;
  v_pids bigint[] := '{}';
  v_qs int[] := '{}';
  v_prices numeric[] := '{}';
  v_total numeric(12,2);
  v_order plainshop.orders;
  v_n int;
BEGIN
  IF order_data IS NULL OR jsonb_typeof(order_data) <> 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'order_data must be a JSON object', DETAIL = 'order_data was ' || coalesce(jsonb_typeof(order_data), 'null') || '.';
  END IF;
  IF jsonb_typeof(order_data->'customer_id') IS DISTINCT FROM 'string'
     OR order_data->>'customer_id' !~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid customer_id', DETAIL = 'customer_id must be a uuid string.';
  END IF;
  v_customer := (order_data->>'customer_id')::uuid;
  PERFORM 1 FROM plainshop.customers WHERE id = v_customer;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'PT404', MESSAGE = 'unknown customer', DETAIL = 'customer_id ' || v_customer || ' does not exist.';
  END IF;
  IF jsonb_typeof(order_data->'items') IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'items must be an array', DETAIL = 'items was missing or not an array.';
  END IF;
  v_n := jsonb_array_length(order_data->'items');
  IF v_n = 0 OR v_n > 100 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'bad number of items', DETAIL = 'items had ' || v_n || ' elements; 1 to 100 are allowed.';
  END IF;
  FOR v_item IN SELECT value FROM jsonb_array_elements(order_data->'items') LOOP
    IF jsonb_typeof(v_item->'sku') IS DISTINCT FROM 'string' THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid sku', DETAIL = format('items[%s].sku was missing or not a string.', v_i);
    END IF;
    IF jsonb_typeof(v_item->'quantity') IS DISTINCT FROM 'number' THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid quantity', DETAIL = format('items[%s].quantity was missing or not a number.', v_i);
    END IF;
    v_q := (v_item->>'quantity')::numeric;
    IF v_q <> trunc(v_q) OR v_q < 1 OR v_q > 100000 THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid quantity', DETAIL = format('items[%s].quantity was %s; it must be between 1 and 100000.', v_i, v_q);
    END IF;
    v_i := v_i + 1;
  END LOOP;

  -- Duplicate SKUs merged; stock taken SKU by SKU in sku order (one global
  -- lock order, so no deadlock): UPDATE ... WHERE stock >= qty locks the row,
  -- and when it matches nothing a second look says unknown or short.
  v_total := 0;
  FOR v_line IN SELECT value->>'sku' AS sku, sum((value->>'quantity')::int) AS q
                  FROM jsonb_array_elements(order_data->'items') GROUP BY 1 ORDER BY 1 LOOP
    UPDATE plainshop.products SET stock = stock - v_line.q, updated_at = now()
     WHERE sku = v_line.sku AND stock >= v_line.q
    RETURNING id, price INTO v_pid, v_price;
    IF NOT FOUND THEN
      SELECT stock INTO v_stock FROM plainshop.products WHERE sku = v_line.sku;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PT404', MESSAGE = 'unknown sku', DETAIL = format('sku "%s" does not exist.', v_line.sku);
      END IF;
      RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'insufficient stock',
        DETAIL = format('sku "%s": %s available, %s ordered.', v_line.sku, v_stock, v_line.q);
    END IF;
    v_pids := v_pids || v_pid;
    v_qs := v_qs || v_line.q::int;
    v_prices := v_prices || v_price;
    v_total := v_total + v_price * v_line.q;
  END LOOP;
  IF payment_info IS NOT NULL AND (payment_info->>'amount') IS NOT NULL AND (payment_info->>'amount')::numeric <> v_total THEN
    RAISE EXCEPTION USING ERRCODE = 'PT422', MESSAGE = 'payment amount differs from the order total';
  END IF;

  INSERT INTO plainshop.orders (customer_id, total) VALUES (v_customer, v_total) RETURNING * INTO v_order;
  INSERT INTO plainshop.order_items (order_id, product_id, quantity, unit_price)
    SELECT v_order.id, u.pid, u.q, u.price FROM unnest(v_pids, v_qs, v_prices) AS u(pid, q, price);
  IF payment_info IS NOT NULL THEN
    INSERT INTO plainshop.payments (order_id, method, amount, status)
    VALUES (v_order.id, coalesce(payment_info->>'method', 'promptpay'), v_total, 'pending');
  END IF;
  RETURN jsonb_build_object('order_id', v_order.id, 'status', v_order.status, 'total', v_order.total,
                            'currency', 'THB', 'replayed', false);
END $$;

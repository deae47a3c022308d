-- elfsofa install script, part 10: stock and customer functions (src/inventory/, src/customers/).

CREATE FUNCTION @extschema@.restock(sku text, quantity integer, location text DEFAULT 'main', note text DEFAULT NULL)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_restock';
COMMENT ON FUNCTION @extschema@.restock(text, integer, text, text) IS
  'Adds quantity (1..100000) units of sku at location; writes one stock_ledger row; returns the new on-hand count. 22023 on bad input, PT404 on unknown sku.';

CREATE FUNCTION @extschema@.available(sku text, location text DEFAULT NULL)
RETURNS integer
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'elfsofa_available';
COMMENT ON FUNCTION @extschema@.available(text, text) IS
  'Units of sku that can be sold: on hand minus reserved, at one location or summed over all when location is NULL. PT404 on unknown sku.';

CREATE FUNCTION @extschema@.set_stock_buckets(sku text, buckets integer)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_set_stock_buckets';
COMMENT ON FUNCTION @extschema@.set_stock_buckets(text, integer) IS
  'Marks sku hot (buckets 2..64) or not (1): splits its stock at every location into that many bucket rows, the free units spread evenly, so concurrent orders of it lock different rows. Briefly locks stock_levels against all writers. Returns buckets. 22023 on bad input, PT404 on unknown sku.';

CREATE FUNCTION @extschema@.adjust_stock(sku text, delta integer, location text DEFAULT 'main', note text DEFAULT NULL)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_adjust_stock';
COMMENT ON FUNCTION @extschema@.adjust_stock(text, integer, text, text) IS
  'Corrects the on-hand count of sku at location by delta (-100000..100000, not 0), e.g. after a stock count; writes one stock_ledger row (reason adjust) and an inventory.updated event; returns the new on-hand count. 22023 on bad input, PT404 on unknown sku or a location without stock of it, PT409 when fewer units than reserved would remain.';

CREATE FUNCTION @extschema@.upsert_customer(email text, full_name text DEFAULT NULL, phone text DEFAULT NULL, auth_user_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_upsert_customer';
COMMENT ON FUNCTION @extschema@.upsert_customer(text, text, text, uuid) IS
  'Creates the customer with this e-mail (case-insensitive) or fills in the given fields; returns the customer id. 22023 on bad input, PT409 when auth_user_id is linked to another customer.';

/*
 * order_parse.c — process_order's first step: order_data and inventory_updates
 * checked and read into an Order, with no database access, so that every
 * malformed request fails (22023, DETAIL naming the path) before any lock.
 */
#include "orders/orders.h"

#include "utils/builtins.h"
#include "utils/numeric.h"

static int
find_item(Order *o, const char *sku)
{
	for (int i = 0; i < o->nitems; i++)
		if (strcmp(o->items[i].sku, sku) == 0)
			return i;
	return -1;
}

/* Validates order_data and inventory_updates into o; no database access. */
void
es_order_parse(Jsonb *order_data, Jsonb *inv, Order *o)
{
	JsonbContainer *root = es_jsonb_root_object(order_data, "order_data");
	JsonbValue *v;
	JsonbContainer *arr;
	int			n;

	v = es_jget(root, "customer_id");
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type != jbvString)
			es_bad_input("customer_id", "field has the wrong type",
						 psprintf("was %s; it must be a uuid string", es_jtype(v)));
		o->customer_text = pnstrdup(v->val.string.val, v->val.string.len);
	}
	o->idem_key = es_jtext(root, "idempotency_key", "idempotency_key", 255, false);
	o->note = es_jtext(root, "note", "note", 2000, false);
	v = es_jget(root, "shipping_address");
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
			es_bad_input("shipping_address", "field has the wrong type",
						 psprintf("was %s; it must be an object", es_jtype(v)));
		o->shipping = JsonbValueToJsonb(v);
		if (VARSIZE(o->shipping) > 8192)
			es_bad_input("shipping_address", "field is too long", "is larger than 8 kB");
	}

	v = es_jget(root, "items");
	if (v == NULL || v->type == jbvNull)
		es_bad_input("items", "required field is missing", v ? "was null" : "was missing");
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		es_bad_input("items", "field has the wrong type", psprintf("was %s; it must be an array", es_jtype(v)));
	arr = v->val.binary.data;
	n = JsonContainerSize(arr);
	if (n == 0)
		es_bad_input("items", "order has no items", "was an empty array");
	if (n > ES_MAX_ORDER_ITEMS)
		es_bad_input("items", "too many order lines",
					 psprintf("had %d elements; at most %d are allowed", n, ES_MAX_ORDER_ITEMS));

	o->items = palloc0(sizeof(OrderItem) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(arr, i);
		char	   *path = psprintf("items[%d]", i);
		char	   *sku;
		int32		qty;
		int			k;

		if (e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
			es_bad_input(path, "order item must be an object", psprintf("was %s", es_jtype(e)));
		sku = es_jtext(e->val.binary.data, "sku", psprintf("%s.sku", path), 64, true);
		qty = es_jsonb_quantity(e->val.binary.data, "quantity", psprintf("%s.quantity", path));
		k = find_item(o, sku);
		if (k < 0)
		{
			k = o->nitems++;
			o->items[k].sku = sku;
			o->items[k].index = i;
		}
		else if (o->items[k].qty + qty > ES_MAX_QUANTITY)
			es_bad_input(psprintf("%s.quantity", path), "invalid quantity",
						 psprintf("brings sku \"%s\" to %d units; at most %d are allowed per order",
								  sku, o->items[k].qty + qty, ES_MAX_QUANTITY));
		o->items[k].qty += qty;
	}

	/* at most one line per (item, location); never more lines than items + updates */
	o->maxallocs = o->nitems + ES_MAX_ORDER_ITEMS;
	o->allocs = palloc0(sizeof(Alloc) * o->maxallocs);
	if (!es_jsonb_is_null(inv))
	{
		if (!JB_ROOT_IS_ARRAY(inv) || JB_ROOT_IS_SCALAR(inv))
			es_bad_input("inventory_updates", "inventory_updates must be a JSON array", "was not an array");
		n = JsonContainerSize(&inv->root);
		if (n > ES_MAX_ORDER_ITEMS)
			es_bad_input("inventory_updates", "too many inventory updates",
						 psprintf("had %d elements; at most %d are allowed", n, ES_MAX_ORDER_ITEMS));
		for (int i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(&inv->root, i);
			char	   *path = psprintf("inventory_updates[%d]", i);
			char	   *sku;
			char	   *loc;
			int32		qty;
			int			k;
			int			a;

			if (e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
				es_bad_input(path, "inventory update must be an object", psprintf("was %s", es_jtype(e)));
			sku = es_jtext(e->val.binary.data, "sku", psprintf("%s.sku", path), 64, true);
			loc = es_jtext(e->val.binary.data, "location", psprintf("%s.location", path), 32, true);
			es_check_location(loc, psprintf("%s.location", path));
			qty = es_jsonb_quantity(e->val.binary.data, "quantity", psprintf("%s.quantity", path));
			k = find_item(o, sku);
			if (k < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("inventory update for a sku that is not ordered"),
						 errdetail("%s.sku was \"%s\", which is not among the items.", path, sku),
						 errhint("inventory_updates only says where the ordered units come from.")));
			for (a = 0; a < o->nallocs; a++)
				if (o->allocs[a].item == k && strcmp(o->allocs[a].location, loc) == 0)
					break;
			if (a == o->nallocs)
			{
				o->nallocs++;
				o->allocs[a].item = k;
				o->allocs[a].location = loc;
			}
			o->allocs[a].qty += qty;
			o->items[k].allocated += qty;
			if (o->items[k].allocated > o->items[k].qty)
				break;			/* reported below */
		}
		for (int k = 0; k < o->nitems; k++)
			if (o->items[k].allocated != 0 && o->items[k].allocated != o->items[k].qty)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("inventory updates do not match the items"),
						 errdetail("inventory_updates place %s%d units of sku \"%s\" but items order %d.",
								   o->items[k].allocated > o->items[k].qty ? "at least " : "",
								   o->items[k].allocated, o->items[k].sku, o->items[k].qty),
						 errhint("Per sku, the inventory_updates quantities must add up to the ordered quantity.")));
	}
	/* SKUs no update mentions come from main first, then the other locations */
	for (int k = 0; k < o->nitems; k++)
		if (o->items[k].allocated == 0)
		{
			o->allocs[o->nallocs].item = k;
			o->allocs[o->nallocs].location = "main";
			o->allocs[o->nallocs].qty = o->items[k].qty;
			o->allocs[o->nallocs].automatic = true;
			o->nallocs++;
		}
}

/*
 * jsonb_text.c — jsonb as text, the same text as jsonb_out writes, straight
 * from the binary containers; and JSON string quoting (event payloads).
 */
#include "base/jsonb.h"

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "access/relation.h"
#include "utils/lsyscache.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "executor/tuptable.h"
#include "parser/parse_relation.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/*
 * jsonb as text, the same text as jsonb_out (JsonbToCString) gives, written
 * straight from the binary containers: no iterator, and strings copied in
 * runs between the characters that need escaping.  Every event's payload is
 * made with it.
 */
static void es_jb_text_container(StringInfo out, JsonbContainer *c);

/*
 * appendBinaryStringInfo and appendStringInfoChar, inlined: the text writer
 * makes a hundred small appends per event.
 */
static inline void
es_put(StringInfo out, const char *s, int n)
{
	if (out->len + n >= out->maxlen)
		enlargeStringInfo(out, n);
	memcpy(out->data + out->len, s, n);
	out->len += n;
	out->data[out->len] = '\0';
}

static inline void
es_putc(StringInfo out, char c)
{
	if (out->len + 1 >= out->maxlen)
		enlargeStringInfo(out, 1);
	out->data[out->len++] = c;
	out->data[out->len] = '\0';
}

/*
 * How jsonb_out writes the bytes a JSON string cannot hold as they are
 * (control characters, '"' and '\\'); NULL for every other byte.
 */
static const char *const es_json_escape[256] = {
	[0x00] = "\\u0000", [0x01] = "\\u0001", [0x02] = "\\u0002", [0x03] = "\\u0003",
	[0x04] = "\\u0004", [0x05] = "\\u0005", [0x06] = "\\u0006", [0x07] = "\\u0007",
	[0x08] = "\\b", [0x09] = "\\t", [0x0a] = "\\n", [0x0b] = "\\u000b",
	[0x0c] = "\\f", [0x0d] = "\\r", [0x0e] = "\\u000e", [0x0f] = "\\u000f",
	[0x10] = "\\u0010", [0x11] = "\\u0011", [0x12] = "\\u0012", [0x13] = "\\u0013",
	[0x14] = "\\u0014", [0x15] = "\\u0015", [0x16] = "\\u0016", [0x17] = "\\u0017",
	[0x18] = "\\u0018", [0x19] = "\\u0019", [0x1a] = "\\u001a", [0x1b] = "\\u001b",
	[0x1c] = "\\u001c", [0x1d] = "\\u001d", [0x1e] = "\\u001e", [0x1f] = "\\u001f",
	['"'] = "\\\"", ['\\'] = "\\\\"
};

void
es_json_string(StringInfo out, const char *s, int len)
{
	const char *run = s;
	const char *end = s + len;

	/* room for the quotes and the string as it is: escapes are rare */
	enlargeStringInfo(out, len + 2);
	es_putc(out, '"');
	for (const char *p = s; p < end; p++)
	{
		const char *esc = es_json_escape[(unsigned char) *p];

		if (likely(esc == NULL))
			continue;
		es_put(out, run, p - run);
		es_put(out, esc, strlen(esc));
		run = p + 1;
	}
	es_put(out, run, end - run);
	es_putc(out, '"');
}

/*
 * Where a child's data ends, given where it starts: its JEntry holds either
 * the end offset or the length (as getJsonbOffset/getJsonbLength read them,
 * here without walking back for every child).
 */
static inline uint32
es_jb_end(JEntry e, uint32 start)
{
	return JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : start + JBE_OFFLENFLD(e);
}

/* A value whose data is base[off, off + len) and whose JEntry is e. */
static void
es_jb_text_child(StringInfo out, JEntry e, char *base, uint32 off, uint32 len)
{
	if (JBE_ISNULL(e))
		es_put(out, "null", 4);
	else if (JBE_ISBOOL_TRUE(e))
		es_put(out, "true", 4);
	else if (JBE_ISBOOL_FALSE(e))
		es_put(out, "false", 5);
	else if (JBE_ISSTRING(e))
		es_json_string(out, base + off, len);
	else if (JBE_ISNUMERIC(e))
		appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																		PointerGetDatum(base + INTALIGN(off)))));
	else
		es_jb_text_container(out, (JsonbContainer *) (base + INTALIGN(off)));
}

static void
es_jb_text_container(StringInfo out, JsonbContainer *c)
{
	uint32		n = JsonContainerSize(c);

	check_stack_depth();
	if (JsonContainerIsObject(c))
	{
		/* keys are children 0..n-1, their values n..2n-1; the data follows in that order */
		char	   *base = (char *) &c->children[n * 2];
		uint32		kstart = 0;
		uint32		vstart = n > 0 ? getJsonbOffset(c, n) : 0;

		es_putc(out, '{');
		for (uint32 i = 0; i < n; i++)
		{
			uint32		kend = es_jb_end(c->children[i], kstart);
			uint32		vend = es_jb_end(c->children[n + i], vstart);

			if (i > 0)
				es_put(out, ", ", 2);
			es_json_string(out, base + kstart, kend - kstart);
			es_put(out, ": ", 2);
			es_jb_text_child(out, c->children[n + i], base, vstart, vend - vstart);
			kstart = kend;
			vstart = vend;
		}
		es_putc(out, '}');
	}
	else
	{
		char	   *base = (char *) &c->children[n];
		uint32		start = 0;

		es_putc(out, '[');
		for (uint32 i = 0; i < n; i++)
		{
			uint32		end = es_jb_end(c->children[i], start);

			if (i > 0)
				es_put(out, ", ", 2);
			es_jb_text_child(out, c->children[i], base, start, end - start);
			start = end;
		}
		es_putc(out, ']');
	}
}

char *
es_jsonb_text(Jsonb *jb)
{
	StringInfoData out;

	if (JB_ROOT_IS_SCALAR(jb))
		return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	initStringInfo(&out);
	es_jb_text_container(&out, &jb->root);
	return out.data;
}

/* es_json_quote appends s as a quoted JSON string, or null when s is NULL. */
void
es_json_quote(StringInfo out, const char *s)
{
	if (s == NULL)
		appendStringInfoString(out, "null");
	else
		es_json_string(out, s, strlen(s));
}

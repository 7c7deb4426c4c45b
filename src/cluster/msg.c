/* msg.c - the internode message codec (msg.h).
 *
 * One rule serves both directions: msg_fields_valid() is what decode
 * accepts and what encode asserts, so every decoded message re-encodes to
 * the same bytes and no encoder bug reaches the wire. Decode reads through
 * a bounded cursor: every length is compared with its limit and with the
 * bytes left before the bytes are looked at.
 */
#include "cluster/msg.h"

#include <errno.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/hash.h"
#include "base/le.h"
#include "cluster/ring.h"

#define CTX_ENTRY_BYTES 16u

/* The largest body of each type fits MSG_BYTES_MAX. */
#define REPL_PUT_BODY_MAX (2u + DV_KEY_BYTES_MAX + 2u + DVV_META_BYTES_MAX + 4u + DV_VALUE_BYTES_MAX)
#define GET_REPLY_BODY_MAX (1u + 2u + DVV_META_BYTES_MAX + 4u + DV_VALUE_BYTES_MAX)
#define FWD_PUT_BODY_MAX \
	(2u + DV_KEY_BYTES_MAX + 1u + 1u + 4u + 8u + 8u + 2u + DVV_ENTRIES_MAX * CTX_ENTRY_BYTES + 4u + DV_VALUE_BYTES_MAX)
#define SCAN_REPLY_BODY_MAX (1u + 1u + 8u + 2u + MSG_SCAN_KEYS_MAX * (2u + MSG_SCAN_KEY_MAX))
_Static_assert(MSG_HDR_BYTES + REPL_PUT_BODY_MAX <= MSG_BYTES_MAX, "REPL_PUT fits");
_Static_assert(MSG_HDR_BYTES + GET_REPLY_BODY_MAX <= MSG_BYTES_MAX, "REPL_GET_REPLY fits");
_Static_assert(MSG_HDR_BYTES + FWD_PUT_BODY_MAX <= MSG_BYTES_MAX, "FWD_PUT fits");
_Static_assert(MSG_HDR_BYTES + SCAN_REPLY_BODY_MAX <= MSG_BYTES_MAX, "SCAN_REPLY fits");
_Static_assert(MSG_SCAN_KEY_MAX + 1u == DV_KEY_BYTES_MAX, "a scanned user key plus its keyspace byte");
_Static_assert(DVV_META_BYTES_MAX <= UINT16_MAX && DV_KEY_BYTES_MAX <= UINT16_MAX, "u16 lengths");
_Static_assert(DVV_META_BYTES_MAX <= DV_META_BYTES_MAX, "a dvv record's meta fits an engine record");
_Static_assert(MSG_BYTES_MAX < UINT32_MAX / 2, "frame lengths fit u32 with room");
_Static_assert(MSG_CTX_BYTES_MAX == DVV_ENTRIES_MAX * CTX_ENTRY_BYTES, "context wire size");

static uint16_t flags_allowed(uint8_t type)
{
	switch (type) {
	case MSG_REPL_PUT:
		return MSGF_REPAIR | MSGF_IF_COVERED;
	case MSG_REPL_PUT_ACK:
		return MSGF_REPAIR;
	case MSG_REPL_GET:
	case MSG_REPL_GET_REPLY:
		return MSGF_CLOCK_ONLY;
	default:
		return 0;
	}
}

static bool ctx_sorted(const uint8_t *ctx, uint16_t n)
{
	for (uint16_t i = 1; i < n; i++)
		if (le_get64(ctx + (size_t)i * CTX_ENTRY_BYTES) <= le_get64(ctx + (size_t)(i - 1) * CTX_ENTRY_BYTES))
			return false;
	return true;
}

static bool key_valid(const struct msg *m) { return m->key_len >= 1 && m->key_len <= DV_KEY_BYTES_MAX; }

/* SCAN_REPLY: keys_len bytes hold exactly nkeys records u16 len | key, each
 * at most MSG_SCAN_KEY_MAX bytes. */
static bool scan_keys_valid(const struct msg *m)
{
	uint32_t off = 0;
	for (uint16_t i = 0; i < m->nkeys; i++) {
		if (m->keys_len - off < 2u)
			return false;
		uint16_t len = le_get16(m->keys + off);
		if (len > MSG_SCAN_KEY_MAX || m->keys_len - off - 2u < len)
			return false;
		off += 2u + len;
	}
	return off == m->keys_len;
}

/* A version: meta 1..DVV_META_BYTES_MAX, values up to the value limit. */
static bool version_valid(const struct msg *m)
{
	return m->meta_len >= 1 && m->meta_len <= DVV_META_BYTES_MAX && m->vals_len <= DV_VALUE_BYTES_MAX;
}

static bool body_valid(const struct msg *m)
{
	switch (m->type) {
	case MSG_REPL_PUT:
		return key_valid(m) && version_valid(m);
	case MSG_REPL_GET:
		return key_valid(m);
	case MSG_REPL_GET_REPLY:
		if (m->status != MSG_ST_OK)
			return m->status <= MSG_ST_MAX && m->meta_len == 0 && m->vals_len == 0;
		return version_valid(m);
	case MSG_REPL_PUT_ACK:
	case MSG_FWD_PUT_REPLY:
		return m->status <= MSG_ST_MAX;
	case MSG_FWD_PUT:
		if (!key_valid(m) || m->w > RING_N_MAX)
			return false;
		if (m->val_flags != 0 && m->val_flags != DVV_VAL_TOMB && m->val_flags != DVV_VAL_COUNTER)
			return false;
		if (m->vals_len > DV_VALUE_BYTES_MAX || ((m->val_flags & DVV_VAL_TOMB) && m->vals_len != 0))
			return false;
		if (m->delta != 0 && m->val_flags != DVV_VAL_COUNTER)
			return false;
		return m->ctx_n <= DVV_ENTRIES_MAX && ctx_sorted(m->ctx, m->ctx_n);
	case MSG_PING:
	case MSG_PONG:
	case MSG_FLUSH_STATE_GET:
		return true;
	case MSG_FLUSH:
		return m->ks_mask != 0 && m->id != 0;
	case MSG_FLUSH_ACK:
	case MSG_COUNT_REPLY:
		return m->status <= MSG_ST_MAX;
	case MSG_FLUSH_STATE:
		return m->nids <= MSG_FLUSH_KS_MAX;
	case MSG_SCAN:
		return m->keyspace < MSG_FLUSH_KS_MAX && m->limit >= 1 && m->limit <= MSG_SCAN_KEYS_MAX &&
		       m->pos <= m->end;
	case MSG_SCAN_REPLY:
		if (m->status > MSG_ST_MAX || m->done > 1 || m->nkeys > MSG_SCAN_KEYS_MAX)
			return false;
		if (m->status != MSG_ST_OK && (m->nkeys != 0 || m->done != 0 || m->next != 0))
			return false;
		return scan_keys_valid(m);
	case MSG_COUNT:
		return m->keyspace < MSG_FLUSH_KS_MAX;
	default:
		return false;
	}
}

static bool msg_fields_valid(const struct msg *m)
{
	if (m->type < MSG_REPL_PUT || m->type > MSG_TYPE_MAX)
		return false;
	if ((m->flags & ~flags_allowed(m->type)) != 0 || m->from == 0 || m->to == 0)
		return false;
	return body_valid(m);
}

static size_t body_bytes(const struct msg *m)
{
	switch (m->type) {
	case MSG_REPL_PUT:
		return 2u + m->key_len + 2u + m->meta_len + 4u + m->vals_len;
	case MSG_REPL_GET:
		return 2u + m->key_len;
	case MSG_REPL_GET_REPLY:
		return 1u + 2u + m->meta_len + 4u + m->vals_len;
	case MSG_REPL_PUT_ACK:
	case MSG_FWD_PUT_REPLY:
		return 1u;
	case MSG_FWD_PUT:
		return 2u + m->key_len + 1u + 1u + 4u + 8u + 8u + 2u + (size_t)m->ctx_n * CTX_ENTRY_BYTES + 4u +
		       m->vals_len;
	case MSG_PING:
	case MSG_PONG:
		return 8u;
	case MSG_FLUSH:
		return 2u + 8u + 8u;
	case MSG_FLUSH_ACK:
	case MSG_COUNT_REPLY:
		return 1u + 8u;
	case MSG_FLUSH_STATE_GET:
		return 0;
	case MSG_FLUSH_STATE:
		return 1u + 16u * (size_t)m->nids;
	case MSG_SCAN:
		return 1u + 2u + 8u + 8u;
	case MSG_SCAN_REPLY:
		return 1u + 1u + 8u + 2u + (size_t)m->keys_len;
	case MSG_COUNT:
		return 1u;
	default:
		DV_ASSERT(!"unknown message type");
		return 0;
	}
}

size_t msg_encoded_bytes(const struct msg *m)
{
	DV_ASSERT(msg_fields_valid(m));
	size_t n = MSG_HDR_BYTES + body_bytes(m);
	DV_ASSERT(n <= MSG_BYTES_MAX);
	return n;
}

/* Writer: the caller sized the buffer with msg_encoded_bytes. */
struct wr {
	uint8_t *p;
};
static void w8(struct wr *w, uint8_t v) { *w->p++ = v; }
static void w16(struct wr *w, uint16_t v) { le_put16(w->p, v); w->p += 2; }
static void w32(struct wr *w, uint32_t v) { le_put32(w->p, v); w->p += 4; }
static void w64(struct wr *w, uint64_t v) { le_put64(w->p, v); w->p += 8; }
static void wbytes(struct wr *w, const uint8_t *src, size_t n)
{
	if (n)
		memcpy(w->p, src, n);
	w->p += n;
}

static void encode_body(const struct msg *m, struct wr *w)
{
	switch (m->type) {
	case MSG_REPL_PUT:
		w16(w, m->key_len), wbytes(w, m->key, m->key_len);
		w16(w, (uint16_t)m->meta_len), wbytes(w, m->meta, m->meta_len);
		w32(w, m->vals_len), wbytes(w, m->vals, m->vals_len);
		break;
	case MSG_REPL_GET:
		w16(w, m->key_len), wbytes(w, m->key, m->key_len);
		break;
	case MSG_REPL_GET_REPLY:
		w8(w, m->status);
		w16(w, (uint16_t)m->meta_len), wbytes(w, m->meta, m->meta_len);
		w32(w, m->vals_len), wbytes(w, m->vals, m->vals_len);
		break;
	case MSG_REPL_PUT_ACK:
	case MSG_FWD_PUT_REPLY:
		w8(w, m->status);
		break;
	case MSG_FWD_PUT:
		w16(w, m->key_len), wbytes(w, m->key, m->key_len);
		w8(w, m->w), w8(w, m->val_flags), w32(w, m->timeout_ms), w64(w, m->expire_ms), w64(w, m->delta);
		w16(w, m->ctx_n), wbytes(w, m->ctx, (size_t)m->ctx_n * CTX_ENTRY_BYTES);
		w32(w, m->vals_len), wbytes(w, m->vals, m->vals_len);
		break;
	case MSG_PING:
	case MSG_PONG:
		w64(w, m->nonce);
		break;
	case MSG_FLUSH:
		w16(w, m->ks_mask), w64(w, m->id), w64(w, m->until);
		break;
	case MSG_FLUSH_ACK:
		w8(w, m->status), w64(w, m->id);
		break;
	case MSG_FLUSH_STATE_GET:
		break;
	case MSG_FLUSH_STATE:
		w8(w, m->nids);
		for (unsigned i = 0; i < m->nids; i++)
			w64(w, m->ids[i]), w64(w, m->untils[i]);
		break;
	case MSG_SCAN:
		w8(w, m->keyspace), w16(w, m->limit), w64(w, m->pos), w64(w, m->end);
		break;
	case MSG_SCAN_REPLY:
		w8(w, m->status), w8(w, m->done), w64(w, m->next), w16(w, m->nkeys);
		wbytes(w, m->keys, m->keys_len);
		break;
	case MSG_COUNT:
		w8(w, m->keyspace);
		break;
	case MSG_COUNT_REPLY:
		w8(w, m->status), w64(w, m->count);
		break;
	default:
		DV_ASSERT(!"unknown message type");
	}
}

size_t msg_encode(const struct msg *m, uint8_t *out)
{
	size_t len = msg_encoded_bytes(m);
	struct wr w = { .p = out + 8 };
	w8(&w, MSG_VERSION);
	w8(&w, m->type);
	w16(&w, m->flags);
	w16(&w, m->from);
	w16(&w, m->to);
	w64(&w, m->req_id);
	w64(&w, m->hlc);
	w32(&w, (uint32_t)(len - MSG_HDR_BYTES));
	w32(&w, m->epoch);
	DV_ASSERT(w.p == out + MSG_HDR_BYTES);
	encode_body(m, &w);
	DV_ASSERT((size_t)(w.p - out) == len);
	le_put64(out, dv_checksum64(out + 8, len - 8));
	return len;
}

/* Reader: a failed take leaves bad set and every later read returns 0. */
struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}
static uint8_t r8(struct rd *r) { const uint8_t *p = take(r, 1); return p ? p[0] : 0; }
static uint16_t r16(struct rd *r) { const uint8_t *p = take(r, 2); return p ? le_get16(p) : 0; }
static uint32_t r32(struct rd *r) { const uint8_t *p = take(r, 4); return p ? le_get32(p) : 0; }
static uint64_t r64(struct rd *r) { const uint8_t *p = take(r, 8); return p ? le_get64(p) : 0; }

/* A length field, refused over max before the bytes are taken. */
static const uint8_t *take_len(struct rd *r, size_t n, size_t max)
{
	if (n > max)
		r->bad = true;
	return take(r, n);
}

static void decode_version(struct rd *r, struct msg *m)
{
	m->meta_len = r16(r);
	m->meta = take_len(r, m->meta_len, DVV_META_BYTES_MAX);
	m->vals_len = r32(r);
	m->vals = take_len(r, m->vals_len, DV_VALUE_BYTES_MAX);
}

static void decode_key(struct rd *r, struct msg *m)
{
	m->key_len = r16(r);
	m->key = take_len(r, m->key_len, DV_KEY_BYTES_MAX);
}

static void decode_body(struct rd *r, struct msg *m)
{
	switch (m->type) {
	case MSG_REPL_PUT:
		decode_key(r, m);
		decode_version(r, m);
		break;
	case MSG_REPL_GET:
		decode_key(r, m);
		break;
	case MSG_REPL_GET_REPLY:
		m->status = r8(r);
		decode_version(r, m);
		break;
	case MSG_REPL_PUT_ACK:
	case MSG_FWD_PUT_REPLY:
		m->status = r8(r);
		break;
	case MSG_FWD_PUT:
		decode_key(r, m);
		m->w = r8(r);
		m->val_flags = r8(r);
		m->timeout_ms = r32(r);
		m->expire_ms = r64(r);
		m->delta = r64(r);
		m->ctx_n = r16(r);
		m->ctx = take_len(r, (size_t)m->ctx_n * CTX_ENTRY_BYTES, MSG_CTX_BYTES_MAX);
		m->vals_len = r32(r);
		m->vals = take_len(r, m->vals_len, DV_VALUE_BYTES_MAX);
		break;
	case MSG_PING:
	case MSG_PONG:
		m->nonce = r64(r);
		break;
	case MSG_FLUSH:
		m->ks_mask = r16(r);
		m->id = r64(r);
		m->until = r64(r);
		break;
	case MSG_FLUSH_ACK:
		m->status = r8(r);
		m->id = r64(r);
		break;
	case MSG_FLUSH_STATE_GET:
		break;
	case MSG_FLUSH_STATE:
		m->nids = r8(r);
		if (m->nids > MSG_FLUSH_KS_MAX)
			r->bad = true;
		for (unsigned i = 0; i < m->nids && !r->bad; i++) {
			m->ids[i] = r64(r);
			m->untils[i] = r64(r);
		}
		break;
	case MSG_SCAN:
		m->keyspace = r8(r);
		m->limit = r16(r);
		m->pos = r64(r);
		m->end = r64(r);
		break;
	case MSG_SCAN_REPLY:
		m->status = r8(r);
		m->done = r8(r);
		m->next = r64(r);
		m->nkeys = r16(r);
		m->keys_len = (uint32_t)r->left; /* the rest; scan_keys_valid checks it record by record */
		m->keys = take_len(r, m->keys_len, SCAN_REPLY_BODY_MAX);
		break;
	case MSG_COUNT:
		m->keyspace = r8(r);
		break;
	case MSG_COUNT_REPLY:
		m->status = r8(r);
		m->count = r64(r);
		break;
	default:
		r->bad = true;
		break;
	}
}

bool msg_peek_key(const uint8_t *buf, size_t len, const uint8_t **key, uint16_t *key_len)
{
	if (len < MSG_HDR_BYTES + 2 || (buf[9] != MSG_REPL_PUT && buf[9] != MSG_REPL_GET)) /* off 9: type */
		return false;
	uint16_t kl = le_get16(buf + MSG_HDR_BYTES); /* both bodies begin u16 key_len | key */
	if (kl == 0 || kl > len - MSG_HDR_BYTES - 2)
		return false;
	*key = buf + MSG_HDR_BYTES + 2;
	*key_len = kl;
	return true;
}

int msg_decode(const uint8_t *buf, size_t len, struct msg *m)
{
	memset(m, 0, sizeof(*m));
	if (len < MSG_HDR_BYTES || len > MSG_BYTES_MAX)
		return -EBADMSG;
	uint32_t body_len = le_get32(buf + 32);
	if (body_len != len - MSG_HDR_BYTES)
		return -EBADMSG;
	if (le_get64(buf) != dv_checksum64(buf + 8, len - 8))
		return -EBADMSG;
	if (buf[8] != MSG_VERSION)
		return -EBADMSG;
	m->type = buf[9];
	m->flags = le_get16(buf + 10);
	m->from = le_get16(buf + 12);
	m->to = le_get16(buf + 14);
	m->req_id = le_get64(buf + 16);
	m->hlc = le_get64(buf + 24);
	m->epoch = le_get32(buf + 36);
	struct rd r = { .p = buf + MSG_HDR_BYTES, .left = body_len };
	decode_body(&r, m);
	if (r.bad || r.left != 0 || !msg_fields_valid(m)) {
		memset(m, 0, sizeof(*m));
		return -EBADMSG;
	}
	DV_ASSERT(MSG_HDR_BYTES + body_bytes(m) == len);
	return 0;
}

void msg_ctx_get(const struct msg *m, struct dvv_vv *out)
{
	DV_ASSERT(m->type == MSG_FWD_PUT && m->ctx_n <= DVV_ENTRIES_MAX);
	out->n = m->ctx_n;
	for (uint16_t i = 0; i < m->ctx_n; i++) {
		out->e[i].actor = le_get64(m->ctx + (size_t)i * CTX_ENTRY_BYTES);
		out->e[i].counter = le_get64(m->ctx + (size_t)i * CTX_ENTRY_BYTES + 8);
	}
}

void msg_ctx_set(struct msg *m, const struct dvv_vv *vv, uint8_t buf[MSG_CTX_BYTES_MAX])
{
	DV_ASSERT(vv->n <= DVV_ENTRIES_MAX);
	for (uint16_t i = 0; i < vv->n; i++) {
		DV_ASSERT(i == 0 || vv->e[i].actor > vv->e[i - 1].actor);
		le_put64(buf + (size_t)i * CTX_ENTRY_BYTES, vv->e[i].actor);
		le_put64(buf + (size_t)i * CTX_ENTRY_BYTES + 8, vv->e[i].counter);
	}
	m->ctx = buf;
	m->ctx_n = vv->n;
}

bool msg_scan_key(const struct msg *m, uint32_t *off, const uint8_t **key, uint16_t *len)
{
	DV_ASSERT(m->type == MSG_SCAN_REPLY && *off <= m->keys_len);
	if (m->keys_len - *off < 2u)
		return false;
	*len = le_get16(m->keys + *off);
	DV_ASSERT(*len <= MSG_SCAN_KEY_MAX && m->keys_len - *off - 2u >= *len);
	*key = m->keys + *off + 2u;
	*off += 2u + *len;
	return true;
}

uint32_t msg_scan_key_put(uint8_t *buf, const uint8_t *key, uint16_t len)
{
	DV_ASSERT(len <= MSG_SCAN_KEY_MAX);
	le_put16(buf, len);
	if (len)
		memcpy(buf + 2, key, len);
	return 2u + len;
}

const char *msg_type_name(uint8_t type)
{
	static const char *const names[] = {
		[MSG_REPL_PUT] = "REPL_PUT",   [MSG_REPL_PUT_ACK] = "REPL_PUT_ACK",
		[MSG_REPL_GET] = "REPL_GET",   [MSG_REPL_GET_REPLY] = "REPL_GET_REPLY",
		[MSG_FWD_PUT] = "FWD_PUT",     [MSG_FWD_PUT_REPLY] = "FWD_PUT_REPLY",
		[MSG_PING] = "PING",           [MSG_PONG] = "PONG",
		[MSG_FLUSH] = "FLUSH",         [MSG_FLUSH_ACK] = "FLUSH_ACK",
		[MSG_FLUSH_STATE_GET] = "FLUSH_STATE_GET", [MSG_FLUSH_STATE] = "FLUSH_STATE",
		[MSG_SCAN] = "SCAN",           [MSG_SCAN_REPLY] = "SCAN_REPLY",
		[MSG_COUNT] = "COUNT",         [MSG_COUNT_REPLY] = "COUNT_REPLY",
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == MSG_TYPE_MAX + 1, "a name per type");
	if (type < MSG_REPL_PUT || type > MSG_TYPE_MAX)
		return "UNKNOWN";
	return names[type];
}

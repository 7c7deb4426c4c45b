/* resp.c - RESP request parser and reply encoders (contract in resp.h).
 *
 * The parser is a pure function of (buf, len, limits): it keeps no state
 * between calls, so a partial request is parsed again from its first byte
 * once more bytes arrive. That costs little because a multibulk parse only
 * reads the short header lines (bulk data is skipped by length, never
 * scanned) and need lets the caller wait for a large bulk without
 * reparsing. Invariants relied on below:
 * - every index compared with len is computed from lengths already checked
 *   against a uint32 limit, so size_t arithmetic on them cannot overflow;
 * - on AGAIN nothing in buf has been written (inline args are unescaped only
 *   once their whole line is buffered);
 * - inline unescaping writes at w <= r (each output byte consumes at least
 *   one input byte), so it stays inside the arg's own input bytes.
 */
#include "resp/resp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

_Static_assert(sizeof(size_t) >= sizeof(uint64_t), "request lengths are computed in size_t");
_Static_assert(RESP_HEADER_BYTES_MAX >= sizeof("*-9223372036854775808") - 1, "any int64 header fits");

#define PROTO_ERR "ERR Protocol error: "
static const char err_mbulk_len[] = PROTO_ERR "invalid multibulk length";
static const char err_bulk_len[] = PROTO_ERR "invalid bulk length";
static const char err_inline_big[] = PROTO_ERR "too big inline request";
static const char err_mbulk_long[] = PROTO_ERR "too big mbulk count string";
static const char err_bulk_long[] = PROTO_ERR "too big bulk count string";
static const char err_quotes[] = PROTO_ERR "unbalanced quotes in request";
static const char err_too_many[] = PROTO_ERR "too many arguments";
static const char err_unauth_mbulk[] = PROTO_ERR "unauthenticated multibulk length";
static const char err_unauth_bulk[] = PROTO_ERR "unauthenticated bulk length";
static const char err_bulk_big[] = PROTO_ERR "bulk string too large"; /* an inline arg */
static const char err_request_big[] = PROTO_ERR "request too large";
static const char err_bulk_crlf[] = PROTO_ERR "expected CRLF after bulk data";

/* "expected '$', got 'X'" for every byte X, in a static table so the
 * message needs no buffer. NUL, CR and LF show as a space (what Redis's
 * reply shows once its error sanitising has replaced CR and LF). */
#define EXPECT_PREFIX                                                                          \
	'E', 'R', 'R', ' ', 'P', 'r', 'o', 't', 'o', 'c', 'o', 'l', ' ', 'e', 'r', 'r', 'o', 'r', \
		':', ' ', 'e', 'x', 'p', 'e', 'c', 't', 'e', 'd', ' ', '\'', '$', '\'', ',', ' ', \
		'g', 'o', 't', ' ', '\''
#define EXPECT_SHOWN(c) ((c) == 0 || (c) == '\r' || (c) == '\n' ? ' ' : (c))
#define EXPECT1(c) { EXPECT_PREFIX, (char)EXPECT_SHOWN(c), '\'', '\0' }
#define EXPECT4(c) EXPECT1(c), EXPECT1((c) + 1), EXPECT1((c) + 2), EXPECT1((c) + 3)
#define EXPECT16(c) EXPECT4(c), EXPECT4((c) + 4), EXPECT4((c) + 8), EXPECT4((c) + 12)
#define EXPECT64(c) EXPECT16(c), EXPECT16((c) + 16), EXPECT16((c) + 32), EXPECT16((c) + 48)
static const char err_expected[256][sizeof(PROTO_ERR "expected '$', got 'X'")] = {
	EXPECT64(0), EXPECT64(64), EXPECT64(128), EXPECT64(192),
};

static int fail(struct resp_request *req, const char *msg)
{
	req->error = msg;
	req->consumed = 0;
	return RESP_ERR;
}

/* AGAIN needing need bytes, or "request too large" when need already says
 * the request is over its limit. */
static int again(struct resp_request *req, const struct resp_limits *lim, size_t len, size_t need)
{
	DV_ASSERT(need > len);
	if (need > lim->request_bytes_max)
		return fail(req, err_request_big);
	req->need = need;
	return RESP_AGAIN;
}

/* string2ll's rules on a digit run already accumulated in v (which wrapped
 * if there are more than 19 digits): no empty run, no leading zero except
 * "0" itself, no "-0", fits int64. */
static inline bool int_valid(bool neg, uint64_t v, size_t digits, char first, int64_t *out)
{
	if (digits == 0 || digits > 19 || (first == '0' && (digits > 1 || neg)))
		return false;
	if (v > (uint64_t)INT64_MAX + neg)
		return false;
	*out = neg ? -(int64_t)(v - 1) - 1 : (int64_t)v;
	return true;
}

enum hdr { HDR_OK, HDR_AGAIN, HDR_BAD, HDR_LONG };

/* The "*N\r\n" or "$L\r\n" line whose type byte is buf[pos]. OK: *val is
 * set and *next is the first byte after the CRLF. AGAIN: *next is the
 * total bytes needed. One pass over the digits, stopping at the first
 * non-digit, so garbage is refused without waiting for a CR. */
static inline enum hdr parse_header(const char *buf, size_t len, size_t pos, int64_t *val, size_t *next)
{
	size_t stop = pos + 1 + RESP_HEADER_BYTES_MAX; /* the CR is before this */
	size_t end = len < stop ? len : stop;
	size_t i = pos + 1;
	bool neg = i < end && buf[i] == '-';
	i += neg;
	size_t first = i;
	uint64_t v = 0;
	while (i < end && (unsigned char)(buf[i] - '0') < 10) {
		v = v * 10 + (uint64_t)(buf[i] - '0'); /* unsigned: wraps past 19 digits, refused below */
		i++;
	}
	if (i == stop) /* too long for a length: Redis's "invalid" when the line is all there */
		return memchr(buf + i, '\r', len - i) ? HDR_BAD : HDR_LONG;
	if (i + 1 >= len) { /* the CR or the LF is not there yet */
		if (i < len && buf[i] != '\r')
			return HDR_BAD;
		*next = len + 1;
		return HDR_AGAIN;
	}
	if (buf[i] != '\r' || buf[i + 1] != '\n')
		return HDR_BAD;
	if (!int_valid(neg, v, i - first, buf[first], val))
		return HDR_BAD;
	*next = i + 2;
	return HDR_OK;
}

static int parse_multibulk(char *buf, size_t len, const struct resp_limits *lim, struct resp_request *req)
{
	int64_t n, blen;
	size_t pos, data;
	switch (parse_header(buf, len, 0, &n, &pos)) {
	case HDR_AGAIN: return again(req, lim, len, pos);
	case HDR_LONG: return fail(req, err_mbulk_long);
	case HDR_BAD: return fail(req, err_mbulk_len);
	case HDR_OK: break;
	}
	if (n > (int64_t)lim->args_max)
		return fail(req, lim->unauthenticated && n <= RESP_PROTO_ARGS_MAX ? err_unauth_mbulk : err_mbulk_len);
	if (pos > lim->request_bytes_max)
		return fail(req, err_request_big);
	uint32_t argc = n > 0 ? (uint32_t)n : 0;
	for (uint32_t k = 0; k < argc; k++) {
		if (pos == len)
			return again(req, lim, len, len + 1);
		if (buf[pos] != '$')
			return fail(req, err_expected[(unsigned char)buf[pos]]);
		switch (parse_header(buf, len, pos, &blen, &data)) {
		case HDR_AGAIN: return again(req, lim, len, data);
		case HDR_LONG: return fail(req, err_bulk_long);
		case HDR_BAD: return fail(req, err_bulk_len);
		case HDR_OK: break;
		}
		if (blen < 0)
			return fail(req, err_bulk_len);
		if (blen > (int64_t)lim->arg_bytes_max)
			return fail(req, lim->unauthenticated && blen <= RESP_PROTO_BULK_MAX ? err_unauth_bulk : err_bulk_len);
		size_t end = data + (size_t)blen + 2; /* data <= len, blen < 2^32 */
		if (end > lim->request_bytes_max)
			return fail(req, err_request_big);
		if (end > len)
			return again(req, lim, len, end);
		if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
			return fail(req, err_bulk_crlf);
		req->argv[k] = (struct resp_arg){ buf + data, (uint32_t)blen };
		pos = end;
	}
	req->argc = argc;
	req->consumed = pos;
	return RESP_OK;
}

/* isspace() in the C locale, as sdssplitargs skips between args. */
static inline bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A "..." part: buf[*r] is the opening quote. Unescaped bytes go to *w.
 * False when unterminated or when the closing quote is followed by
 * anything but a space or the end of the line. */
static bool unquote_double(char *buf, size_t e, size_t *rp, char **wp)
{
	size_t r = *rp + 1;
	char *w = *wp;
	for (; r < e; r++) {
		char c = buf[r];
		if (c == '\\' && r + 3 < e && buf[r + 1] == 'x' && hex_val(buf[r + 2]) >= 0 && hex_val(buf[r + 3]) >= 0) {
			*w++ = (char)(hex_val(buf[r + 2]) * 16 + hex_val(buf[r + 3]));
			r += 3;
		} else if (c == '\\' && r + 1 < e) {
			r++;
			switch (buf[r]) {
			case 'n': *w++ = '\n'; break;
			case 'r': *w++ = '\r'; break;
			case 't': *w++ = '\t'; break;
			case 'b': *w++ = '\b'; break;
			case 'a': *w++ = '\a'; break;
			default: *w++ = buf[r]; break;
			}
		} else if (c == '"') {
			if (r + 1 < e && !is_space(buf[r + 1]))
				return false;
			*rp = r + 1;
			*wp = w;
			return true;
		} else {
			*w++ = c;
		}
	}
	return false;
}

/* A '...' part: only \' is an escape. */
static bool unquote_single(char *buf, size_t e, size_t *rp, char **wp)
{
	size_t r = *rp + 1;
	char *w = *wp;
	for (; r < e; r++) {
		char c = buf[r];
		if (c == '\\' && r + 1 < e && buf[r + 1] == '\'') {
			*w++ = '\'';
			r++;
		} else if (c == '\'') {
			if (r + 1 < e && !is_space(buf[r + 1]))
				return false;
			*rp = r + 1;
			*wp = w;
			return true;
		} else {
			*w++ = c;
		}
	}
	return false;
}

/* One arg from buf[*rp] (not a space) to its end, as sdssplitargs: plain
 * bytes up to a space, tab, CR or LF, or up to and including a quoted part,
 * which ends the arg ("ab"cd" is refused, ab"cd" is "abcd"). */
static bool inline_token(char *buf, size_t e, size_t *rp, char **wp)
{
	size_t r = *rp;
	char *w = *wp;
	bool ok = true;
	for (; r < e; r++) {
		char c = buf[r];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			break;
		if (c == '"' || c == '\'') {
			ok = c == '"' ? unquote_double(buf, e, &r, &w) : unquote_single(buf, e, &r, &w);
			break;
		}
		*w++ = c;
	}
	DV_ASSERT(!ok || w <= buf + r);
	*rp = r;
	*wp = w;
	return ok;
}

/* Splits the line buf[0..e) into args, unescaping in place. */
static int split_inline(char *buf, size_t e, const struct resp_limits *lim, struct resp_request *req)
{
	uint32_t argc = 0;
	size_t r = 0;
	for (;;) {
		while (r < e && is_space(buf[r]))
			r++;
		if (r == e)
			break;
		if (argc == lim->args_max)
			return fail(req, err_too_many);
		char *start = buf + r, *w = start;
		if (!inline_token(buf, e, &r, &w))
			return fail(req, err_quotes);
		size_t n = (size_t)(w - start);
		if (n > lim->arg_bytes_max)
			return fail(req, err_bulk_big);
		req->argv[argc++] = (struct resp_arg){ start, (uint32_t)n };
	}
	req->argc = argc;
	return RESP_OK;
}

static int parse_inline(char *buf, size_t len, const struct resp_limits *lim, struct resp_request *req)
{
	size_t max = lim->inline_bytes_max;
	/* The LF of a line of max bytes is at most at index max + 1 (after a CR). */
	const char *nl = memchr(buf, '\n', len < max + 2 ? len : max + 2);
	if (!nl) {
		size_t content = len - (buf[len - 1] == '\r'); /* a CR at the end may be the line end */
		if (content > max)
			return fail(req, err_inline_big);
		return again(req, lim, len, len + 1);
	}
	size_t lf = (size_t)(nl - buf);
	size_t content = lf - (lf > 0 && buf[lf - 1] == '\r');
	if (content > max)
		return fail(req, err_inline_big);
	if (lf + 1 > lim->request_bytes_max)
		return fail(req, err_request_big);
	int rc = split_inline(buf, content, lim, req);
	if (rc != RESP_OK)
		return rc;
	req->consumed = lf + 1;
	return RESP_OK;
}

int resp_parse(char *buf, size_t len, const struct resp_limits *lim, struct resp_request *req)
{
	DV_ASSERT(req->argv != NULL && req->argv_cap >= lim->args_max);
	DV_ASSERT(buf != NULL || len == 0);
	req->argc = 0;
	req->consumed = 0;
	req->need = 0;
	req->error = NULL;
	if (len == 0)
		return again(req, lim, 0, 1);
	int rc = buf[0] == '*' ? parse_multibulk(buf, len, lim, req) : parse_inline(buf, len, lim, req);
	DV_ASSERT(rc != RESP_OK || (req->consumed > 0 && req->consumed <= len && req->argc <= lim->args_max));
	DV_ASSERT(rc != RESP_AGAIN || req->need > len);
	return rc;
}

static inline char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

bool resp_arg_is(const struct resp_arg *a, const char *lit)
{
	for (uint32_t i = 0; i < a->len; i++) {
		if (lit[i] == '\0' || ascii_lower(a->ptr[i]) != ascii_lower(lit[i]))
			return false;
	}
	return lit[a->len] == '\0';
}

int resp_arg_i64(const struct resp_arg *a, int64_t *out)
{
	const char *p = a->ptr;
	size_t n = a->len;
	bool neg = n > 0 && p[0] == '-';
	size_t first = neg;
	if (n - first > 19)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = first; i < n; i++) {
		unsigned d = (unsigned char)(p[i] - '0');
		if (d > 9)
			return -EINVAL;
		v = v * 10 + d;
	}
	return int_valid(neg, v, n - first, n > first ? p[first] : 0, out) ? 0 : -EINVAL;
}

/* ---- reply encoding ---- */

void resp_buf_init(struct resp_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void resp_buf_free(struct resp_buf *b)
{
	free(b->data);
	resp_buf_init(b);
}

int resp_buf_reserve(struct resp_buf *b, size_t extra)
{
	DV_ASSERT(b->len <= b->cap);
	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	size_t want = b->len + extra;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < want) /* at most 64 doublings; cap < 2 * want cannot overflow */
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void resp_buf_consume(struct resp_buf *b, size_t n)
{
	DV_ASSERT(n <= b->len);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

int resp_add_raw(struct resp_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	int rc = resp_buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* Room for a type byte, a sign, 20 digits and CRLF. */
#define LINE_BYTES_MAX 24u

/* "<type><-?mag>\r\n" into room reserved by the caller. */
static void put_line(struct resp_buf *b, char type, bool neg, uint64_t mag)
{
	DV_ASSERT(b->cap - b->len >= LINE_BYTES_MAX);
	char *p = b->data + b->len;
	char digits[20];
	size_t n = 0;
	*p++ = type;
	if (neg)
		*p++ = '-';
	do {
		digits[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag != 0);
	while (n > 0)
		*p++ = digits[--n];
	*p++ = '\r';
	*p++ = '\n';
	b->len = (size_t)(p - b->data);
}

static int add_line(struct resp_buf *b, char type, bool neg, uint64_t mag)
{
	int rc = resp_buf_reserve(b, LINE_BYTES_MAX);
	if (rc)
		return rc;
	put_line(b, type, neg, mag);
	return 0;
}

/* "<type>text\r\n" with CR and LF in text written as spaces. */
static int add_text_line(struct resp_buf *b, char type, const char *s)
{
	size_t n = strlen(s);
	if (n > SIZE_MAX / 2)
		return -ENOMEM;
	int rc = resp_buf_reserve(b, n + 3);
	if (rc)
		return rc;
	char *p = b->data + b->len;
	*p++ = type;
	for (size_t i = 0; i < n; i++)
		p[i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
	p[n] = '\r';
	p[n + 1] = '\n';
	b->len += n + 3;
	return 0;
}

int resp_add_simple(struct resp_buf *b, const char *s)
{
	return add_text_line(b, '+', s);
}

int resp_add_error(struct resp_buf *b, const char *msg)
{
	return add_text_line(b, '-', msg);
}

int resp_add_rawf(struct resp_buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	int rc = -EINVAL;
	if (n >= 0)
		rc = resp_buf_reserve(b, (size_t)n + 1); /* vsnprintf's NUL, not counted */
	if (rc == 0) {
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
		b->len += (size_t)n;
	}
	va_end(ap2);
	return rc;
}

int resp_add_errorf(struct resp_buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	int rc = -EINVAL;
	if (n < 0)
		goto out_end;
	/* '-', the text and vsnprintf's NUL, which the CR then overwrites. */
	rc = resp_buf_reserve(b, (size_t)n + 3);
	if (rc)
		goto out_end;
	char *p = b->data + b->len;
	p[0] = '-';
	vsnprintf(p + 1, (size_t)n + 1, fmt, ap2);
	/* As Redis's addReplyErrorFormat: CRs and LFs at the end are trimmed,
	 * those inside become spaces. */
	while (n > 0 && (p[n] == '\r' || p[n] == '\n'))
		n--;
	for (int i = 1; i <= n; i++)
		if (p[i] == '\r' || p[i] == '\n')
			p[i] = ' ';
	p[n + 1] = '\r';
	p[n + 2] = '\n';
	b->len += (size_t)n + 3;
out_end:
	va_end(ap2);
	return rc;
}

int resp_add_int(struct resp_buf *b, int64_t v)
{
	/* Unsigned negation: INT64_MIN's magnitude is representable there. */
	return add_line(b, ':', v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

/* "<type>n\r\n" + prefix + p[0..n) + "\r\n", n counting the prefix too. */
static int add_blob(struct resp_buf *b, char type, const char *prefix, size_t prefix_n, const void *p, size_t n)
{
	if (n > SIZE_MAX / 2)
		return -ENOMEM;
	int rc = resp_buf_reserve(b, LINE_BYTES_MAX + prefix_n + n + 2);
	if (rc)
		return rc;
	put_line(b, type, false, (uint64_t)(prefix_n + n));
	memcpy(b->data + b->len, prefix, prefix_n);
	b->len += prefix_n;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len++] = '\r';
	b->data[b->len++] = '\n';
	return 0;
}

int resp_add_bulk(struct resp_buf *b, const void *p, size_t n)
{
	return add_blob(b, '$', "", 0, p, n);
}

int resp_add_bulk_str(struct resp_buf *b, const char *s)
{
	return add_blob(b, '$', "", 0, s, strlen(s));
}

int resp_add_null(struct resp_buf *b, int proto)
{
	DV_ASSERT(proto == 2 || proto == 3);
	return proto == 3 ? resp_add_raw(b, "_\r\n", 3) : resp_add_raw(b, "$-1\r\n", 5);
}

int resp_add_null_array(struct resp_buf *b, int proto)
{
	DV_ASSERT(proto == 2 || proto == 3);
	return proto == 3 ? resp_add_raw(b, "_\r\n", 3) : resp_add_raw(b, "*-1\r\n", 5);
}

int resp_add_array(struct resp_buf *b, size_t n)
{
	return add_line(b, '*', false, n);
}

int resp_add_map(struct resp_buf *b, size_t pairs, int proto)
{
	DV_ASSERT(proto == 2 || proto == 3);
	DV_ASSERT(pairs <= SIZE_MAX / 2); /* more pairs than memory could hold */
	return proto == 3 ? add_line(b, '%', false, pairs) : add_line(b, '*', false, (uint64_t)pairs * 2);
}

int resp_add_verbatim(struct resp_buf *b, const void *p, size_t n, int proto)
{
	DV_ASSERT(proto == 2 || proto == 3);
	return proto == 3 ? add_blob(b, '=', "txt:", 4, p, n) : add_blob(b, '$', "", 0, p, n);
}

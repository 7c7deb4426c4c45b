/* fuzz_resp.c - libFuzzer target for the RESP parser and reply encoders.
 *
 * `make fuzz` builds build-fuzz/fuzz_resp (clang, ASan+UBSan) and runs it
 * FUZZ_SECONDS on a copy of tests/resp/corpus; tests/resp/fuzz_resp.sh runs
 * it for 20 seconds in the test suite.
 *
 * The input is a pipelined stream, parsed request after request until AGAIN
 * or ERR, under three sets of limits (tiny ones so every limit path is hit)
 * from an allocation of exactly the input's size, so ASan sees any read past
 * len. Checked with DV_ASSERT (abort) for every result:
 * - OK: 0 < consumed <= len, consumed <= request_bytes_max, argc <= args_max,
 *   every arg inside the request and no longer than arg_bytes_max; a strict
 *   prefix of the request is AGAIN with need no further than its end; the
 *   same bytes parsed again give the same args; the args encoded back as a
 *   multibulk request (resp_add_array/resp_add_bulk) parse to the same args.
 * - AGAIN: len < need <= request_bytes_max.
 * - ERR: a "ERR Protocol error: " message without CR or LF, consumed <= len.
 * The reply encoders then run on the input's bytes (errors and simple
 * strings sanitised, integers and bulks read back).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "resp/resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARGV_CAP 64u
#define PROTO_ERR "ERR Protocol error: "

static const struct resp_limits limit_sets[] = {
	{ .args_max = 3, .arg_bytes_max = 8, .inline_bytes_max = 16, .request_bytes_max = 48 },
	{ .args_max = 8, .arg_bytes_max = 64, .inline_bytes_max = 128, .request_bytes_max = 512 },
	{ .args_max = ARGV_CAP, .arg_bytes_max = 1u << 20, .inline_bytes_max = 64u << 10, .request_bytes_max = 1u << 24 },
};

/* Limits under which any request the other sets accept re-parses. */
static const struct resp_limits limits_wide = {
	.args_max = ARGV_CAP, .arg_bytes_max = UINT32_MAX, .inline_bytes_max = 64u << 10, .request_bytes_max = UINT64_MAX,
};

static char *copy_of(const void *p, size_t n)
{
	char *c = malloc(n ? n : 1);
	DV_ASSERT(c != NULL);
	if (n)
		memcpy(c, p, n);
	return c;
}

static bool same_args(const struct resp_request *a, const struct resp_request *b)
{
	if (a->argc != b->argc)
		return false;
	for (uint32_t i = 0; i < a->argc; i++)
		if (a->argv[i].len != b->argv[i].len || memcmp(a->argv[i].ptr, b->argv[i].ptr, a->argv[i].len) != 0)
			return false;
	return true;
}

/* orig[0..req->consumed) is the request as received (before in-place
 * unescaping); req holds its parsed args. */
static void check_ok(const char *orig, const char *buf, size_t len, const struct resp_limits *lim,
		     const struct resp_request *req)
{
	DV_ASSERT(req->consumed > 0 && req->consumed <= len && req->consumed <= lim->request_bytes_max);
	DV_ASSERT(req->argc <= lim->args_max);
	for (uint32_t i = 0; i < req->argc; i++) {
		const struct resp_arg *a = &req->argv[i];
		DV_ASSERT(a->len <= lim->arg_bytes_max);
		DV_ASSERT(a->ptr >= buf && a->ptr + a->len <= buf + req->consumed);
	}

	struct resp_arg argv[ARGV_CAP];
	struct resp_request again = { .argv = argv, .argv_cap = ARGV_CAP };
	size_t prefixes[] = { req->consumed - 1, req->consumed / 2 };
	for (size_t i = 0; i < 2; i++) {
		char *p = copy_of(orig, prefixes[i]);
		DV_ASSERT(resp_parse(p, prefixes[i], lim, &again) == RESP_AGAIN);
		DV_ASSERT(again.need > prefixes[i] && again.need <= req->consumed);
		free(p);
	}
	char *whole = copy_of(orig, req->consumed);
	DV_ASSERT(resp_parse(whole, req->consumed, lim, &again) == RESP_OK);
	DV_ASSERT(again.consumed == req->consumed && same_args(req, &again));
	free(whole);

	struct resp_buf b;
	resp_buf_init(&b);
	DV_ASSERT(resp_add_array(&b, req->argc) == 0);
	for (uint32_t i = 0; i < req->argc; i++)
		DV_ASSERT(resp_add_bulk(&b, req->argv[i].ptr, req->argv[i].len) == 0);
	char *enc = copy_of(b.data, b.len);
	DV_ASSERT(resp_parse(enc, b.len, &limits_wide, &again) == RESP_OK);
	DV_ASSERT(again.consumed == b.len && same_args(req, &again));
	free(enc);
	resp_buf_free(&b);
}

static void fuzz_stream(const uint8_t *data, size_t size, const struct resp_limits *lim)
{
	char *buf = copy_of(data, size);
	struct resp_arg argv[ARGV_CAP];
	size_t off = 0;
	for (;;) { /* every OK consumes at least one byte */
		struct resp_request req = { .argv = argv, .argv_cap = ARGV_CAP };
		size_t len = size - off;
		int rc = resp_parse(buf + off, len, lim, &req);
		if (rc == RESP_AGAIN) {
			DV_ASSERT(req.need > len && req.need <= lim->request_bytes_max);
			break;
		}
		if (rc == RESP_ERR) {
			DV_ASSERT(req.error != NULL && strncmp(req.error, PROTO_ERR, strlen(PROTO_ERR)) == 0);
			DV_ASSERT(strpbrk(req.error, "\r\n") == NULL && req.consumed <= len);
			break;
		}
		DV_ASSERT(rc == RESP_OK);
		check_ok((const char *)data + off, buf + off, len, lim, &req);
		off += req.consumed;
	}
	free(buf);
}

/* "<type>text\r\n" with no CR or LF in text. */
static void check_text_line(const struct resp_buf *b, char type, size_t text_len)
{
	DV_ASSERT(b->len == text_len + 3 && b->data[0] == type);
	DV_ASSERT(memchr(b->data, '\r', b->len - 2) == NULL && memchr(b->data, '\n', b->len - 2) == NULL);
	DV_ASSERT(b->data[b->len - 2] == '\r' && b->data[b->len - 1] == '\n');
}

static void fuzz_encoders(const uint8_t *data, size_t size)
{
	struct resp_buf b;
	resp_buf_init(&b);
	char *s = malloc(size + 1);
	DV_ASSERT(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	size_t slen = strlen(s);

	DV_ASSERT(resp_add_error(&b, s) == 0);
	check_text_line(&b, '-', slen);
	b.len = 0;
	DV_ASSERT(resp_add_simple(&b, s) == 0);
	check_text_line(&b, '+', slen);
	b.len = 0;
	DV_ASSERT(resp_add_errorf(&b, "ERR %s", s) == 0);
	size_t trimmed = slen; /* errorf trims CRs and LFs at the end, as Redis */
	while (trimmed > 0 && (s[trimmed - 1] == '\r' || s[trimmed - 1] == '\n'))
		trimmed--;
	check_text_line(&b, '-', trimmed + 4);
	b.len = 0;

	int64_t v = 0;
	memcpy(&v, data, size < sizeof(v) ? size : sizeof(v));
	DV_ASSERT(resp_add_int(&b, v) == 0);
	struct resp_arg digits = { b.data + 1, (uint32_t)(b.len - 3) };
	int64_t back = ~v;
	DV_ASSERT(b.data[0] == ':' && resp_arg_i64(&digits, &back) == 0 && back == v);
	b.len = 0;

	/* A bulk of the whole input inside a one-arg request, read back. */
	DV_ASSERT(resp_add_array(&b, 1) == 0 && resp_add_bulk(&b, data, size) == 0);
	struct resp_arg argv[1];
	struct resp_request req = { .argv = argv, .argv_cap = 1 };
	const struct resp_limits one = { 1, UINT32_MAX, 16, UINT64_MAX, false };
	char *enc = copy_of(b.data, b.len);
	DV_ASSERT(resp_parse(enc, b.len, &one, &req) == RESP_OK && req.consumed == b.len);
	DV_ASSERT(argv[0].len == size && (size == 0 || memcmp(argv[0].ptr, data, size) == 0));
	free(enc);

	/* RESP3 verbatim and the fixed replies after it, then drop a prefix. */
	size_t before = b.len;
	int proto = size > 0 && (data[0] & 1) ? 3 : 2;
	DV_ASSERT(resp_add_verbatim(&b, data, size, 3) == 0);
	DV_ASSERT(b.data[before] == '=' && memcmp(b.data + b.len - size - 2, data, size) == 0);
	DV_ASSERT(memcmp(b.data + b.len - size - 6, "txt:", 4) == 0);
	DV_ASSERT(resp_add_map(&b, size, proto) == 0 && resp_add_null(&b, proto) == 0);
	DV_ASSERT(resp_add_null_array(&b, proto) == 0);
	size_t total = b.len;
	char last = b.data[total - 3];
	resp_buf_consume(&b, size % (total + 1));
	DV_ASSERT(b.len == total - size % (total + 1));
	DV_ASSERT(b.len < 3 || b.data[b.len - 3] == last);
	resp_buf_free(&b);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof(limit_sets) / sizeof(limit_sets[0]); i++)
		fuzz_stream(data, size, &limit_sets[i]);
	fuzz_encoders(data, size);
	return 0;
}

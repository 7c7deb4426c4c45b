/* test_resp.c - the RESP parser and reply encoders (src/resp/resp.h).
 *
 * - multibulk, inline, binary: every arg's bytes and length, consumed.
 * - pipeline: several requests of every kind in one buffer, consumed exact.
 * - prefixes: every strict prefix of valid requests (a 100 KiB bulk among
 *   them) is AGAIN with len < need <= request size; need exact inside a
 *   bulk.
 * - errors: every protocol error message, limits at the boundary (limit
 *   accepted, limit+1 refused), length overflows.
 * - inline: Redis's quoting and escapes.
 * - i64, arg_is: strict integers, case-insensitive compare.
 * - encoders: exact bytes in RESP2 and RESP3, error sanitising, growth,
 *   -ENOMEM leaves the buffer unchanged.
 * - random: seeded requests encoded (multibulk through the encoders,
 *   inline with random quoting), concatenated, parsed back whole and fed in
 *   random chunks; args, consumed and need compared with the generator's.
 * Every parse runs on a copy in an allocation of exactly the input's size,
 * so ASan builds catch any read past len. DV_SEED=<n> replays a seed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "resp/resp.h"
#include "testing.h"

static unsigned long checks; /* CHECKs executed, for the summary */
#define T(expr)                   \
	do {                      \
		checks++;         \
		CHECK(expr);      \
	} while (0)
#define T_EQ(a, b)                \
	do {                      \
		checks++;         \
		CHECK_EQ(a, b);   \
	} while (0)

#define ARGV_CAP 1024u
static struct resp_arg argv_store[ARGV_CAP];

static const struct resp_limits lim_default = {
	.args_max = ARGV_CAP,
	.arg_bytes_max = 512u << 20,
	.inline_bytes_max = 64u << 10,
	.request_bytes_max = 1ull << 32,
};

static char *pbuf; /* the copy the last parse() ran on */
static size_t pbuf_len;

static void req_init(struct resp_request *req)
{
	*req = (struct resp_request){ .argv = argv_store, .argv_cap = ARGV_CAP };
}

/* Parses a copy of in[0..n) held in an allocation of exactly n bytes. */
static int parse(const void *in, size_t n, const struct resp_limits *lim, struct resp_request *req)
{
	free(pbuf);
	pbuf = malloc(n ? n : 1);
	CHECK(pbuf != NULL);
	if (n)
		memcpy(pbuf, in, n);
	pbuf_len = n;
	req_init(req);
	return resp_parse(pbuf, n, lim, req);
}

static bool arg_eq(const struct resp_request *req, uint32_t i, const void *want, size_t n)
{
	const struct resp_arg *a = &req->argv[i];
	/* Args lie inside the parsed request. */
	T(a->ptr >= pbuf && a->ptr + a->len <= pbuf + req->consumed);
	if (a->len != n || memcmp(a->ptr, want, n) != 0) {
		fprintf(stderr, "arg %u: got %u bytes '%.*s', want %zu bytes '%.*s'\n", i, a->len, (int)a->len,
			a->ptr, n, (int)n, (const char *)want);
		return false;
	}
	return true;
}

/* in[0..n) parses OK, takes consumed bytes and gives exactly want[0..argc)
 * (NUL-terminated strings). */
static bool ok_args(const void *in, size_t n, const struct resp_limits *lim, size_t consumed,
		    const char *const *want, uint32_t argc)
{
	struct resp_request req;
	int rc = parse(in, n, lim, &req);
	if (rc != RESP_OK) {
		fprintf(stderr, "rc %d (%s), want OK\n", rc, rc == RESP_ERR ? req.error : "again");
		return false;
	}
	if (req.consumed != consumed || req.argc != argc) {
		fprintf(stderr, "consumed %zu argc %u, want %zu and %u\n", req.consumed, req.argc, consumed, argc);
		return false;
	}
	for (uint32_t i = 0; i < argc; i++)
		if (!arg_eq(&req, i, want[i], strlen(want[i])))
			return false;
	return true;
}
#define OK_ARGS(lit, consumed, ...)                                                         \
	do {                                                                                \
		const char *const want_[] = { __VA_ARGS__ };                                \
		T(ok_args(lit, sizeof(lit) - 1, &lim_default, consumed, want_, DV_ARRAY_LEN(want_))); \
	} while (0)
#define OK_EMPTY(lit, consumed) T(ok_args(lit, sizeof(lit) - 1, &lim_default, consumed, NULL, 0))

static bool err_is(const void *in, size_t n, const struct resp_limits *lim, const char *msg)
{
	struct resp_request req;
	int rc = parse(in, n, lim, &req);
	if (rc != RESP_ERR || strcmp(req.error, msg) != 0 || req.consumed > n) {
		fprintf(stderr, "rc %d error '%s', want '%s'\n", rc, rc == RESP_ERR ? req.error : "-", msg);
		return false;
	}
	return true;
}
#define ERR_IS(lit, lim, msg) T(err_is(lit, sizeof(lit) - 1, lim, msg))

static bool again_need(const void *in, size_t n, const struct resp_limits *lim, size_t need)
{
	struct resp_request req;
	int rc = parse(in, n, lim, &req);
	if (rc != RESP_AGAIN || req.need != need) {
		fprintf(stderr, "rc %d need %zu, want AGAIN and %zu\n", rc, req.need, need);
		return false;
	}
	return true;
}
#define AGAIN_NEED(lit, lim, need) T(again_need(lit, sizeof(lit) - 1, lim, need))

#define E_ "ERR Protocol error: "

static void test_multibulk(void)
{
	OK_ARGS("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", 33, "SET", "key", "value");
	OK_ARGS("*1\r\n$0\r\n\r\n", 10, "");
	OK_ARGS("*2\r\n$4\r\nPING\r\n$0\r\n\r\nxyz", 20, "PING", "");
	OK_ARGS("*1\r\n$4\r\nPING\r\n*1\r\n", 14, "PING");
	OK_EMPTY("*0\r\n", 4);
	OK_EMPTY("*-1\r\n", 5);
	OK_EMPTY("*0\r\n*1\r\n$1\r\na\r\n", 4);
	/* Binary-safe contents: NUL, CR, LF, '$' and '*' inside bulks. */
	static const char bin[] = "*2\r\n$7\r\na\0\r\n$*\r\r\n$2\r\n\r\n\r\n";
	struct resp_request req;
	T_EQ(parse(bin, sizeof(bin) - 1, &lim_default, &req), RESP_OK);
	T_EQ(req.consumed, sizeof(bin) - 1);
	T_EQ(req.argc, 2);
	T(arg_eq(&req, 0, "a\0\r\n$*\r", 7));
	T(arg_eq(&req, 1, "\r\n", 2));
	/* All 256 byte values in one bulk. */
	char all[300];
	memcpy(all, "*1\r\n$256\r\n", 10);
	for (int i = 0; i < 256; i++)
		all[10 + i] = (char)i;
	memcpy(all + 266, "\r\n", 2);
	T_EQ(parse(all, 268, &lim_default, &req), RESP_OK);
	T_EQ(req.consumed, 268);
	T(arg_eq(&req, 0, all + 10, 256));
}

static void test_inline(void)
{
	OK_ARGS("SET key value\r\n", 15, "SET", "key", "value");
	OK_ARGS("PING\n", 5, "PING");
	OK_ARGS("  GET\t k  \v\f\r\n", 14, "GET", "k");
	OK_ARGS("a\rb\r\n", 5, "a", "b"); /* a CR inside the line separates */
	OK_ARGS("GET k\nGET j\n", 6, "GET", "k");
	OK_EMPTY("\r\n", 2);
	OK_EMPTY("\n", 1);
	OK_EMPTY(" \t \r\n", 5);
	/* Quoting. */
	OK_ARGS("SET \"hello world\" 'it\\'s'\r\n", 27, "SET", "hello world", "it's");
	OK_ARGS("\"\" ''\n", 6, "", "");
	OK_ARGS("ab\"cd ef\"\n", 10, "abcd ef");
	OK_ARGS("ab'cd ef'\n", 10, "abcd ef");
	OK_ARGS("'a\"b' \"a'b\"\n", 12, "a\"b", "a'b");
	OK_ARGS("'a\\nb'\n", 7, "a\\nb"); /* no escapes but \' in single quotes */
	OK_ARGS("\"a\"\t\"b\"\v\"c\"\n", 12, "a", "b", "c");
	OK_ARGS("a\vb\n", 4, "a\vb"); /* \v separates only before an arg, like sdssplitargs */
	OK_ARGS("\"a\\nb\\r\\t\\b\\a\\\\\\\"\\x41\\x4a\\xzz\\q\\x4\"\n", 36,
		"a\nb\r\t\b\a\\\"AJxzzqx4");
	OK_ARGS("\"\\x7e\\x7E\\xAb\"\n", 15, "~~\xab");
	ERR_IS("\"line\nx\"\n", &lim_default, E_ "unbalanced quotes in request"); /* LF ends the line even in quotes */
}

static void test_inline_binary(void)
{
	/* Hex escapes reach every byte; NUL is an ordinary byte of the line. */
	struct resp_request req;
	static const char in[] = "\"\\x00\\xff\\x0d\\x0a\" a\0b\n";
	T_EQ(parse(in, sizeof(in) - 1, &lim_default, &req), RESP_OK);
	T_EQ(req.consumed, sizeof(in) - 1);
	T_EQ(req.argc, 2);
	T(arg_eq(&req, 0, "\0\xff\r\n", 4));
	T(arg_eq(&req, 1, "a\0b", 3));
	/* A quoted arg with a CR at the end of the line: the CR before LF is
	 * the line end, so the quote is unterminated. */
	ERR_IS("\"a\r\n", &lim_default, E_ "unbalanced quotes in request");
	/* A CR inside quotes but not at the line end is kept. */
	OK_ARGS("\"a\rb\"\r\n", 7, "a\rb");
}

static void test_pipeline(void)
{
	static const char stream[] =
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv\0\r\n" /* 28 */
		"PING\r\n"                                /* 6 */
		"*0\r\n"                                  /* 4 */
		"GET 'k k'\n"                             /* 10 */
		"\r\n"                                    /* 2 */
		"*-1\r\n"                                 /* 5 */
		"*1\r\n$4\r\nQUIT\r\n"                    /* 14 */
		"*2\r\n$3\r\nGET\r\n$5\r\nab";            /* partial: 19 of 24 */
	struct {
		size_t consumed;
		uint32_t argc;
		const char *args[3];
		uint32_t lens[3];
	} want[] = {
		{ 28, 3, { "SET", "k", "v\0" }, { 3, 1, 2 } },
		{ 6, 1, { "PING" }, { 4 } },
		{ 4, 0, { NULL }, { 0 } },
		{ 10, 2, { "GET", "k k" }, { 3, 3 } },
		{ 2, 0, { NULL }, { 0 } },
		{ 5, 0, { NULL }, { 0 } },
		{ 14, 1, { "QUIT" }, { 4 } },
	};
	size_t n = sizeof(stream) - 1;
	char *buf = malloc(n);
	CHECK(buf != NULL);
	memcpy(buf, stream, n);
	free(pbuf);
	pbuf = buf; /* for arg_eq's bounds check */
	size_t off = 0;
	struct resp_request req;
	for (size_t i = 0; i < DV_ARRAY_LEN(want); i++) {
		req_init(&req);
		T_EQ(resp_parse(buf + off, n - off, &lim_default, &req), RESP_OK);
		T_EQ(req.consumed, want[i].consumed);
		T_EQ(req.argc, want[i].argc);
		for (uint32_t a = 0; a < want[i].argc; a++) {
			T(req.argv[a].ptr >= buf + off && req.argv[a].ptr + req.argv[a].len <= buf + off + req.consumed);
			T_EQ(req.argv[a].len, want[i].lens[a]);
			T(memcmp(req.argv[a].ptr, want[i].args[a], want[i].lens[a]) == 0);
		}
		off += req.consumed;
	}
	req_init(&req);
	T_EQ(resp_parse(buf + off, n - off, &lim_default, &req), RESP_AGAIN);
	T_EQ(n - off, 19);
	T_EQ(req.need, 24); /* the partial bulk and its CRLF */
}

/* Every strict prefix of in[0..n) is AGAIN with k < need <= n; the whole is
 * OK taking n bytes. */
static void check_prefixes(const char *in, size_t n)
{
	struct resp_request req;
	for (size_t k = 0; k < n; k++) {
		int rc = parse(in, k, &lim_default, &req);
		if (rc != RESP_AGAIN)
			fprintf(stderr, "prefix %zu of %zu: rc %d %s\n", k, n, rc, rc == RESP_ERR ? req.error : "");
		T_EQ(rc, RESP_AGAIN);
		T(req.need > k && req.need <= n);
	}
	T_EQ(parse(in, n, &lim_default, &req), RESP_OK);
	T_EQ(req.consumed, n);
}
#define PREFIXES(lit) check_prefixes(lit, sizeof(lit) - 1)

static void test_prefixes(void)
{
	PREFIXES("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
	PREFIXES("*1\r\n$0\r\n\r\n");
	PREFIXES("*0\r\n");
	PREFIXES("*-1\r\n");
	PREFIXES("*2\r\n$7\r\na\0\r\n$*\r\r\n$2\r\n\r\n\r\n");
	PREFIXES("*12\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n"
		 "$1\r\n7\r\n$1\r\n8\r\n$1\r\n9\r\n$2\r\n10\r\n$2\r\n11\r\n$10\r\n0123456789\r\n");
	PREFIXES("SET \"a b\" 'c\\'d' \"\\x41\\n\"\r\n");
	PREFIXES("GET k\n");
	PREFIXES("\r\n");

	/* A 100 KiB bulk: parsed in place at every length (the multibulk path
	 * never writes to buf). Inside the bulk need is exactly the request's
	 * end, so a server can size its buffer once. */
	size_t vlen = 100u << 10;
	char head[64];
	int hn = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$%zu\r\n", vlen);
	size_t n = (size_t)hn + vlen + 2;
	char *big = malloc(n);
	CHECK(big != NULL);
	memcpy(big, head, (size_t)hn);
	for (size_t i = 0; i < vlen; i++)
		big[hn + i] = (char)(i * 7 + 3);
	memcpy(big + hn + vlen, "\r\n", 2);
	struct resp_request req;
	for (size_t k = 0; k < n; k++) {
		req_init(&req);
		T_EQ(resp_parse(big, k, &lim_default, &req), RESP_AGAIN);
		T(req.need > k && req.need <= n);
		if (k >= (size_t)hn)
			T_EQ(req.need, n);
	}
	req_init(&req);
	T_EQ(resp_parse(big, n, &lim_default, &req), RESP_OK);
	T_EQ(req.consumed, n);
	T_EQ(req.argc, 3);
	T_EQ(req.argv[2].len, vlen);
	T(req.argv[2].ptr == big + hn);
	T_EQ(req.argv[2].ptr[0], (char)3);
	T_EQ(req.argv[2].ptr[vlen - 1], (char)((vlen - 1) * 7 + 3));
	/* The limits at the bulk's boundary. */
	struct resp_limits lim = lim_default;
	lim.arg_bytes_max = (uint32_t)vlen;
	T_EQ(parse(big, n, &lim, &req), RESP_OK);
	lim.arg_bytes_max = (uint32_t)vlen - 1;
	T(err_is(big, (size_t)hn, &lim, E_ "invalid bulk length")); /* refused from the header alone */
	lim = lim_default;
	lim.request_bytes_max = n;
	T_EQ(parse(big, n, &lim, &req), RESP_OK);
	lim.request_bytes_max = n - 1;
	T(err_is(big, (size_t)hn, &lim, E_ "request too large"));
	free(big);
}

static void test_errors(void)
{
	const struct resp_limits *d = &lim_default;
	ERR_IS("*abc\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*-\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*01\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*-0\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*+1\r\n", d, E_ "invalid multibulk length");
	ERR_IS("* 1\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*1 \r\n", d, E_ "invalid multibulk length");
	OK_EMPTY("*-2\r\n", 5);  /* Redis ignores a negative count */
	OK_EMPTY("*-10\r\n", 6);
	ERR_IS("*1\rx", d, E_ "invalid multibulk length"); /* CR without LF */
	ERR_IS("*1\n", d, E_ "invalid multibulk length");  /* LF without CR */
	ERR_IS("*1x", d, E_ "invalid multibulk length");   /* refused before any CR */
	ERR_IS("*1\r\n$x\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$-1\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$-5\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$01\r\na\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$1\rxa\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n+OK\r\n", d, E_ "expected '$', got '+'");
	ERR_IS("*2\r\n$1\r\na\r\n:1\r\n", d, E_ "expected '$', got ':'");
	ERR_IS("*1\r\n\r\n", d, E_ "expected '$', got ' '"); /* CR shown as a space */
	ERR_IS("*1\r\n\0", d, E_ "expected '$', got ' '");
	ERR_IS("*1\r\n\xff", d, E_ "expected '$', got '\xff'");
	ERR_IS("*1\r\n$1\r\nab\r\n", d, E_ "expected CRLF after bulk data");
	ERR_IS("*1\r\n$1\r\na\rb", d, E_ "expected CRLF after bulk data");
	ERR_IS("*1\r\n$1\r\na\n\r", d, E_ "expected CRLF after bulk data");
	ERR_IS("SET \"abc\n", d, E_ "unbalanced quotes in request");
	ERR_IS("SET 'abc\n", d, E_ "unbalanced quotes in request");
	ERR_IS("SET \"a\"b\n", d, E_ "unbalanced quotes in request");
	ERR_IS("SET 'a'b\n", d, E_ "unbalanced quotes in request");
	ERR_IS("SET \"abc\\\"\n", d, E_ "unbalanced quotes in request");
	ERR_IS("SET 'abc\\'\n", d, E_ "unbalanced quotes in request");
	ERR_IS("SET \"abc\\\n", d, E_ "unbalanced quotes in request");
	/* Every byte other than '$' where a bulk header must start. */
	for (int c = 0; c < 256; c++) {
		if (c == '$')
			continue;
		char in[5] = { '*', '1', '\r', '\n', (char)c };
		char msg[64];
		snprintf(msg, sizeof(msg), E_ "expected '$', got '%c'", c == 0 || c == '\r' || c == '\n' ? ' ' : c);
		T(err_is(in, 5, d, msg));
	}
}

static void test_header_lines(void)
{
	const struct resp_limits *d = &lim_default;
	/* A header line may have RESP_HEADER_BYTES_MAX (32) bytes before its
	 * CRLF: 32 bytes without a CR is AGAIN, 33 is an error. */
	char line[64];
	line[0] = '*';
	memset(line + 1, '1', 40);
	T(again_need(line, 32, d, 33));
	T(err_is(line, 33, d, E_ "too big mbulk count string"));
	T(err_is(line, 40, d, E_ "too big mbulk count string"));
	memcpy(line + 32, "\r\n", 2); /* 31 digits: a complete line, not an int64 */
	T(err_is(line, 34, d, E_ "invalid multibulk length"));
	T(again_need(line, 33, d, 34)); /* CR seen, LF awaited */
	/* 40 digits and their CRLF in one read: Redis's "invalid", not "too big". */
	char whole[64];
	whole[0] = '*';
	memset(whole + 1, '1', 40);
	memcpy(whole + 41, "\r\n", 2);
	T(err_is(whole, 43, d, E_ "invalid multibulk length"));
	T(err_is(whole, 42, d, E_ "invalid multibulk length")); /* the CR alone is enough */
	T(err_is(whole, 41, d, E_ "too big mbulk count string"));
	char wbulk[80];
	memcpy(wbulk, "*1\r\n$", 5);
	memset(wbulk + 5, '2', 40);
	memcpy(wbulk + 45, "\r\n", 2);
	T(err_is(wbulk, 47, d, E_ "invalid bulk length"));
	char bulk[80];
	memcpy(bulk, "*1\r\n$", 5);
	memset(bulk + 5, '2', 40);
	T(again_need(bulk, 4 + 32, d, 37));
	T(err_is(bulk, 4 + 33, d, E_ "too big bulk count string"));
	memcpy(bulk + 4 + 32, "\r\n", 2);
	T(err_is(bulk, 4 + 34, d, E_ "invalid bulk length"));
	AGAIN_NEED("*", d, 2);
	AGAIN_NEED("*1", d, 3);
	AGAIN_NEED("*1\r", d, 4);
	AGAIN_NEED("*1\r\n", d, 5);
	AGAIN_NEED("*1\r\n$", d, 6);
	AGAIN_NEED("*1\r\n$3\r\n", d, 13);
	AGAIN_NEED("*1\r\n$3\r\nab", d, 13);
	AGAIN_NEED("*1\r\n$3\r\nabc\r", d, 13);
	AGAIN_NEED("*-", d, 3);
}

static void test_overflow(void)
{
	const struct resp_limits *d = &lim_default;
	ERR_IS("*9223372036854775808\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*18446744073709551617\r\n", d, E_ "invalid multibulk length"); /* wraps to 1 in 64 bits */
	ERR_IS("*99999999999999999999\r\n", d, E_ "invalid multibulk length");
	OK_EMPTY("*-9223372036854775808\r\n", 23);
	ERR_IS("*-9223372036854775809\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*9223372036854775807\r\n", d, E_ "invalid multibulk length");
	ERR_IS("*4294967297\r\n", d, E_ "invalid multibulk length"); /* 2^32 + 1: not truncated to 1 */
	ERR_IS("*1\r\n$99999999999999999999\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$18446744073709551619\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$9223372036854775808\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$9223372036854775807\r\n", d, E_ "invalid bulk length");
	ERR_IS("*1\r\n$-9223372036854775808\r\n", d, E_ "invalid bulk length");
	struct resp_limits lim = lim_default;
	lim.arg_bytes_max = UINT32_MAX;
	lim.request_bytes_max = UINT64_MAX;
	ERR_IS("*1\r\n$4294967296\r\n", &lim, E_ "invalid bulk length");
	/* At the largest limits a huge declared bulk is AGAIN with an exact need. */
	AGAIN_NEED("*1\r\n$4294967295\r\n", &lim, 4294967295ull + 19);
}

static void test_limits(void)
{
	struct resp_limits lim = lim_default;
	/* args_max */
	lim.args_max = 2;
	T(ok_args("*2\r\n$1\r\na\r\n$1\r\nb\r\n", 18, &lim, 18, (const char *const[]){ "a", "b" }, 2));
	ERR_IS("*3\r\n", &lim, E_ "invalid multibulk length"); /* from the count alone */
	T(ok_args("a b\r\n", 5, &lim, 5, (const char *const[]){ "a", "b" }, 2));
	ERR_IS("a b c\r\n", &lim, E_ "too many arguments");
	T(ok_args("a b   \r\n", 8, &lim, 8, (const char *const[]){ "a", "b" }, 2));
	lim.args_max = 0;
	T(ok_args("*0\r\n", 4, &lim, 4, NULL, 0));
	T(ok_args("  \n", 3, &lim, 3, NULL, 0));
	ERR_IS("*1\r\n", &lim, E_ "invalid multibulk length");
	ERR_IS("a\n", &lim, E_ "too many arguments");

	/* arg_bytes_max, multibulk and inline (counted after unescaping). */
	lim = lim_default;
	lim.arg_bytes_max = 5;
	T(ok_args("*1\r\n$5\r\nabcde\r\n", 15, &lim, 15, (const char *const[]){ "abcde" }, 1));
	ERR_IS("*1\r\n$6\r\n", &lim, E_ "invalid bulk length");
	T(ok_args("abcde\n", 6, &lim, 6, (const char *const[]){ "abcde" }, 1));
	ERR_IS("abcdef\n", &lim, E_ "bulk string too large");
	T(ok_args("\"\\x41\\x42\\x43\\x44\\x45\"\n", 23, &lim, 23, (const char *const[]){ "ABCDE" }, 1));
	ERR_IS("\"\\x41\\x42\\x43\\x44\\x45\\x46\"\n", &lim, E_ "bulk string too large");

	/* Before AUTH: Redis's wording within Redis's own bounds, "invalid"
	 * beyond them (auth.tcl's "*100" and "$100000000"). */
	lim = lim_default;
	lim.unauthenticated = true;
	lim.args_max = 10;
	lim.arg_bytes_max = 16384;
	ERR_IS("*100\r\n", &lim, E_ "unauthenticated multibulk length");
	ERR_IS("*11\r\n", &lim, E_ "unauthenticated multibulk length");
	ERR_IS("*3000000000\r\n", &lim, E_ "invalid multibulk length");
	ERR_IS("*1\r\n$100000000\r\n", &lim, E_ "unauthenticated bulk length");
	ERR_IS("*1\r\n$16385\r\n", &lim, E_ "unauthenticated bulk length");
	ERR_IS("*1\r\n$2000000000\r\n", &lim, E_ "invalid bulk length");
	ERR_IS("*1\r\n$-10\r\n", &lim, E_ "invalid bulk length");
	OK_EMPTY("*-10\r\n", 6);
	T(ok_args("*2\r\n$4\r\nAUTH\r\n$1\r\nx\r\n", 21, &lim, 21, (const char *const[]){ "AUTH", "x" }, 2));

	/* inline_bytes_max: the line without its line end. */
	lim = lim_default;
	lim.inline_bytes_max = 8;
	T(ok_args("abcd efg\r\n", 10, &lim, 10, (const char *const[]){ "abcd", "efg" }, 2));
	T(ok_args("abcd efg\n", 9, &lim, 9, (const char *const[]){ "abcd", "efg" }, 2));
	T(again_need("abcd efg", 8, &lim, 9));
	T(again_need("abcd efg\r", 9, &lim, 10)); /* the CR may be the line end */
	T(err_is("abcd efgh", 9, &lim, E_ "too big inline request"));
	T(err_is("abcd efg\rx", 10, &lim, E_ "too big inline request"));
	T(err_is("abcd efgh\n", 10, &lim, E_ "too big inline request"));
	T(err_is("abcd efgh\r\n", 11, &lim, E_ "too big inline request"));
	T(err_is("abcd efghijklmnopqrstu", 22, &lim, E_ "too big inline request"));
	T(err_is("abcd efghijklmnop\nrstu", 22, &lim, E_ "too big inline request"));

	/* request_bytes_max: the request's whole size, known from its headers. */
	static const char mb[] = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"; /* 22 bytes */
	lim = lim_default;
	lim.request_bytes_max = 22;
	T(ok_args(mb, 22, &lim, 22, (const char *const[]){ "GET", "key" }, 2));
	lim.request_bytes_max = 21;
	T(err_is(mb, 22, &lim, E_ "request too large"));
	T(err_is(mb, 17, &lim, E_ "request too large")); /* "$3\r\n" says it ends at 22 */
	T(again_need(mb, 16, &lim, 17));
	T(again_need(mb, 13, &lim, 14));
	lim.request_bytes_max = 4;
	T(ok_args("*0\r\n", 4, &lim, 4, NULL, 0));
	T(err_is("*1\r\n", 4, &lim, E_ "request too large"));
	lim.request_bytes_max = 3;
	T(err_is("*0\r\n", 4, &lim, E_ "request too large"));
	T(again_need("*0", 2, &lim, 3));
	T(err_is("*0\r", 3, &lim, E_ "request too large")); /* needs a 4th byte */
	lim.request_bytes_max = 6;
	T(ok_args("GET k\n", 6, &lim, 6, (const char *const[]){ "GET", "k" }, 2));
	T(err_is("GET k\r\n", 7, &lim, E_ "request too large"));
	T(err_is("GET kk", 6, &lim, E_ "request too large")); /* needs a 7th byte */
}

static bool i64_is(const char *s, size_t n, int want_rc, int64_t want)
{
	struct resp_arg a = { (char *)s, (uint32_t)n };
	int64_t v = 12345;
	int rc = resp_arg_i64(&a, &v);
	if (rc != want_rc || (rc == 0 && v != want) || (rc != 0 && v != 12345)) {
		fprintf(stderr, "i64 '%.*s': rc %d value %lld\n", (int)n, s, rc, (long long)v);
		return false;
	}
	return true;
}
#define I64_OK(lit, v) T(i64_is(lit, sizeof(lit) - 1, 0, v))
#define I64_BAD(lit) T(i64_is(lit, sizeof(lit) - 1, -EINVAL, 0))

static void test_i64(void)
{
	I64_OK("0", 0);
	I64_OK("1", 1);
	I64_OK("-1", -1);
	I64_OK("1234567890", 1234567890);
	I64_OK("9223372036854775807", INT64_MAX);
	I64_OK("-9223372036854775808", INT64_MIN);
	I64_OK("-9223372036854775807", -INT64_MAX);
	I64_BAD("9223372036854775808");
	I64_BAD("-9223372036854775809");
	I64_BAD("18446744073709551616");
	I64_BAD("18446744073709551617"); /* wraps to 1 */
	I64_BAD("99999999999999999999");
	I64_BAD("10000000000000000000");
	I64_BAD("00000000000000000001");
	I64_BAD("+1");
	I64_BAD("01");
	I64_BAD("00");
	I64_BAD("-0");
	I64_BAD("-01");
	I64_BAD("");
	I64_BAD("-");
	I64_BAD("--1");
	I64_BAD(" 1");
	I64_BAD("1 ");
	I64_BAD("1a");
	I64_BAD("0x10");
	I64_BAD("1.5");
	I64_BAD("1\0");
	T(i64_is("12\0", 2, 0, 12)); /* len bounds the parse, not a NUL */
}

static void test_arg_is(void)
{
	struct resp_arg a = { (char *)"GeT", 3 };
	T(resp_arg_is(&a, "get"));
	T(resp_arg_is(&a, "GET"));
	T(!resp_arg_is(&a, "ge"));
	T(!resp_arg_is(&a, "gets"));
	T(!resp_arg_is(&a, ""));
	struct resp_arg z = { (char *)"g\0t", 3 };
	T(!resp_arg_is(&z, "g"));
	T(!resp_arg_is(&z, "gat"));
	struct resp_arg e = { (char *)"", 0 };
	T(resp_arg_is(&e, ""));
	T(!resp_arg_is(&e, "x"));
	struct resp_arg sym = { (char *)"[", 1 }; /* '[' is not 'Z' + 1 lowered */
	T(!resp_arg_is(&sym, "{"));
	struct resp_arg hi = { (char *)"\xc9", 1 }; /* only ASCII folds */
	T(!resp_arg_is(&hi, "\xe9"));
}

static bool buf_is(struct resp_buf *b, const char *want, size_t n)
{
	if (b->len != n || memcmp(b->data, want, n) != 0) {
		fprintf(stderr, "buffer '%.*s' (%zu bytes), want '%.*s' (%zu)\n", (int)b->len, b->data, b->len,
			(int)n, want, n);
		return false;
	}
	b->len = 0;
	return true;
}
#define BUF_IS(b, lit) T(buf_is(b, lit, sizeof(lit) - 1))

static void test_encoders(void)
{
	struct resp_buf b;
	resp_buf_init(&b);
	T(b.data == NULL && b.len == 0 && b.cap == 0);
	T_EQ(resp_add_simple(&b, "OK"), 0);
	BUF_IS(&b, "+OK\r\n");
	T_EQ(resp_add_simple(&b, "a\r\nb\nc\r"), 0);
	BUF_IS(&b, "+a  b c \r\n");
	T_EQ(resp_add_error(&b, "ERR unknown command"), 0);
	BUF_IS(&b, "-ERR unknown command\r\n");
	T_EQ(resp_add_error(&b, "ERR bad\r\n-injected\r\n"), 0);
	BUF_IS(&b, "-ERR bad  -injected  \r\n");
	T_EQ(resp_add_errorf(&b, "ERR wrong number of arguments for '%s' command (%d)", "get", 3), 0);
	BUF_IS(&b, "-ERR wrong number of arguments for 'get' command (3)\r\n");
	T_EQ(resp_add_errorf(&b, "ERR %s", "x\r\ny"), 0);
	BUF_IS(&b, "-ERR x  y\r\n");
	T_EQ(resp_add_errorf(&b, "ERR %s", "x\ny\r\n\n"), 0); /* the end's trimmed, as Redis */
	BUF_IS(&b, "-ERR x y\r\n");
	char longmsg[3000];
	memset(longmsg, 'z', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	T_EQ(resp_add_errorf(&b, "ERR %s!", longmsg), 0);
	T_EQ(b.len, 1 + 4 + 2999 + 1 + 2);
	T(memcmp(b.data, "-ERR zzz", 8) == 0 && memcmp(b.data + b.len - 4, "z!\r\n", 4) == 0);
	b.len = 0;
	/* rawf: formatted text as is, appended, any length */
	T_EQ(resp_add_rawf(&b, "a:%d\r\n", 7), 0);
	T_EQ(resp_add_rawf(&b, "%s", ""), 0);
	T_EQ(resp_add_rawf(&b, "b:%s|", longmsg), 0);
	T_EQ(b.len, 5 + 2 + 2999 + 1);
	T(memcmp(b.data, "a:7\r\nb:zz", 9) == 0 && b.data[b.len - 1] == '|');
	b.len = 0;
	T_EQ(resp_add_int(&b, 0), 0);
	T_EQ(resp_add_int(&b, -1), 0);
	T_EQ(resp_add_int(&b, 42), 0);
	T_EQ(resp_add_int(&b, INT64_MAX), 0);
	T_EQ(resp_add_int(&b, INT64_MIN), 0);
	BUF_IS(&b, ":0\r\n:-1\r\n:42\r\n:9223372036854775807\r\n:-9223372036854775808\r\n");
	T_EQ(resp_add_bulk(&b, "abc", 3), 0);
	T_EQ(resp_add_bulk(&b, "", 0), 0);
	T_EQ(resp_add_bulk(&b, NULL, 0), 0);
	T_EQ(resp_add_bulk(&b, "a\0\r\n", 4), 0);
	T_EQ(resp_add_bulk_str(&b, "hello"), 0);
	BUF_IS(&b, "$3\r\nabc\r\n$0\r\n\r\n$0\r\n\r\n$4\r\na\0\r\n\r\n$5\r\nhello\r\n");
	T_EQ(resp_add_null(&b, 2), 0);
	BUF_IS(&b, "$-1\r\n");
	T_EQ(resp_add_null(&b, 3), 0);
	BUF_IS(&b, "_\r\n");
	T_EQ(resp_add_null_array(&b, 2), 0);
	BUF_IS(&b, "*-1\r\n");
	T_EQ(resp_add_null_array(&b, 3), 0);
	BUF_IS(&b, "_\r\n");
	T_EQ(resp_add_array(&b, 0), 0);
	T_EQ(resp_add_array(&b, 3), 0);
	T_EQ(resp_add_array(&b, 1234567), 0);
	BUF_IS(&b, "*0\r\n*3\r\n*1234567\r\n");
	T_EQ(resp_add_map(&b, 2, 3), 0);
	BUF_IS(&b, "%2\r\n");
	T_EQ(resp_add_map(&b, 2, 2), 0);
	BUF_IS(&b, "*4\r\n");
	T_EQ(resp_add_map(&b, 0, 2), 0);
	BUF_IS(&b, "*0\r\n");
	T_EQ(resp_add_verbatim(&b, "abc", 3, 3), 0);
	BUF_IS(&b, "=7\r\ntxt:abc\r\n");
	T_EQ(resp_add_verbatim(&b, "", 0, 3), 0);
	BUF_IS(&b, "=4\r\ntxt:\r\n");
	T_EQ(resp_add_verbatim(&b, "abc", 3, 2), 0);
	BUF_IS(&b, "$3\r\nabc\r\n");
	T_EQ(resp_add_raw(&b, "+PONG\r\n", 7), 0);
	T_EQ(resp_add_raw(&b, NULL, 0), 0);
	BUF_IS(&b, "+PONG\r\n");

	/* Growth keeps the contents; consume drops a prefix. */
	for (int i = 0; i < 5000; i++)
		T_EQ(resp_add_int(&b, i), 0);
	size_t total = b.len;
	T(b.cap >= total);
	T(memcmp(b.data, ":0\r\n:1\r\n", 8) == 0);
	resp_buf_consume(&b, 4);
	T_EQ(b.len, total - 4);
	T(memcmp(b.data, ":1\r\n:2\r\n", 8) == 0);
	T(memcmp(b.data + b.len - 7, ":4999\r\n", 7) == 0);
	resp_buf_consume(&b, 0);
	T_EQ(b.len, total - 4);
	resp_buf_consume(&b, b.len);
	T_EQ(b.len, 0);

	/* -ENOMEM leaves the buffer as it was. */
	T_EQ(resp_add_simple(&b, "kept"), 0);
	char *data = b.data;
	size_t cap = b.cap;
	T_EQ(resp_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	T_EQ(resp_buf_reserve(&b, SIZE_MAX / 2), -ENOMEM);
	T_EQ(resp_add_bulk(&b, "x", SIZE_MAX - 8), -ENOMEM);
	T_EQ(resp_add_verbatim(&b, "x", SIZE_MAX / 2 + 1, 3), -ENOMEM);
	T_EQ(resp_add_raw(&b, "x", SIZE_MAX - 1), -ENOMEM);
	T(b.data == data && b.cap == cap);
	BUF_IS(&b, "+kept\r\n");
	T_EQ(resp_buf_reserve(&b, 0), 0);
	T_EQ(resp_buf_reserve(&b, b.cap), 0);
	T(b.cap - b.len >= cap);
	resp_buf_free(&b);
	T(b.data == NULL && b.len == 0 && b.cap == 0);
	resp_buf_free(&b); /* free twice is harmless */
}

/* ---- differential: random requests encoded, concatenated, parsed back ---- */

struct gen_req {
	size_t start, end;    /* in the stream */
	uint32_t argc;
	size_t arg0;          /* index of the first arg in the args table */
};
struct gen_arg {
	size_t off;           /* in the arena of expected bytes */
	uint32_t len;
};

struct gen {
	uint64_t rng;
	struct resp_buf stream;
	struct resp_buf arena; /* the args' expected bytes */
	struct gen_req *reqs;
	struct gen_arg *args;
	size_t nreqs, nargs, args_cap;
};

static uint32_t rnd(struct gen *g, uint32_t n)
{
	return (uint32_t)(test_rand(&g->rng) % n);
}

static uint32_t gen_len(struct gen *g, uint32_t big)
{
	uint32_t p = rnd(g, 100);
	return p < 70 ? rnd(g, 17) : p < 95 ? rnd(g, 301) : rnd(g, big + 1);
}

static bool plain_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == ':';
}

static void add_inline_arg(struct gen *g, const char *a, uint32_t n)
{
	static const char hexd[] = "0123456789abcdef0123456789ABCDEF";
	bool plain = n > 0, quotable = true;
	for (uint32_t i = 0; i < n; i++) {
		plain = plain && plain_byte(a[i]);
		quotable = quotable && a[i] >= ' ' && a[i] < 0x7f && a[i] != '\\';
	}
	uint32_t how = rnd(g, 3);
	if (plain && how == 0) {
		CHECK(resp_add_raw(&g->stream, a, n) == 0);
	} else if (quotable && how == 1) {
		CHECK(resp_add_raw(&g->stream, "'", 1) == 0);
		for (uint32_t i = 0; i < n; i++)
			CHECK(resp_add_raw(&g->stream, a[i] == '\'' ? "\\'" : &a[i], a[i] == '\'' ? 2 : 1) == 0);
		CHECK(resp_add_raw(&g->stream, "'", 1) == 0);
	} else {
		CHECK(resp_add_raw(&g->stream, "\"", 1) == 0);
		for (uint32_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)a[i];
			const char *esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
				: c == '\a' ? "\\a" : c == '"' ? "\\\"" : c == '\\' ? "\\\\" : NULL;
			if (esc && rnd(g, 4) != 0) {
				CHECK(resp_add_raw(&g->stream, esc, 2) == 0);
			} else if (c >= ' ' && c < 0x7f && c != '"' && c != '\\' && rnd(g, 8) != 0) {
				CHECK(resp_add_raw(&g->stream, &a[i], 1) == 0);
			} else {
				unsigned up = rnd(g, 2) * 16;
				char x[4] = { '\\', 'x', hexd[up + (c >> 4)], hexd[up + (c & 15)] };
				CHECK(resp_add_raw(&g->stream, x, 4) == 0);
			}
		}
		CHECK(resp_add_raw(&g->stream, "\"", 1) == 0);
	}
}

static void gen_request(struct gen *g)
{
	static const char *const seps[] = { " ", "  ", "\t", " \t " };
	struct gen_req *r = &g->reqs[g->nreqs++];
	r->start = g->stream.len;
	r->arg0 = g->nargs;
	uint32_t kind = rnd(g, 20);
	if (kind == 0) {
		static const char *const empties[] = { "*0\r\n", "*-1\r\n", "\r\n", "\n", "   \r\n" };
		const char *e = empties[rnd(g, DV_ARRAY_LEN(empties))];
		CHECK(resp_add_raw(&g->stream, e, strlen(e)) == 0);
		r->argc = 0;
		r->end = g->stream.len;
		return;
	}
	bool inl = kind <= 6;
	/* Inline lines stay under 64 KiB: 8 args of at most 4000 escaped bytes. */
	r->argc = 1 + (!inl && rnd(g, 10) == 0 ? rnd(g, 40) : rnd(g, 8));
	if (!inl)
		CHECK(resp_add_array(&g->stream, r->argc) == 0);
	else if (rnd(g, 4) == 0)
		CHECK(resp_add_raw(&g->stream, " ", 1) == 0);
	for (uint32_t i = 0; i < r->argc; i++) {
		uint32_t n = gen_len(g, inl ? 1000 : 5000);
		CHECK(resp_buf_reserve(&g->arena, n) == 0);
		char *a = g->arena.data + g->arena.len;
		uint32_t alphabet = rnd(g, 3); /* plain letters, printable, any byte */
		for (uint32_t k = 0; k < n; k++)
			a[k] = alphabet == 0 ? (char)('a' + rnd(g, 26)) : alphabet == 1 ? (char)(' ' + rnd(g, 95)) : (char)rnd(g, 256);
		CHECK(g->nargs < g->args_cap);
		g->args[g->nargs++] = (struct gen_arg){ g->arena.len, n };
		g->arena.len += n;
		if (!inl) {
			CHECK(resp_add_bulk(&g->stream, a, n) == 0);
			continue;
		}
		if (i > 0) {
			const char *s = seps[rnd(g, DV_ARRAY_LEN(seps))];
			CHECK(resp_add_raw(&g->stream, s, strlen(s)) == 0);
		}
		add_inline_arg(g, a, n);
	}
	if (inl) {
		bool crlf = rnd(g, 2);
		CHECK(resp_add_raw(&g->stream, crlf ? "\r\n" : "\n", crlf ? 2 : 1) == 0);
	}
	r->end = g->stream.len;
}

static void check_parsed(struct gen *g, const struct gen_req *r, const struct resp_request *req, const char *base)
{
	T_EQ(req->consumed, r->end - r->start);
	T_EQ(req->argc, r->argc);
	for (uint32_t i = 0; i < r->argc; i++) {
		const struct gen_arg *a = &g->args[r->arg0 + i];
		const struct resp_arg *got = &req->argv[i];
		T_EQ(got->len, a->len);
		T(got->ptr >= base && got->ptr + got->len <= base + req->consumed);
		T(memcmp(got->ptr, g->arena.data + a->off, a->len) == 0);
	}
}

static void test_random(void)
{
	uint64_t seed = test_seed(0x7e5b);
	struct gen g = { .rng = seed };
	const size_t nreqs = 3000;
	resp_buf_init(&g.stream);
	resp_buf_init(&g.arena);
	g.reqs = calloc(nreqs, sizeof(*g.reqs));
	g.args_cap = nreqs * 41;
	g.args = calloc(g.args_cap, sizeof(*g.args));
	CHECK(g.reqs && g.args);
	for (size_t i = 0; i < nreqs; i++)
		gen_request(&g);
	size_t n = g.stream.len;

	/* Whole stream at once. */
	char *s = malloc(n);
	CHECK(s != NULL);
	memcpy(s, g.stream.data, n);
	size_t off = 0;
	struct resp_request req;
	for (size_t i = 0; i < nreqs; i++) {
		req_init(&req);
		int rc = resp_parse(s + off, n - off, &lim_default, &req);
		if (rc != RESP_OK)
			fprintf(stderr, "request %zu at %zu: rc %d %s\n", i, off, rc, rc == RESP_ERR ? req.error : "");
		T_EQ(rc, RESP_OK);
		check_parsed(&g, &g.reqs[i], &req, s + off);
		off += req.consumed;
	}
	T_EQ(off, n);
	req_init(&req);
	T_EQ(resp_parse(s + off, 0, &lim_default, &req), RESP_AGAIN);

	/* Fed in random chunks, as a connection would receive it: AGAIN's need
	 * is never past the request's end; half the time the next read goes
	 * straight to need, as a server skipping reparses would. */
	memcpy(s, g.stream.data, n);
	size_t avail = 0, again = 0;
	off = 0;
	for (size_t i = 0; i < nreqs;) {
		const struct gen_req *r = &g.reqs[i];
		req_init(&req);
		int rc = resp_parse(s + off, avail - off, &lim_default, &req);
		if (rc == RESP_OK) {
			check_parsed(&g, r, &req, s + off);
			off += req.consumed;
			i++;
			continue;
		}
		T_EQ(rc, RESP_AGAIN);
		T(req.need > avail - off && off + req.need <= r->end);
		again++;
		size_t next = rnd(&g, 2) ? off + req.need : avail + 1 + rnd(&g, 3000);
		avail = next < n ? next : n;
	}
	T_EQ(off, n);
	fprintf(stderr, "random: %zu requests, %zu args, %zu bytes, %zu AGAINs\n", nreqs, g.nargs, n, again);
	free(s);
	free(g.reqs);
	free(g.args);
	resp_buf_free(&g.stream);
	resp_buf_free(&g.arena);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "multibulk", test_multibulk },   { "inline", test_inline },
		{ "inline_binary", test_inline_binary }, { "pipeline", test_pipeline },
		{ "prefixes", test_prefixes },     { "errors", test_errors },
		{ "header_lines", test_header_lines }, { "overflow", test_overflow },
		{ "limits", test_limits },         { "i64", test_i64 },
		{ "arg_is", test_arg_is },         { "encoders", test_encoders },
		{ "random", test_random },
	};
	const char *only = getenv("DV_TEST_ONLY");
	for (size_t i = 0; i < DV_ARRAY_LEN(tests); i++) {
		if (only && strcmp(only, tests[i].name) != 0)
			continue;
		unsigned long before = checks;
		tests[i].fn();
		fprintf(stderr, "ok   %s (%lu checks)\n", tests[i].name, checks - before);
	}
	free(pbuf);
	fprintf(stderr, "%zu tests, %lu checks passed\n", DV_ARRAY_LEN(tests), checks);
	return 0;
}

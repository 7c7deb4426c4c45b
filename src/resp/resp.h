/* resp.h - RESP2/RESP3 request parsing and reply encoding.
 *
 * Contract:
 * - resp_parse() reads one request at the start of a buffer and never reads
 *   past buf+len. It allocates nothing and keeps no state between calls: on
 *   AGAIN the caller buffers more bytes and parses again from the request's
 *   first byte. A request is multibulk when its first byte is '*'
 *   ("*N\r\n" then N times "$L\r\n<L bytes>\r\n"), inline otherwise (one
 *   line ended by "\n" or "\r\n", split like Redis's sdssplitargs).
 * - Results: RESP_OK (argv[0..argc) and consumed set; argc is 0 for an
 *   empty request - "*0", "*-1", "*-10", a blank line - which the caller
 *   skips),
 *   RESP_AGAIN (incomplete; need set, nothing written to buf), RESP_ERR
 *   (error set to a static Redis-worded message; the caller replies with it
 *   and closes the connection, the stream cannot be resynchronised).
 * - Args point into buf and stay valid while buf does. Multibulk args are
 *   left untouched (binary safe: NUL and CRLF may appear inside). Inline
 *   args are unescaped in place, which only shrinks them, so buf is
 *   writable; their bytes past arg.len are garbage.
 * - Every length read from the input is parsed with overflow checks and
 *   checked against the limits before any arithmetic on it:
 *     *N  : not a valid int64, or N > args_max -> "invalid multibulk
 *           length" (unauthenticated: N over args_max but within INT_MAX ->
 *           "unauthenticated multibulk length"); N <= 0 is an empty
 *           request, as Redis ignores "*-10"
 *     $L  : not a valid int64, negative, or L > arg_bytes_max -> "invalid
 *           bulk length" (unauthenticated: L over arg_bytes_max but within
 *           RESP_PROTO_BULK_MAX -> "unauthenticated bulk length")
 *     header line ("*N" or "$L") longer than RESP_HEADER_BYTES_MAX without
 *           its CRLF -> "invalid multibulk/bulk length" when a CR follows in
 *           what was received (Redis's answer to a line read whole), else
 *           "too big mbulk/bulk count string" (not AGAIN; Redis waits for
 *           64 KiB before it says so)
 *     inline line longer than inline_bytes_max without its line end -> "too
 *           big inline request"; more than args_max args -> "too many
 *           arguments"; an arg longer than arg_bytes_max -> "bulk string too
 *           large"
 *     a request of more than request_bytes_max bytes (its declared lengths
 *           are enough to know it: no need to buffer it) -> "request too
 *           large"
 *   A limit value itself is accepted, limit+1 is refused.
 * - Lengths use Redis's strict integer syntax (resp_arg_i64): "*01", "$+1",
 *   "$ 1" are invalid. A "\r" where "\r\n" must be, or bulk data not
 *   followed by "\r\n", is an error.
 * - need (AGAIN) is a lower bound on the bytes the request takes, > len:
 *   any parse of fewer bytes returns AGAIN again, so the caller may grow its
 *   buffer to need at once (a large bulk) and skip parsing until then.
 *
 * Reply encoders append to a growable resp_buf; each returns 0 or -ENOMEM
 * (resp_add_errorf also -EINVAL for a format vsnprintf rejects) and leaves
 * the buffer unchanged on failure. proto is 2 (RESP2) or 3 (RESP3).
 */
#ifndef DV_RESP_H
#define DV_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { RESP_AGAIN = 0, RESP_OK = 1, RESP_ERR = -1 }; /* results of resp_parse */

/* Longest "*N" or "$L" line, type byte included, CRLF excluded. The longest
 * valid one, "*-9223372036854775808", has 21 bytes. */
#define RESP_HEADER_BYTES_MAX 32u

struct resp_arg {
	char *ptr;
	uint32_t len;
};

/* Redis's own bounds (INT_MAX elements, proto-max-bulk-len 512 MiB):
 * past them the error is "invalid ..." even before AUTH. */
#define RESP_PROTO_ARGS_MAX 2147483647ll
#define RESP_PROTO_BULK_MAX (512ll << 20)

struct resp_limits {
	uint32_t args_max;          /* elements in one multibulk request */
	uint32_t arg_bytes_max;     /* bytes of one bulk string (or inline arg) */
	uint32_t inline_bytes_max;  /* bytes of one inline command line, line end excluded */
	uint64_t request_bytes_max; /* a whole request: framing plus all args */
	bool unauthenticated;       /* the client has not authenticated: Redis's wording for its bounds */
};

struct resp_request {
	struct resp_arg *argv; /* caller's array of argv_cap entries (argv_cap >= args_max) */
	uint32_t argv_cap;
	uint32_t argc;      /* OK: number of args (0 for an empty request: the caller skips it) */
	size_t consumed;    /* OK and ERR: bytes of buf this request took (ERR: may be 0) */
	size_t need;        /* AGAIN: bytes that must be buffered before a parse can progress (> len) */
	const char *error;  /* ERR: static message without leading '-' or CRLF */
};

/* Parse one request at the start of buf[0..len): RESP_OK, RESP_AGAIN or
 * RESP_ERR as described above. */
int resp_parse(char *buf, size_t len, const struct resp_limits *lim, struct resp_request *req);

/* ASCII case-insensitive equality of an arg with a NUL-terminated literal. */
bool resp_arg_is(const struct resp_arg *a, const char *lit);
/* Strict integer, like Redis's string2ll: optional '-', digits, no spaces,
 * no '+', no leading zeros except "0" itself, fits int64. 0 or -EINVAL. */
int resp_arg_i64(const struct resp_arg *a, int64_t *out);

/* Reply buffer. data[0..len) is the encoded output; cap is allocated. */
struct resp_buf {
	char *data;
	size_t len, cap;
};
void resp_buf_init(struct resp_buf *b);
void resp_buf_free(struct resp_buf *b);
int resp_buf_reserve(struct resp_buf *b, size_t extra); /* room for extra more bytes */
void resp_buf_consume(struct resp_buf *b, size_t n);    /* drop the first n bytes (n <= len) */

int resp_add_raw(struct resp_buf *b, const void *p, size_t n);
/* Formatted text appended as is (INFO, metrics); 0, -ENOMEM or -EINVAL. */
int resp_add_rawf(struct resp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "+s\r\n"; any \r or \n in s is written as a space (a simple string
 * cannot hold them and must not desynchronise the client). */
int resp_add_simple(struct resp_buf *b, const char *s);
/* "-msg\r\n"; msg carries its code ("ERR ...", "WRONGTYPE ..."); any \r or
 * \n in msg is written as a space. */
int resp_add_error(struct resp_buf *b, const char *msg);
int resp_add_errorf(struct resp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int resp_add_int(struct resp_buf *b, int64_t v);                /* ":v\r\n" */
int resp_add_bulk(struct resp_buf *b, const void *p, size_t n); /* "$n\r\n...\r\n" */
int resp_add_bulk_str(struct resp_buf *b, const char *s);
int resp_add_null(struct resp_buf *b, int proto);       /* 2: "$-1\r\n", 3: "_\r\n" */
int resp_add_null_array(struct resp_buf *b, int proto); /* 2: "*-1\r\n", 3: "_\r\n" */
int resp_add_array(struct resp_buf *b, size_t n);       /* "*n\r\n" */
int resp_add_map(struct resp_buf *b, size_t pairs, int proto); /* 3: "%n\r\n", 2: "*(2n)\r\n" */
/* 3: "=(n+4)\r\ntxt:...\r\n", 2: a bulk string of the n bytes. */
int resp_add_verbatim(struct resp_buf *b, const void *p, size_t n, int proto);

#endif

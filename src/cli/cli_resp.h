/* cli_resp.h - a small blocking RESP client for the CLI (dynvme admin,
 * dynvme cluster up): connect with a timeout, send one command, read one
 * reply into a tree.
 *
 * Contract: every length read from the server is checked before use; a
 * reply is at most CLI_REPLY_BYTES_MAX bytes and CLI_REPLY_DEPTH_MAX levels
 * deep, or the call fails. Errors are 0 or a negative errno with a message
 * in err. A server error reply (-ERR ...) is a reply (type '-'), not a
 * failure of the call.
 */
#ifndef DV_CLI_RESP_H
#define DV_CLI_RESP_H

#include <stddef.h>
#include <stdint.h>

#define CLI_REPLY_BYTES_MAX (64u << 20)
#define CLI_REPLY_DEPTH_MAX 8u

struct rv {
	char type;       /* '+' '-' ':' '$' '*' ('_' null, also $-1 and *-1) */
	int64_t i;       /* ':' */
	char *s;         /* '+' '-' '$': NUL-terminated (binary safe with len) */
	size_t len;
	struct rv *el;   /* '*': n elements */
	size_t n;
};

/* "HOST:PORT" or "[V6]:PORT", numeric or a name. */
int cli_connect(const char *hostport, unsigned timeout_ms, int *fd, char *err, size_t err_len);
/* Send argv as one command and read its reply (*out, free with rv_free). */
int cli_call(int fd, unsigned argc, const char *const *argv, unsigned timeout_ms, struct rv **out, char *err,
	     size_t err_len);
void rv_free(struct rv *v);
/* In a flat array of name, value pairs: the value named key, or NULL. */
const struct rv *rv_get(const struct rv *pairs, const char *key);
/* Integer value of key (':'), or def. */
int64_t rv_int(const struct rv *pairs, const char *key, int64_t def);
/* Text of key ('+' or '$'), or "". */
const char *rv_str(const struct rv *pairs, const char *key);

#endif

/* log.h - structured log lines (logfmt) on stderr.
 *
 * Contract: log_msg(level, "msg", "key=%s port=%u", ...) writes one line
 *   ts=2026-11-25T10:00:00.123Z level=info msg="listening" port=6379
 * atomically (one write(2)), from any thread. Lines below the configured
 * level are dropped. The level is set at start-up (log_init), and again
 * by CONFIG SET log-level (any thread). Values with spaces must be quoted by the caller
 * (log_quote helps).
 */
#ifndef DV_SERVER_LOG_H
#define DV_SERVER_LOG_H

#include <stddef.h>

#include "server/config.h"

void log_init(enum log_level level);
void log_msg(enum log_level level, const char *msg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copy s into out as a logfmt value: quoted, with " and \ escaped and
 * control bytes shown as \xHH; truncated to fit. Returns out. */
const char *log_quote(const char *s, size_t len, char *out, size_t out_len);

#define log_debug(msg, ...) log_msg(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_msg(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_msg(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_msg(LOG_ERROR, msg, __VA_ARGS__)

#endif

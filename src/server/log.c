/* log.c - logfmt lines, one write(2) each. */
#include "server/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024u

/* Set before any thread starts, and by CONFIG SET log-level (relaxed: a
 * line races a change at worst by one line). */
static _Atomic int log_threshold = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum log_level level) { atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed); }

const char *log_quote(const char *s, size_t len, char *out, size_t out_len)
{
	size_t w = 0;
	if (out_len < 3) {
		if (out_len)
			out[0] = '\0';
		return out;
	}
	out[w++] = '"';
	for (size_t i = 0; i < len && w + 5 < out_len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[w++] = '\\';
			out[w++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			w += (size_t)snprintf(out + w, out_len - w, "\\x%02x", c);
		} else {
			out[w++] = (char)c;
		}
	}
	out[w++] = '"';
	out[w] = '\0';
	return out;
}

void log_msg(enum log_level level, const char *msg, const char *fmt, ...)
{
	if ((int)level < atomic_load_explicit(&log_threshold, memory_order_relaxed))
		return;
	char line[LOG_LINE_MAX];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char quoted[256];
	int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000, level_names[level], log_quote(msg, strlen(msg), quoted, sizeof(quoted)));
	if (n < 0)
		return;
	size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	if (fmt && *fmt && used + 2 < sizeof(line)) {
		line[used++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
		va_end(ap);
		if (m > 0)
			used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
	}
	if (used >= sizeof(line) - 1)
		used = sizeof(line) - 2;
	line[used++] = '\n';
	ssize_t wr = write(STDERR_FILENO, line, used);
	(void)wr; /* nowhere to report a failed log write */
}

/* config.h - the node server's configuration: defaults, config file, flags.
 *
 * Contract:
 * - config_defaults() fills every field with a value that works on a laptop
 *   with no config file (loopback, port 6379, ./data/dynvme.img).
 * - config_load_file() and config_set() take Redis-style directives
 *   ("port 6380", "requirepass \"s3cret\""); flags use the same names with
 *   two dashes. Each returns 0 or -EINVAL with a message naming the
 *   directive and the reason in err (never a partial update of a field).
 * - config_validate() checks the relations between fields once all sources
 *   are applied. The struct is read-only once the server starts: it is the
 *   only state shared by every thread without synchronisation.
 */
#ifndef DV_SERVER_CONFIG_H
#define DV_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/cluster_config.h"

#define CONFIG_STR_MAX 256u
#define CONFIG_THREADS_MAX 16u
#define CONFIG_ERR_MAX 256u

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

struct server_config {
	char bind[CONFIG_STR_MAX];      /* numeric IPv4/IPv6 address */
	uint16_t port;                  /* RESP */
	uint16_t http_port;             /* /metrics, /health, /status; 0 = off */
	char data[CONFIG_STR_MAX];      /* data file or block device */
	uint64_t size_bytes;            /* create a missing data file this large */
	uint64_t zone_bytes;            /* when formatting; 0 = engine default */
	unsigned threads;               /* network threads, each with its own ring */
	char requirepass[CONFIG_STR_MAX]; /* empty: no password */
	bool protected_mode;            /* refuse non-loopback clients without a password */
	unsigned maxclients;
	unsigned timeout_s;             /* close idle clients after this; 0 = never */
	unsigned auth_timeout_s;        /* close idle clients not authenticated after this; 0 = never */
	unsigned request_timeout_s;     /* close a client whose request stays incomplete */
	uint64_t max_request_bytes;     /* one request (client query buffer) */
	uint64_t max_reply_bytes;       /* one reply, and a client's unsent replies */
	unsigned max_pipeline;          /* commands of one client in flight */
	uint64_t cache_bytes;           /* value cache in RAM; 0 = off */
	unsigned write_batches;         /* group-commit writes in flight */
	enum log_level log_level;
	struct cluster_config cluster;  /* cluster mode when cluster.node_id != 0 */
};

void config_defaults(struct server_config *c);
/* Apply one directive: name (without dashes) and its value. */
int config_set(struct server_config *c, const char *name, const char *value, char *err, size_t err_len);
int config_load_file(struct server_config *c, const char *path, char *err, size_t err_len);
int config_validate(const struct server_config *c, char *err, size_t err_len);
/* Value of a directive as text (CONFIG GET); false when unknown. Secrets
 * are never returned. */
bool config_get(const struct server_config *c, const char *name, char *out, size_t out_len);
/* Names of the directives, NULL-terminated (CONFIG GET patterns, --help). */
extern const char *const config_names[];

#endif

/* server.h - one dynvme node: `dynvme serve`.
 *
 * Contract: server_run() opens (or creates and formats) the data file or
 * device, recovers the store, listens for RESP clients and HTTP, and serves
 * until SIGTERM or SIGINT; then it stops accepting, finishes the commands
 * in flight (every acknowledged write is durable), sends their replies and
 * returns 0. A failure to start returns a negative error after logging it.
 */
#ifndef DV_SERVER_H
#define DV_SERVER_H

#include "server/config.h"

#define DYNVME_VERSION "0.3.0"
/* What HELLO and INFO report as redis_version, for clients that check it. */
#define DYNVME_REDIS_COMPAT_VERSION "7.0.0"

int server_run(const struct server_config *cfg);

#endif

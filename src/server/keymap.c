/* keymap.c - the single-node key layout of a data file (contract: keymap.h). */
#include "server/keymap.h"

#include <errno.h>

#include "base/error.h"
#include "server/log.h"
#include "server/server_int.h"

#define KEYMAP_POLL_ROUNDS_MAX 1000000u

struct sync_op {
	struct store_op op;
	bool done;
};

static void sync_done(struct store_op *op) { ((struct sync_op *)op)->done = true; }

/* One store op to its end (start-up: nothing else runs on the store). */
static int sync_run(struct store *s, struct sync_op *w)
{
	w->op.done = sync_done;
	int err = store_submit(s, &w->op);
	for (unsigned i = 0; !err && !w->done; i++) {
		if (i >= KEYMAP_POLL_ROUNDS_MAX)
			return -ETIMEDOUT;
		int rc = store_poll(s, true);
		if (rc < 0)
			return rc;
	}
	return err ? err : w->op.result;
}

int keymap_open(struct server *srv)
{
	struct store_stats st;
	store_get_stats(srv->store, &st);
	if (st.flush_seq == 0 && st.keys > st.tombstones) {
		srv->key_prefix = -1;
		log_warn("data file of dynvme 0.3 or before: keys kept as they are (1..1024 bytes, no empty key); "
			 "FLUSHALL and FLUSHDB are refused on it (see docs/ARCHITECTURE.md, key layout)",
			 "path=%s keys=%llu", srv->cfg->data, (unsigned long long)(st.keys - st.tombstones));
		return 0;
	}
	srv->key_prefix = KEYMAP_DB0;
	if (st.flush_seq)
		return 0;
	/* A new (or empty) file: its flush point says "layout 1" from now on. */
	struct sync_op w = {.op = {.kind = STORE_FLUSH}};
	int err = sync_run(srv->store, &w);
	if (err)
		log_error("cannot mark the data file's key layout", "path=%s error=\"%s\"", srv->cfg->data,
			  dv_strerror(err));
	return err;
}

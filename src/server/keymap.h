/* keymap.h - how a single node keeps a client's key in the store.
 *
 * Layout 1 (every data file created by dynvme 0.4 or later): the store key
 * is one byte, the database (0), then the client's key, so every Redis key
 * fits, the empty key included: 0..1023 bytes (the store takes 1..1024).
 * It is the store key of keyspace 0 in cluster mode (cnode_store_key), so
 * both modes share one shape.
 * Layout 0 (data files of dynvme 0.3 and before): the store key is the
 * client's key itself, 1..1024 bytes; the empty key is refused.
 * Which one a data file has: a file created by 0.4 gets a flush point
 * (store.h, FLUSH) when it is first opened empty, and only layout 1 ever
 * flushes (FLUSHALL is refused on a layout 0 file: keys written after it
 * would be read with the wrong layout once restarted); so a file with a
 * flush point, or with no live key, is layout 1 (flushed now if it has no
 * flush point yet), and one with keys and no flush point is layout 0.
 *
 * Contract: keymap_open() runs once, at start, on the store's thread
 * before any other; srv->key_prefix is then fixed for the process: the
 * byte before every store key (0), or -1 (layout 0, and cluster mode,
 * where the cluster node adds its keyspace byte itself).
 */
#ifndef DV_SERVER_KEYMAP_H
#define DV_SERVER_KEYMAP_H

struct server;

#define KEYMAP_DB0 0
/* 0, or an error that stops the start (logged). */
int keymap_open(struct server *srv);

#endif

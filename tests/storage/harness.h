/* harness.h - synchronous wrappers over the completion-based store API for
 * tests: each call submits one op and polls until it completes. */
#ifndef DV_TEST_HARNESS_H
#define DV_TEST_HARNESS_H

#include <stdint.h>

#include "storage/store.h"

struct h_value {
	uint8_t bytes[1u << 20];
	uint32_t len;
	uint64_t seq, expire_ms;
	uint8_t meta[256];
	uint32_t meta_len;
};

/* PUT/DEL/GET and wait; return the op's result. GET copies into out. */
int h_put(struct store *s, const char *key, const void *val, uint32_t len);
int h_put_ex(struct store *s, const char *key, const void *val, uint32_t len, uint64_t expire_ms,
	     enum store_cond cond);
int h_del(struct store *s, const char *key);
/* PUT (val, len) or DEL with a condition; *seq (if not NULL) gets out.seq,
 * the seq of the record written when the result is 0. */
int h_write_cond(struct store *s, enum store_op_kind kind, const char *key, const void *val, uint32_t len,
		 enum store_cond cond, uint64_t cond_seq, uint64_t *seq);
int h_get(struct store *s, const char *key, struct h_value *out);
/* FLUSH and wait; *seq (if not NULL) gets the flush point. */
int h_flush(struct store *s, uint64_t *seq);
/* GET key and CHECK that it holds the string val (NULL: absent). */
void h_expect(struct store *s, const char *key, const char *val);

/* Close s and open a store on a fresh memory device holding a copy of what
 * *dev held (its fault settings dropped): a clean restart. */
struct store *h_reopen_mem(struct store *s, struct dev **dev, const struct store_config *cfg);
/* A formatted store on a fresh memory device of size bytes. */
void h_open_mem(struct store **s, struct dev **dev, uint64_t size, uint64_t zone_bytes);
/* The same with a configuration (format_if_empty and zone_bytes are set). */
void h_open_mem_cfg(struct store **s, struct dev **dev, uint64_t size, uint64_t zone_bytes,
		    struct store_config cfg);
/* Value bytes that depend on (key number, version): reads can be verified. */
void h_fill_value(uint8_t *v, uint32_t len, uint64_t key_no, uint64_t version);
/* Run the offline check (store_check must run to its end); its log goes to
 * stderr, after what, when it found damage. */
struct store_check_report h_check(struct dev *dev, const char *what);
/* Every index payload of the store, sorted (white-box comparison). */
uint64_t h_index_payloads(struct store *s, uint64_t **out);
/* CHECKs that stats keys and tombstones equal the index's entries and its
 * tombstone entries (white-box); returns the tombstones. */
uint64_t h_check_tombstones(struct store *s, const char *what);

/* Empty a test device (DV_TEST_DEVICE) so a store is formatted on it:
 * every sequential zone reset, the fixed superblock copies' area (the
 * first MiB) zeroed. */
void h_wipe(struct dev *dev);

#endif

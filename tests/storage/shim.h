/* shim.h - a test device in front of another one (usually a dev_mem) that
 * misbehaves only in ways dev.h allows: it holds back chosen requests while
 * the others complete (completion order is the device's), and flips a bit
 * in the data of a chosen read (in transit: the medium stays intact), or
 * fails a chosen read with -EIO.
 * Requests are matched by req->ctx, the owner the store gives each request
 * (a store op for candidate reads), so a test can target one operation.
 * Data is copied when a request completes: a held read sees the medium as
 * it is when released. Single-threaded; no clone, no notify eventfd. */
#ifndef DV_TEST_SHIM_H
#define DV_TEST_SHIM_H

#include <stdbool.h>
#include <stdint.h>

#include "io/dev.h"

/* The shim forwards to inner, which stays the caller's (close it after). */
struct dev *shim_open(struct dev *inner);
/* Hold every request whose ctx is ctx (NULL: hold nothing more, and let
 * the held ones go at the next poll). */
void shim_hold(struct dev *shim, const void *ctx);
/* Let the requests held now complete at the next poll; later ones with
 * the same ctx are held again. */
void shim_release(struct dev *shim);
/* Requests held right now. */
unsigned shim_held(const struct dev *shim);
/* Flip one bit of the next n successful reads whose ctx is ctx (in the
 * delivered buffer, at byte off of the read). */
void shim_flip_reads(struct dev *shim, const void *ctx, unsigned n, uint32_t off);
/* Flip a bit of the byte at device offset dev_off in the next n successful
 * reads that cover it, whoever reads (recovery's synchronous reads too),
 * another bit each time (noise in transit: two reads never agree). Up to 8
 * offsets at once; a call for an offset already set replaces it. */
void shim_flip_reads_at(struct dev *shim, uint64_t dev_off, unsigned n);
/* The same, leaving the first skip reads that cover it intact. */
void shim_flip_reads_at_after(struct dev *shim, uint64_t dev_off, unsigned skip, unsigned n);
/* The next n reads that cover dev_off complete with -EIO (transient). */
void shim_fail_reads_at(struct dev *shim, uint64_t dev_off, unsigned n);
/* Reads flipped, and failed, so far. */
unsigned shim_flipped(const struct dev *shim);
unsigned shim_failed(const struct dev *shim);

#endif

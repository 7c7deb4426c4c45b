/* error.h - dynvme's own error codes, in a range that cannot collide with
 * errno values. Functions return 0 or a negative code: -errno or -DV_E*. */
#ifndef DV_ERROR_H
#define DV_ERROR_H

enum dv_error {
	DV_EFIRST = 10000,
	DV_ECORRUPT = 10000, /* checksum or structure mismatch: data is damaged */
	DV_ENOTFOUND,        /* key absent, deleted or expired */
	DV_EFULL,            /* no free zone and nothing to collect */
	DV_EFATAL,           /* device entered the sticky failed state */
	DV_EFORMAT,          /* not a dynvme device (no magic) */
	DV_ETOOBIG,          /* key, value or metadata over its limit */
	DV_EVERSION,         /* a dynvme device of another format version */
	DV_ELAST
};

/* Message for any code this project returns (negative errno or -DV_E*). */
const char *dv_strerror(int err);

#endif

/* assert.h - invariant checks that stay on in release builds.
 *
 * DV_ASSERT is for invariants whose failure means a bug or a broken device:
 * it prints file, line and the expression, then aborts. It is never used
 * for bad input, which gets an error code instead. DV_DEBUG_ASSERT is for
 * expensive checks and only compiled with -DDV_DEBUG.
 */
#ifndef DV_ASSERT_H
#define DV_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define DV_ASSERT(expr)                                                          \
	do {                                                                     \
		if (__builtin_expect(!(expr), 0)) {                              \
			fprintf(stderr, "dynvme: assertion failed: %s (%s:%d %s)\n", \
				#expr, __FILE__, __LINE__, __func__);            \
			abort();                                                 \
		}                                                                \
	} while (0)

#ifdef DV_DEBUG
#define DV_DEBUG_ASSERT(expr) DV_ASSERT(expr)
#else
#define DV_DEBUG_ASSERT(expr) ((void)0)
#endif

#define DV_UNUSED(x) ((void)(x))
#define DV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define DV_ROUND_UP(x, a) ((((x) + (a)-1) / (a)) * (a))

#endif

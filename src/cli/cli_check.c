/* cli_check.c - dynvme check PATH */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli/cli.h"
#include "io/dev.h"
#include "storage/store.h"

int cli_parse_size(const char *s, unsigned long long *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end != '\0' || (shift && v > (~0ull >> shift)))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int cli_check(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: dynvme check PATH\n"
				"Verifies a dynvme data file or device without changing it.\n"
				"Exit status: 0 clean, 1 damage found, 2 could not check.\n");
		return 2;
	}
	struct dev *dev = NULL;
	struct dev_open_opts o = {.read_only = true};
	int err = dev_open_path(&dev, argv[1], &o);
	if (err) {
		fprintf(stderr, "dynvme check: %s: %s\n", argv[1], dv_strerror(err));
		return 2;
	}
	struct store_check_report rep;
	err = store_check(dev, stdout, &rep);
	dev_close(dev);
	if (err) {
		fprintf(stderr, "dynvme check: %s: %s\n", argv[1], dv_strerror(err));
		return 2;
	}
	printf("%s: %s\n", argv[1], rep.damage ? "DAMAGED" : "clean");
	return rep.damage ? 1 : 0;
}

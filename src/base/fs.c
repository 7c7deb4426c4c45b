#include "base/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int dv_fsync_parent(const char *path)
{
	char copy[PATH_MAX];
	if ((size_t)snprintf(copy, sizeof(copy), "%s", path) >= sizeof(copy))
		return -ENAMETOOLONG;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = fsync(fd) ? -errno : 0;
	close(fd);
	return err;
}

int dv_mkdir_durable(const char *path, mode_t mode)
{
	if (mkdir(path, mode))
		return -errno;
	return dv_fsync_parent(path);
}

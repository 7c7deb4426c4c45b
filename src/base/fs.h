/* fs.h - making the creation of a file or directory durable.
 *
 * A new file's data and inode are synced by fsync() of the file, but its
 * directory entry lives in the parent directory: until the parent is
 * synced too, a power cut may lose the file (with the acknowledged writes
 * that went to it). Whoever creates a file or directory that must survive
 * calls dv_fsync_parent() after creating it. 0 or a negative errno. */
#ifndef DV_FS_H
#define DV_FS_H

#include <sys/types.h>

/* fsync() the directory that holds path ("." for a bare name). */
int dv_fsync_parent(const char *path);
/* mkdir(path, mode), then fsync its parent: 0 when created, -EEXIST when
 * something is there already, another -errno otherwise. */
int dv_mkdir_durable(const char *path, mode_t mode);

#endif

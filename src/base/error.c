#include "base/error.h"

#include <string.h>

const char *dv_strerror(int err)
{
	int code = err < 0 ? -err : err;

	switch (code) {
	case DV_ECORRUPT: return "data corrupt (checksum mismatch)";
	case DV_ENOTFOUND: return "not found";
	case DV_EFULL: return "device full: no free zone";
	case DV_EFATAL: return "device failed earlier; refusing further writes";
	case DV_EFORMAT: return "not a dynvme device";
	case DV_EVERSION: return "a dynvme device of another format version: not opened, not formatted";
	case DV_ETOOBIG: return "key, value or metadata too large";
	default: return strerror(code);
	}
}

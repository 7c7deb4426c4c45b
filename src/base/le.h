/* le.h - little-endian fields of the on-disk formats (records, superblock,
 * zone index). 16/32/64-bit fields are copied as they are: dynvme runs on
 * little-endian hosts only (checked below); 24/48-bit fields byte by byte. */
#ifndef DV_LE_H
#define DV_LE_H

#include <stdint.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "on-disk formats are little-endian");

static inline void le_put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void le_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void le_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t le_get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t le_get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t le_get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static inline void le_put24(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 3; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void le_put48(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 6; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t le_get24(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static inline uint64_t le_get48(const uint8_t *p)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 6; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#endif

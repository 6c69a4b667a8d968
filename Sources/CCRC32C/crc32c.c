// CRC-32C (Castagnoli) for Kafka record batches.
//
// Three implementations behind one entry point:
//  - x86-64 with SSE4.2: the CRC32 instruction over three independent streams at once
//    (the instruction has a latency of 3 cycles and a throughput of 1 per cycle, so three
//    streams keep it busy), the three partial CRCs combined with "shift by N zero bytes"
//    tables. Selected at run time with CPUID; the function is compiled with
//    __attribute__((target("sse4.2"))) so the package needs no global compiler flags.
//  - AArch64 where the compiler targets the CRC extension (Apple silicon, -march=armv8.1-a+):
//    the same interleaved loop with __crc32cd.
//  - everywhere else: portable slicing-by-8 tables.
//
// The combination technique (multiplication modulo the CRC polynomial, x^(2^k) tables) is the
// one zlib uses for crc32_combine and Mark Adler describes for interleaved CRC-32C.

#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define PETREL_CRC_X86 1
#include <cpuid.h>
#include <nmmintrin.h>
#define HW_TARGET __attribute__((target("sse4.2")))
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#define PETREL_CRC_ARM 1
#include <arm_acle.h>
#define HW_TARGET
#endif

#define POLY 0x82F63B78u

// Block sizes for the interleaved hardware loop: three streams of LONG bytes, then three of
// SHORT bytes, then one stream for the rest.
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t sw_table[8][256];
static uint32_t long_shift[4][256];
static uint32_t short_shift[4][256];
static uint32_t x2n_table[32];
static int hw_available;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

// a * b modulo the polynomial, both in the reflected representation (bit 31 is x^0).
static uint32_t multmodp(uint32_t a, uint32_t b) {
    uint32_t m = (uint32_t)1 << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
    }
    return p;
}

// x^(n * 2^k) modulo the polynomial.
static uint32_t x2nmodp(size_t n, unsigned k) {
    uint32_t p = (uint32_t)1 << 31; // x^0
    while (n) {
        if (n & 1) p = multmodp(x2n_table[k & 31], p);
        n >>= 1;
        k++;
    }
    return p;
}

// Tables that multiply a 32-bit CRC register by x^(8 * len), i.e. feed it len zero bytes.
static void make_shift_table(uint32_t table[4][256], size_t len) {
    uint32_t op = x2nmodp(len, 3);
    for (unsigned k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            table[k][b] = multmodp(op, b << (8 * k));
}

__attribute__((unused)) static inline uint32_t shift_crc(const uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^
           table[3][crc >> 24];
}

#if PETREL_CRC_X86
static int detect_hw(void) {
#if defined(__SSE4_2__)
    return 1;
#else
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_SSE4_2) != 0;
#endif
}
#elif PETREL_CRC_ARM
static int detect_hw(void) { return 1; }
#else
static int detect_hw(void) { return 0; }
#endif

static void init_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        sw_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = sw_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = sw_table[0][c & 0xff] ^ (c >> 8);
            sw_table[k][n] = c;
        }
    }
    uint32_t p = (uint32_t)1 << 30; // x^1
    x2n_table[0] = p;
    for (int n = 1; n < 32; n++) x2n_table[n] = p = multmodp(p, p);
    make_shift_table(long_shift, LONG_BLOCK);
    make_shift_table(short_shift, SHORT_BLOCK);
    hw_available = detect_hw();
}

static inline void ensure_init(void) { pthread_once(&init_once, init_tables); }

// Little-endian 64-bit load from any alignment, on any byte order.
static inline uint64_t load_le64(const unsigned char *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
#endif
}

static uint32_t crc32c_sw_raw(uint32_t crc, const unsigned char *p, size_t len) {
    while (len && ((uintptr_t)p & 7)) {
        crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
              sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
              sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
              sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

uint32_t petrel_crc32c_sw(uint32_t crc, const void *data, size_t len) {
    ensure_init();
    return ~crc32c_sw_raw(~crc, (const unsigned char *)data, len);
}

#if PETREL_CRC_X86 || PETREL_CRC_ARM

#if PETREL_CRC_X86
#define CRC_U8(c, v) _mm_crc32_u8((uint32_t)(c), (v))
#if defined(__x86_64__) || defined(_M_X64)
#define CRC_WORD(c, p) ((uint32_t)_mm_crc32_u64((c), load_le64(p)))
#else
#define CRC_WORD(c, p) \
    _mm_crc32_u32(_mm_crc32_u32((c), (uint32_t)load_le64(p)), (uint32_t)(load_le64(p) >> 32))
#endif
#else
#define CRC_U8(c, v) __crc32cb((c), (v))
#define CRC_WORD(c, p) __crc32cd((c), load_le64(p))
#endif

HW_TARGET
static uint32_t crc32c_hw_raw(uint32_t crc, const unsigned char *p, size_t len) {
    uint32_t c0 = crc;
    while (len && ((uintptr_t)p & 7)) {
        c0 = CRC_U8(c0, *p++);
        len--;
    }
    while (len >= 3 * LONG_BLOCK) {
        uint32_t c1 = 0, c2 = 0;
        const unsigned char *end = p + LONG_BLOCK;
        do {
            c0 = CRC_WORD(c0, p);
            c1 = CRC_WORD(c1, p + LONG_BLOCK);
            c2 = CRC_WORD(c2, p + 2 * LONG_BLOCK);
            p += 8;
        } while (p < end);
        c0 = shift_crc(long_shift, c0) ^ c1;
        c0 = shift_crc(long_shift, c0) ^ c2;
        p += 2 * LONG_BLOCK;
        len -= 3 * LONG_BLOCK;
    }
    while (len >= 3 * SHORT_BLOCK) {
        uint32_t c1 = 0, c2 = 0;
        const unsigned char *end = p + SHORT_BLOCK;
        do {
            c0 = CRC_WORD(c0, p);
            c1 = CRC_WORD(c1, p + SHORT_BLOCK);
            c2 = CRC_WORD(c2, p + 2 * SHORT_BLOCK);
            p += 8;
        } while (p < end);
        c0 = shift_crc(short_shift, c0) ^ c1;
        c0 = shift_crc(short_shift, c0) ^ c2;
        p += 2 * SHORT_BLOCK;
        len -= 3 * SHORT_BLOCK;
    }
    while (len >= 8) {
        c0 = CRC_WORD(c0, p);
        p += 8;
        len -= 8;
    }
    while (len--) c0 = CRC_U8(c0, *p++);
    return c0;
}

#endif

uint32_t petrel_crc32c(uint32_t crc, const void *data, size_t len) {
    ensure_init();
#if PETREL_CRC_X86 || PETREL_CRC_ARM
    if (hw_available) return ~crc32c_hw_raw(~crc, (const unsigned char *)data, len);
#endif
    return ~crc32c_sw_raw(~crc, (const unsigned char *)data, len);
}

int petrel_crc32c_hw_available(void) {
    ensure_init();
    return hw_available;
}

uint32_t petrel_crc32c_combine(uint32_t crcA, uint32_t crcB, size_t lenB) {
    ensure_init();
    return multmodp(x2nmodp(lenB, 3), crcA) ^ crcB;
}

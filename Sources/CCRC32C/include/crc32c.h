#ifndef PETREL_CRC32C_H
#define PETREL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), "extend" style as Kafka uses it:
/// start with crc = 0, feed the previous result back in to continue over more bytes.
/// petrel_crc32c(0, "123456789", 9) == 0xE3069283.
/// Picks the fastest implementation for this CPU (SSE4.2 on x86-64, ARMv8 CRC where the
/// compiler targets it) and falls back to a portable slicing-by-8 table otherwise.
uint32_t petrel_crc32c(uint32_t crc, const void *data, size_t len);

/// The portable slicing-by-8 implementation, whatever the CPU supports. For tests and benchmarks.
uint32_t petrel_crc32c_sw(uint32_t crc, const void *data, size_t len);

/// 1 if petrel_crc32c uses a hardware CRC instruction on this CPU, 0 if it uses the table.
int petrel_crc32c_hw_available(void);

/// The CRC of the concatenation A||B given crcA = crc(A), crcB = crc(B) and lenB = |B|.
uint32_t petrel_crc32c_combine(uint32_t crcA, uint32_t crcB, size_t lenB);

#ifdef __cplusplus
}
#endif

#endif

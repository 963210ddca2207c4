// CRC32C (Castagnoli, the iSCSI/ext4 polynomial) of record payloads, for links that opt in to a per-record
// checksum (record.h kFlagChecksum). SSE4.2's crc32 instruction where the CPU has it (chosen once, at first
// use), a slicing-by-8 table otherwise; both give the same value (native/test/fabric_record_test.cc checks the
// standard test vector and hardware against software on random buffers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rdmaq::crc32c {

// Tables of the reflected polynomial 0x82F63B78, slicing-by-8 (8 KiB, built once).
struct Tables {
  uint32_t t[8][256];
  Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};

inline uint32_t software(uint32_t crc, const uint8_t* p, size_t n) {
  static const Tables tb;
  crc = ~crc;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= crc;  // little-endian: the low 4 bytes carry the running CRC
    crc = tb.t[7][w & 0xFF] ^ tb.t[6][(w >> 8) & 0xFF] ^ tb.t[5][(w >> 16) & 0xFF] ^ tb.t[4][(w >> 24) & 0xFF] ^
          tb.t[3][(w >> 32) & 0xFF] ^ tb.t[2][(w >> 40) & 0xFF] ^ tb.t[1][(w >> 48) & 0xFF] ^ tb.t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ tb.t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

// Shifting a raw CRC register over n zero bytes is linear in the register: a table per register byte
// (4 × 256 entries) does it in 4 lookups. Built once per block length, by stepping each entry over the zeros.
struct ZeroShift {
  uint32_t t[4][256];
  explicit ZeroShift(size_t n) {
    static const Tables tb;
    for (int i = 0; i < 4; ++i)
      for (uint32_t j = 0; j < 256; ++j) {
        uint32_t r = j << (8 * i);
        for (size_t k = 0; k < n; ++k) r = (r >> 8) ^ tb.t[0][r & 0xFF];
        t[i][j] = r;
      }
  }
  uint32_t operator()(uint32_t r) const {
    return t[0][r & 0xFF] ^ t[1][(r >> 8) & 0xFF] ^ t[2][(r >> 16) & 0xFF] ^ t[3][r >> 24];
  }
};

#if defined(__x86_64__)
// crc32 has a 3-cycle latency and a throughput of one per cycle: one dependent chain runs at a third of what
// the core can do. Payloads of 768 bytes and more run three chains over three adjacent blocks (the second and
// third starting from 0) and join them: reg(A‖B‖C) = shift(shift(reg(A), |B|) ^ reg(B), |C|) ^ reg(C).
constexpr size_t kLongBlock = 2048, kShortBlock = 256;

__attribute__((target("sse4.2"))) inline uint64_t chains3(uint64_t c0, const uint8_t*& p, size_t& n, size_t block,
                                                        const ZeroShift& shift) {
  while (n >= 3 * block) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < block; i += 8) {
      uint64_t a, b, c;
      std::memcpy(&a, p + i, 8);
      std::memcpy(&b, p + block + i, 8);
      std::memcpy(&c, p + 2 * block + i, 8);
      c0 = __builtin_ia32_crc32di(c0, a);
      c1 = __builtin_ia32_crc32di(c1, b);
      c2 = __builtin_ia32_crc32di(c2, c);
    }
    c0 = shift(static_cast<uint32_t>(shift(static_cast<uint32_t>(c0)) ^ c1)) ^ c2;
    p += 3 * block;
    n -= 3 * block;
  }
  return c0;
}

__attribute__((target("sse4.2"))) inline uint32_t hardware(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = static_cast<uint32_t>(~crc);
  if (n >= 3 * kShortBlock) {
    static const ZeroShift longShift(kLongBlock), shortShift(kShortBlock);
    c = chains3(c, p, n, kLongBlock, longShift);
    c = chains3(c, p, n, kShortBlock, shortShift);
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
inline bool hasHardware() {
  static const bool yes = __builtin_cpu_supports("sse4.2");
  return yes;
}
#else
inline uint32_t hardware(uint32_t crc, const uint8_t* p, size_t n) { return software(crc, p, n); }
inline bool hasHardware() { return false; }
#endif

// CRC32C of n bytes (crc: the value of the bytes before, 0 to start).
inline uint32_t of(const uint8_t* p, size_t n, uint32_t crc = 0) {
  return hasHardware() ? hardware(crc, p, n) : software(crc, p, n);
}

}  // namespace rdmaq::crc32c

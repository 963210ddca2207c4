// A reader over libFuzzer's input: every take returns a value even when the input ran out (zeros then), so a
// target's decoding of its own input never fails and every byte string is a valid test case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fuzz {

class Input {
 public:
  Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  size_t left() const { return n_ - i_; }
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t u16() { return uint16_t(u8() | uint16_t(u8()) << 8); }
  uint32_t u32() { return uint32_t(u16()) | uint32_t(u16()) << 16; }
  uint64_t u64() { return uint64_t(u32()) | uint64_t(u32()) << 32; }
  // A position or sequence: mostly small (where the interesting arithmetic is), sometimes near the top of
  // the u64 range or anywhere.
  uint64_t pick64() {
    switch (u8() & 3) {
      case 0: return u8();
      case 1: return u16();
      case 2: return ~uint64_t(0) - u16();
      default: return u64();
    }
  }
  // Copies up to n bytes (zeros past the end of the input).
  void bytes(uint8_t* out, size_t n) {
    size_t k = n < left() ? n : left();
    if (k) std::memcpy(out, d_ + i_, k);
    if (k < n) std::memset(out + k, 0, n - k);
    i_ += k;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

}  // namespace fuzz

// A broken invariant: print it and abort, so libFuzzer keeps the input as a crash.
#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

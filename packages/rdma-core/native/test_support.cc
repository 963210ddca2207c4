// Test support, not part of the queue: the payloads the tests send (testSeal writes [u64 checksum of the
// rest][pattern from seed], testCheck verifies one), exported on the addon for test/fixtures.
#include "test_support.h"

#include <cstring>

#include "hash.h"
#include "js_args.h"

namespace rdmaq::test_support {

// Test payloads: [u64 checksum of the rest][pattern from seed]; short records are pattern only.
inline void patternFill(uint8_t* p, uint64_t len, uint64_t seed) {
  // Additive pattern: no dependency chain beyond one add, so the compiler vectorises it (tens of GB/s).
  const uint64_t base = (seed + 1) * hash::P1;
  uint64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t x = base + i * hash::P3;
    std::memcpy(p + i, &x, 8);
  }
  const uint64_t x = base + i * hash::P3;
  for (uint64_t k = 0; i < len; ++i, ++k) p[i] = static_cast<uint8_t>(x >> (8 * k));
}

Napi::Value TestSeal(const Napi::CallbackInfo& info) {
  uint64_t len;
  uint8_t* p = const_cast<uint8_t*>(viewOf(info, len));
  uint64_t seed = toU64(info[3], "seed");
  if (len < 8) {
    patternFill(p, len, seed);
  } else {
    patternFill(p + 8, len - 8, seed);
    uint64_t h = hash::hash64(p + 8, len - 8, seed);
    std::memcpy(p, &h, 8);
  }
  return info.Env().Undefined();
}

Napi::Value TestCheck(const Napi::CallbackInfo& info) {
  uint64_t len;
  const uint8_t* p = viewOf(info, len);
  uint64_t seed = toU64(info[3], "seed");
  if (len < 8) {
    uint8_t want[8];
    patternFill(want, len, seed);
    return Napi::Boolean::New(info.Env(), std::memcmp(want, p, len) == 0);
  }
  uint64_t h;
  std::memcpy(&h, p, 8);
  return Napi::Boolean::New(info.Env(), h == hash::hash64(p + 8, len - 8, seed));
}

}  // namespace rdmaq::test_support

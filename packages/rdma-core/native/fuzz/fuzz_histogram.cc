// libFuzzer target: the latency histogram (native/histogram.h). Values are timestamps differences the peer
// influences (a record's send timestamp is written by the sender), so any u64 must land in a bucket, and the
// bucket layout (shared with packages/shared/src/histogram.ts) must hold for every value: the value's bucket
// covers it, buckets are ordered, and quantiles stay within the recorded min and max for every q.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../histogram.h"
#include "fuzz_input.h"

using rdmaq::Histogram;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  Histogram h;
  uint64_t lo = UINT64_MAX, hi = 0, n = 0;
  while (in.left() >= 9 && n < 4096) {
    const uint8_t op = in.u8();
    const uint64_t v = op & 1 ? in.u64() : in.u64() >> (op >> 2) % 64;  // every magnitude
    const uint32_t b = Histogram::bucketOf(v);
    FUZZ_CHECK(b < Histogram::kBuckets);
    const uint64_t c = v > Histogram::kMaxTrackable ? Histogram::kMaxTrackable : v;
    FUZZ_CHECK(Histogram::bucketLow(b) <= c && c - Histogram::bucketLow(b) < Histogram::bucketWidth(b));
    FUZZ_CHECK(b == 0 || Histogram::bucketLow(b - 1) < Histogram::bucketLow(b));
    if (op & 2) {
      h.record(v);
      ++n;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  FUZZ_CHECK(h.count() == n);
  if (n) FUZZ_CHECK(h.min() == lo && h.max() == hi);
  uint64_t total = 0;
  for (const auto& [i, c] : h.sparse()) {
    FUZZ_CHECK(i < Histogram::kBuckets && c > 0);
    total += c;
  }
  FUZZ_CHECK(total == n);
  // Quantiles for any q, including NaN, infinities and values outside [0, 1].
  double prev = -1;
  for (int i = 0; i < 4; ++i) {
    double q;
    const uint64_t bits = in.u64();
    std::memcpy(&q, &bits, 8);
    const double v = h.quantile(q);
    FUZZ_CHECK(!std::isnan(v));
    if (n) FUZZ_CHECK(v >= double(lo) && v <= double(hi));
    else FUZZ_CHECK(v == 0);
  }
  for (double q = 0; q <= 1.0; q += 0.125) {  // monotone in q
    const double v = h.quantile(q);
    FUZZ_CHECK(v >= prev);
    prev = v;
  }
  return 0;
}

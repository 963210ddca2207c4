// Log-linear latency histogram: the exact bucket layout of packages/shared/src/histogram.ts (SUB_BITS 7,
// 3712 buckets, values in integer ns), so sparse buckets from here merge bucket-wise in the agent and hub.
// A test (test/histogram.test.ts) pins bucketOf here to the TypeScript one.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace rdmaq {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSubCount = 1ull << kSubBits;  // 128
  static constexpr int kMaxExponent = 34;
  static constexpr uint64_t kMaxTrackable = (1ull << (kMaxExponent + 1)) - 1;  // ~34.4 s
  static constexpr uint32_t kBuckets = kSubCount + (kMaxExponent - kSubBits + 1) * kSubCount;  // 3712

  // index(v) = v for v < 128; else 128 + (e - 7) * 128 + (v >> (e - 7)) - 128 with e = floor(log2 v).
  static inline uint32_t bucketOf(uint64_t v) {
    if (v > kMaxTrackable) v = kMaxTrackable;
    if (v < kSubCount) return static_cast<uint32_t>(v);
    const int e = 63 - __builtin_clzll(v);
    const int shift = e - kSubBits;
    const uint64_t mantissa = v >> shift;  // in [128, 255]
    return static_cast<uint32_t>(kSubCount + static_cast<uint64_t>(shift) * kSubCount + (mantissa - kSubCount));
  }

  static inline uint64_t bucketLow(uint32_t index) {
    if (index < kSubCount) return index;
    const uint64_t shift = (index - kSubCount) / kSubCount;
    const uint64_t mantissa = kSubCount + (index - kSubCount) % kSubCount;
    return mantissa << shift;
  }
  static inline uint64_t bucketWidth(uint32_t index) {
    return index < kSubCount ? 1 : 1ull << ((index - kSubCount) / kSubCount);
  }
  // Midpoint, as the TS side reports it.
  static inline double bucketValue(uint32_t index) {
    const uint64_t w = bucketWidth(index);
    return w == 1 ? static_cast<double>(bucketLow(index)) : static_cast<double>(bucketLow(index)) + w / 2.0;
  }

  Histogram() : counts_(kBuckets, 0) {}

  // Hot path: a shift, a count-leading-zeros and an increment.
  inline void record(uint64_t v) {
    ++counts_[bucketOf(v)];
    ++count_;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  const std::vector<uint64_t>& counts() const { return counts_; }

  // Sparse [index, count] pairs, index ascending.
  std::vector<std::pair<uint32_t, uint64_t>> sparse() const {
    std::vector<std::pair<uint32_t, uint64_t>> out;
    for (uint32_t i = 0; i < kBuckets; ++i)
      if (counts_[i]) out.emplace_back(i, counts_[i]);
    return out;
  }

  // Nearest-rank quantile, clamped to the exact min/max (same rule as the TS Histogram). q outside [0, 1]
  // (or NaN) is taken as the nearest end: converting an out-of-range double to an integer is undefined
  // behaviour (fuzz_histogram; regression input in its corpus).
  double quantile(double q) const {
    if (count_ == 0) return 0;
    if (!(q > 0)) q = 0;
    if (q > 1) q = 1;
    const double r = q * static_cast<double>(count_) + 0.999999999;
    uint64_t rank = r >= static_cast<double>(count_) ? count_ : static_cast<uint64_t>(r);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        double v = bucketValue(i);
        if (v < static_cast<double>(min_)) v = static_cast<double>(min_);
        if (v > static_cast<double>(max_)) v = static_cast<double>(max_);
        return v;
      }
    }
    return static_cast<double>(max_);
  }

  void reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = 0;
    max_ = 0;
    min_ = UINT64_MAX;
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace rdmaq

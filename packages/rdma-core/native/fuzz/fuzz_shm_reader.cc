// libFuzzer target: the shm ring's consumer (RingReader, native/ring.h) against a hostile producer. The
// producer owns the ring bytes and the published tail, and the control block it shares also holds the head
// and sequence a (re)started consumer resumes from: all of it comes from the input, and the bytes may change
// between two reads. Whatever it writes, the reader must hand out only records that lie inside the ring and
// below the tail, in sequence, or report a bad header — never read outside the ring, never loop forever.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../ring.h"
#include "fuzz_input.h"

using namespace rdmaq;

namespace {

struct HostileRx final : RxTransport {
  uint8_t* ring;
  uint64_t cap, head0, seq0, tailNow = 0;
  uint64_t releasedHead = 0, releasedSeq = 0;
  HostileRx(uint8_t* r, uint64_t c, uint64_t h, uint64_t s) : ring(r), cap(c), head0(h), seq0(s) {}
  const char* transport() const override { return "fuzz"; }
  std::string provider() const override { return "fuzz"; }
  const uint8_t* data() override { return ring; }
  uint64_t capacity() const override { return cap; }
  uint64_t initialHead() override { return head0; }
  uint64_t initialSeq() override { return seq0; }
  uint64_t tail() override { return tailNow; }
  void release(uint64_t head, uint64_t nextSeq, bool) override {
    releasedHead = head;
    releasedSeq = nextSeq;
  }
  bool park(uint64_t) override { return false; }
  void unpark() override {}
  int readableFd() override { return -1; }
  void drainReadable() override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  // Small rings (32 B .. 4 KiB): every wrap and padding case is a few records away.
  const uint64_t cap = uint64_t(32) << (in.u8() % 8);
  const uint64_t head0 = in.pick64(), seq0 = in.pick64();
  // Exactly `cap` bytes on the heap: ASan reports any read past the ring.
  std::vector<uint8_t> ring(cap);
  in.bytes(ring.data(), cap);
  HostileRx rx(ring.data(), cap, head0, seq0);
  LinkCounters counters;
  RingReader r(&rx, &counters);
  FUZZ_CHECK(r.head() == head0 && r.nextSeq() == seq0);
  rx.tailNow = head0;

  for (int op = 0; op < 512 && !in.empty(); ++op) {
    switch (in.u8() % 6) {
      case 0:  // publish: the tail moves forward by a little
        rx.tailNow += in.u16() % (2 * cap + 1);
        break;
      case 1:  // a lying tail: anywhere
        rx.tailNow = in.pick64();
        break;
      case 2: {  // the producer writes bytes, possibly under the consumer's feet
        const uint64_t at = in.u16() % cap;
        const uint64_t n = in.u8() % (cap - at + 1);
        in.bytes(ring.data() + at, n);
        break;
      }
      case 3: {  // credit: published only when head moved
        const bool moved = r.head() != r.releasedHead();
        rx.releasedHead = rx.releasedSeq = ~uint64_t(0);
        r.release(in.u8() & 1);
        FUZZ_CHECK(r.releasedHead() == r.head());
        if (moved) FUZZ_CHECK(rx.releasedHead == r.head() && rx.releasedSeq == r.nextSeq());
        else FUZZ_CHECK(rx.releasedHead == ~uint64_t(0));
        break;
      }
      default: {  // read (and mostly consume) up to a few records
        const int want = 1 + in.u8() % 8;
        for (int i = 0; i < want; ++i) {
          const uint64_t headBefore = r.head(), seqBefore = r.nextSeq();
          RecordView v;
          const RingReader::Next k = r.next(v);
          if (k == RingReader::kNone) {
            FUZZ_CHECK(r.head() == r.cachedTail());
            break;
          }
          if (k == RingReader::kBad) {
            FUZZ_CHECK(!r.error().empty());
            FUZZ_CHECK(r.nextSeq() == seqBefore);
            break;
          }
          // A record: inside the ring, below the tail, in sequence, of a known non-padding type.
          FUZZ_CHECK(v.pos - headBefore < cap);  // modulo 2^64: positions may wrap
          FUZZ_CHECK(v.offset == (v.pos & (cap - 1)) + kHeaderSize);
          FUZZ_CHECK(v.offset + v.len <= cap);
          FUZZ_CHECK((v.size == recordSize(v.len) || v.size == recordSize(v.len, kFlagChecksum)) &&
                     (v.pos & (cap - 1)) + v.size <= cap);
          FUZZ_CHECK(r.cachedTail() - v.pos >= v.size);
          FUZZ_CHECK(v.type >= kData && v.type <= kMaxType && v.type != kPadding);
          FUZZ_CHECK(v.seq == seqBefore);
          // Touch every payload byte: an out-of-ring view is an ASan report.
          volatile uint8_t sink = 0;
          for (uint64_t b = 0; b < v.len; ++b) sink = sink ^ ring[v.offset + b];
          (void)sink;
          if (in.u8() % 4 == 0) break;  // looked at, not consumed: handed out again next time
          r.consume(v);
          FUZZ_CHECK(r.head() == v.pos + v.size && r.nextSeq() == seqBefore + 1);
        }
        break;
      }
    }
  }
  return 0;
}

// libFuzzer target: the shm ring's producer (RingWriter, native/ring.h) against a hostile consumer. The
// consumer owns the head (credit) word and created the control block the producer starts from (tail and
// sequence), so all of them come from the input, and the head may move anywhere between two reads. Claims
// come in every length, including more than the ring holds (a resend copies lengths out of an older ring,
// which may have been bigger). Whatever the consumer does, a claim must lie inside the ring, and never loop.
#include <cstdint>
#include <vector>

#include "../ring.h"
#include "fuzz_input.h"

using namespace rdmaq;

namespace {

struct HostileTx final : TxTransport {
  fuzz::Input* in;
  uint8_t* ring;
  uint64_t cap, tail0, seq0;
  uint64_t headNow = 0;
  HostileTx(fuzz::Input* i, uint8_t* r, uint64_t c, uint64_t t, uint64_t s) : in(i), ring(r), cap(c), tail0(t), seq0(s) {}
  const char* transport() const override { return "fuzz"; }
  std::string provider() const override { return "fuzz"; }
  uint8_t* data() override { return ring; }
  uint64_t capacity() const override { return cap; }
  uint64_t head() override {
    // The consumer's word: left alone, moved a little, or anywhere.
    switch (in->u8() % 4) {
      case 0: break;
      case 1: headNow += in->u16() % (cap + 1); break;
      case 2: headNow -= in->u16() % (cap + 1); break;
      default: headNow = in->pick64(); break;
    }
    return headNow;
  }
  uint64_t initialTail() override { return tail0; }
  uint64_t initialSeq() override { return seq0; }
  bool publish(uint64_t, uint64_t, uint64_t) override { return in->u8() % 8 != 0; }
  bool armWritable(uint64_t) override { return false; }
  void disarmWritable() override {}
  int writableFd() override { return -1; }
  void drainWritable() override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint64_t cap = uint64_t(32) << (in.u8() % 8);  // 32 B .. 4 KiB
  std::vector<uint8_t> ring(cap);                       // exactly the ring: ASan reports a claim past it
  const uint64_t tail0 = in.pick64(), seq0 = in.pick64();
  HostileTx tx(&in, ring.data(), cap, tail0, seq0);
  tx.headNow = in.pick64();
  LinkCounters counters;
  RingWriter w(&tx, &counters);

  for (int op = 0; op < 256 && !in.empty(); ++op) {
    switch (in.u8() % 4) {
      case 0:
      case 1: {
        uint64_t len;
        switch (in.u8() % 3) {
          case 0: len = in.u8() % (maxPayloadFor(cap) + 1); break;  // what send() allows
          case 1: len = in.u16() % (2 * cap + 1); break;           // a resend from a bigger ring
          default: len = in.u32(); break;
        }
        const uint64_t tailBefore = w.tail();
        const int64_t off = w.claim(len, kData, 0);
        if (off < 0) {
          FUZZ_CHECK(w.tail() == tailBefore);
          break;
        }
        FUZZ_CHECK(uint64_t(off) >= kHeaderSize && uint64_t(off) + len <= cap);
        FUZZ_CHECK(w.tail() - tailBefore >= recordSize(len) && w.tail() - tailBefore <= cap + recordSize(len));
        // The caller copies the payload in: every byte must be ring memory (ASan).
        std::memset(ring.data() + off, 0x5a, len);
        if (in.u8() % 4 == 0) w.shrinkLast(in.u16() % (len + 2));
        break;
      }
      case 2:
        w.publish();
        break;
      default:
        (void)w.fits(in.u16() % (2 * cap + 1));
        break;
    }
  }
  return 0;
}

// libFuzzer target: honest producer, two consumers, one ring. RingWriter (native/ring.h) writes records of
// fuzz-chosen lengths and types (claims, shrinks, publishes when it likes); the shm reader (RingReader) and
// the fabric receiver's parser (ParseRecords, native/fabric_record.h) both read the same bytes up to the
// published tail and must hand out exactly the records written — same sequence, length, type and payload —
// with no bad header, no gap and no duplicate, through every wrap, PADDING record and implicit padding.
// The producer's credit is the slower consumer's head, so neither consumer's bytes are overwritten early.
#include <cstdint>
#include <vector>

#include "../fabric_parse.h"
#include "../ring.h"
#include "fuzz_input.h"

namespace {

struct Written {
  uint64_t len;
  uint16_t type;
};

struct Shared {
  std::vector<uint8_t> ring;
  uint64_t cap = 0, start = 0, startSeq = 1;
  uint64_t tail = 0, tailSeq = 1;   // published by the producer
  uint64_t shmHead = 0, fabHead = 0;  // released by each consumer
  uint64_t head() const { return shmHead - start <= fabHead - start ? shmHead : fabHead; }
};

struct Tx final : rdmaq::TxTransport {
  Shared* s;
  explicit Tx(Shared* sh) : s(sh) {}
  const char* transport() const override { return "fuzz"; }
  std::string provider() const override { return "fuzz"; }
  uint8_t* data() override { return s->ring.data(); }
  uint64_t capacity() const override { return s->cap; }
  uint64_t head() override { return s->head(); }
  uint64_t initialTail() override { return s->start; }
  uint64_t initialSeq() override { return s->startSeq; }
  bool publish(uint64_t oldTail, uint64_t newTail, uint64_t nextSeq) override {
    FUZZ_CHECK(oldTail == s->tail && newTail - oldTail <= s->cap);
    s->tail = newTail;
    s->tailSeq = nextSeq;
    return true;
  }
  bool armWritable(uint64_t) override { return false; }
  void disarmWritable() override {}
  int writableFd() override { return -1; }
  void drainWritable() override {}
};

struct Rx final : rdmaq::RxTransport {
  Shared* s;
  explicit Rx(Shared* sh) : s(sh) {}
  const char* transport() const override { return "fuzz"; }
  std::string provider() const override { return "fuzz"; }
  const uint8_t* data() override { return s->ring.data(); }
  uint64_t capacity() const override { return s->cap; }
  uint64_t initialHead() override { return s->start; }
  uint64_t initialSeq() override { return s->startSeq; }
  uint64_t tail() override { return s->tail; }
  void release(uint64_t head, uint64_t, bool) override { s->shmHead = head; }
  bool park(uint64_t) override { return false; }
  void unpark() override {}
  int readableFd() override { return -1; }
  void drainReadable() override {}
};

uint8_t pattern(uint64_t seq, uint64_t i) { return uint8_t(seq * 31 + i); }

void checkRecord(const std::vector<Written>& log, uint64_t startSeq, const uint8_t* ring, uint64_t seq,
                 uint64_t len, uint16_t type, uint64_t offset) {
  FUZZ_CHECK(seq >= startSeq && seq - startSeq < log.size());
  const Written& w = log[seq - startSeq];
  FUZZ_CHECK(len == w.len && type == w.type);
  for (uint64_t i = 0; i < len; ++i) FUZZ_CHECK(ring[offset + i] == pattern(seq, i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmaq;
  fuzz::Input in(data, size);
  Shared s;
  s.cap = uint64_t(64) << (in.u8() % 7);  // 64 B .. 4 KiB
  s.ring.assign(s.cap, 0);
  s.start = s.tail = s.shmHead = s.fabHead = uint64_t(in.u32()) << 3;  // a resumed ring: anywhere, aligned
  s.startSeq = s.tailSeq = 1 + in.u32();
  Tx tx(&s);
  Rx rxEnd(&s);
  LinkCounters tc, rc;
  RingWriter w(&tx, &tc);
  RingReader r(&rxEnd, &rc);
  std::vector<Written> log;  // every record claimed, by sequence - startSeq
  uint64_t fabPos = s.start, fabExpected = s.startSeq;
  std::vector<rdmaq::fabric::Delivered> out;
  static const uint16_t kTypes[] = {kData, kProbe, kProbeReply, kHeartbeat};

  for (int op = 0; op < 512 && !in.empty(); ++op) {
    switch (in.u8() % 5) {
      case 0:
      case 1: {  // claim and fill a record
        const uint64_t max = w.maxPayload();
        const uint64_t len = (in.u8() & 1) ? in.u8() % (max + 1) : in.u16() % (max + 1);
        const uint16_t type = kTypes[in.u8() % 4];
        const uint64_t seq = w.nextSeq();
        const int64_t off = w.claim(len, type, seq);
        if (off < 0) {  // full: only if the slower consumer holds the space
          FUZZ_CHECK(w.tail() - s.head() + w.need(len) > s.cap);
          break;
        }
        FUZZ_CHECK(seq - s.startSeq == log.size() && uint64_t(off) + len <= s.cap);
        for (uint64_t i = 0; i < len; ++i) s.ring[off + i] = pattern(seq, i);
        log.push_back({len, type});
        if (in.u8() % 4 == 0) {  // a zero-copy writer that reserved an upper bound
          const uint64_t shorter = in.u16() % (len + 1);
          FUZZ_CHECK(w.shrinkLast(shorter));
          log.back().len = shorter;
        }
        break;
      }
      case 2:
        FUZZ_CHECK(w.publish());
        FUZZ_CHECK(s.tail == w.tail() && s.tailSeq == w.nextSeq());
        break;
      case 3: {  // the shm consumer
        const int n = 1 + in.u8() % 16;
        for (int i = 0; i < n; ++i) {
          RecordView v;
          const RingReader::Next k = r.next(v);
          FUZZ_CHECK(k != RingReader::kBad);
          if (k == RingReader::kNone) break;
          checkRecord(log, s.startSeq, s.ring.data(), v.seq, v.len, v.type, v.offset);
          r.consume(v);
        }
        r.release(false);
        FUZZ_CHECK(s.shmHead == r.head());
        break;
      }
      default: {  // the fabric consumer, over the same published bytes
        out.clear();
        rdmaq::fabric::ParseTally t;
        const uint64_t seq0 = fabExpected;
        const uint64_t pos = rdmaq::fabric::ParseRecords(s.ring.data(), s.cap, fabPos, s.tail, fabExpected,
                                                        1 + in.u8() % 16, out, t);
        FUZZ_CHECK(t.fault == rdmaq::fabric::ParseTally::kNone && t.duplicates == 0);
        uint64_t seq = seq0;
        for (const auto& d : out) {
          FUZZ_CHECK(d.seq == seq++);
          checkRecord(log, s.startSeq, s.ring.data(), d.seq, d.len, d.type, d.offset);
        }
        // Release the first k; the rest is parsed again next time.
        const size_t k = in.u8() % (out.size() + 1);
        if (k < out.size()) {
          fabPos = out[k].start;
          fabExpected = out[k].seq;
        } else {
          fabPos = pos;
        }
        s.fabHead = fabPos;
        break;
      }
    }
  }
  return 0;
}

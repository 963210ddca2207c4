// Native unit tests of the fabric engine's pure parts, without libfabric or a network: the receiver's record
// parsing (ParseRecords), its error texts and the tail-delta range check (TailDeltaOk) from
// native/fabric_record.h — the functions ReceiverCore::Parse / OnRemoteWrite run — and the latency histogram
// (native/histogram.h) at its edges. Built with AddressSanitizer + UBSan by `pnpm test:native`: every ring
// here is a heap block of exactly its capacity, so a view or read past it is a report.
#include <cmath>
#include <random>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../crc32c.h"
#include "../fabric_parse.h"
#include "../histogram.h"
#include "check.h"

using namespace rdmaq;
using namespace rdmaq::fabric;

// A sender's mirror as SenderCore::Claim/Commit lays it out: PADDING (seq 0) or an implicit skip of fewer
// than 24 bytes at the end, then the record.
struct Mirror {
  std::vector<uint8_t> ring;
  uint64_t cap, tail, seq;
  Mirror(uint64_t c, uint64_t start, uint64_t firstSeq) : ring(c), cap(c), tail(start), seq(firstSeq) {}
  void header(uint64_t pos, uint32_t len, uint16_t type, uint64_t s) {
    RecordHeader h{len, type, 0, s, 1000 + s};
    std::memcpy(ring.data() + (pos & (cap - 1)), &h, kHeaderSize);
  }
  // Appends a record; returns its header position.
  uint64_t put(uint32_t len, uint16_t type = kData) {
    const uint64_t need = align8(kHeaderSize + len);
    uint64_t off = tail & (cap - 1);
    if (cap - off < need) {
      const uint64_t pad = cap - off;
      if (pad >= kHeaderSize) header(tail, uint32_t(pad - kHeaderSize), kPadding, 0);
      tail += pad;
      off = 0;
    }
    const uint64_t at = tail;
    header(at, len, type, seq);
    for (uint32_t i = 0; i < len; ++i) ring[off + kHeaderSize + i] = uint8_t(seq + i);
    ++seq;
    tail += need;
    return at;
  }
};

struct Cursor {
  uint64_t pos, expected;
  ParseTally t;
  std::vector<Delivered> out;
  size_t parse(const Mirror& m, uint64_t tail, size_t limit = 1000) {
    out.clear();
    t = ParseTally();
    pos = ParseRecords(m.ring.data(), m.cap, pos, tail, expected, limit, out, t);
    return out.size();
  }
};

static bool payloadOk(const Mirror& m, const Delivered& d) {
  if (d.offset + d.len > m.cap) return false;
  for (uint32_t i = 0; i < d.len; ++i)
    if (m.ring[d.offset + i] != uint8_t(d.seq + i)) return false;
  return true;
}

// Records of every size through many wraps (PADDING and implicit padding), delivered whole and in order.
static void testWraps() {
  Mirror m(4096, 0, 1);
  Cursor c{0, 1, {}, {}};
  uint64_t next = 1, wraps = 0, dataBytes = 0, records = 0;
  for (uint32_t i = 0; i < 3000; ++i) {
    const uint32_t len = (i * 2654435761u) % 700;
    const uint16_t type = i % 5 == 0 ? kProbe : i % 7 == 0 ? kHeartbeat : kData;
    if (m.tail + 2048 - c.pos > m.cap) {  // the receiver catches up (credit) before the sender overruns it
      c.parse(m, m.tail);
      CHECK(c.t.fault == ParseTally::kNone && c.pos == m.tail);
      for (const Delivered& d : c.out) {
        CHECK(d.seq == next++);
        CHECK(payloadOk(m, d));
        CHECK(d.end - d.start == align8(kHeaderSize + d.len) && d.offset == (d.start & (m.cap - 1)) + kHeaderSize);
      }
      wraps += c.t.wraps;
      records += c.t.records;
      dataBytes += c.t.bytes;
    }
    m.put(len, type);
  }
  c.parse(m, m.tail);
  for (const Delivered& d : c.out) CHECK(d.seq == next++ && payloadOk(m, d));
  wraps += c.t.wraps;
  records += c.t.records;
  CHECK(next == 3001);
  CHECK(wraps > 100);
  CHECK(records > 0 && records < 3000 && dataBytes > 0);  // probes and heartbeats are not records
}

// A write may end anywhere (a chunk boundary): inside a header, a payload or the implicit padding. The walk
// waits there — no error — and resumes where it stopped.
static void testPartialWrites() {
  Mirror m(256, 32, 1);
  m.put(40);                         // [32, 96)
  m.put(100);                        // [96, 224)
  const uint64_t third = m.put(0);   // [224, 248); 8 bytes of implicit padding after it
  m.put(8);                          // wraps: [256, 288), below the first record's bytes
  CHECK(third == 224 && m.tail == 288);
  for (uint64_t tail = 32; tail <= m.tail; tail += 8) {
    Cursor c{32, 1, {}, {}};
    c.parse(m, tail);
    CHECK(c.t.fault == ParseTally::kNone);
    uint64_t want = 0;
    for (uint64_t e : {uint64_t(96), uint64_t(224), uint64_t(248), uint64_t(288)})
      if (tail >= e) ++want;
    CHECK(c.out.size() == want);
    // Stops after the last whole record; from 256 on the implicit padding is passed too.
    const uint64_t stop = tail >= 288   ? 288
                          : tail >= 256 ? 256
                          : tail >= 248 ? 248
                          : tail >= 224 ? 224
                          : tail >= 96  ? 96
                                        : 32;
    CHECK(c.pos == stop);
    CHECK(c.t.wraps == (tail >= 256 ? 1u : 0u));
  }
}

static void testLimitAndRelease() {
  Mirror m(1024, 0, 10);
  for (int i = 0; i < 6; ++i) m.put(16);
  Cursor c{0, 10, {}, {}};
  CHECK(c.parse(m, m.tail, 4) == 4);
  CHECK(c.expected == 14 && c.pos == 4 * 40);
  // ReceiverCore::Release(k = 1): the rest is handed out again.
  c.pos = c.out[1].start;
  c.expected = c.out[1].seq;
  CHECK(c.parse(m, m.tail) == 5);
  CHECK(c.out[0].seq == 11 && c.out.back().seq == 15 && c.pos == m.tail);
}

static void testFaults() {
  {  // PADDING that does not reach the ring's end
    Mirror m(256, 0, 1);
    m.header(0, 10, kPadding, 0);
    Cursor c{0, 1, {}, {}};
    c.parse(m, 64);
    CHECK(c.t.fault == ParseTally::kBadPadding && c.pos == 0 && c.out.empty());
    CHECK(ParseFaultText(c.t) == "corrupt PADDING record at position 0");
  }
  for (uint16_t type : {uint16_t(0), uint16_t(6), uint16_t(77)}) {  // unknown types
    Mirror m(256, 0, 1);
    m.put(8);
    m.header(32, 8, type, 2);
    Cursor c{0, 1, {}, {}};
    c.parse(m, 96);
    CHECK(c.out.size() == 1 && c.t.fault == ParseTally::kBadHeader && c.pos == 32);
    CHECK(ParseFaultText(c.t) == "corrupt record header at position 32 (type " + std::to_string(type) + ", length 8)");
  }
  {  // a length past the ring's end (and one at the u32 limit: no overflow)
    for (uint32_t len : {uint32_t(233), uint32_t(1) << 30, UINT32_MAX}) {
      Mirror m(256, 0, 1);
      m.header(0, len, kData, 1);
      Cursor c{0, 1, {}, {}};
      c.parse(m, 256);
      CHECK(c.t.fault == ParseTally::kBadHeader && c.t.fault_length == len);
    }
    Mirror m(256, 0, 1);
    m.header(0, 232, kData, 1);  // exactly to the end: fine
    Cursor c{0, 1, {}, {}};
    CHECK(c.parse(m, 256) == 1 && c.t.fault == ParseTally::kNone && c.out[0].offset + c.out[0].len == 256);
  }
  {  // sequences: older ones (before a reconnect) dropped and counted, a gap is an error
    Mirror m(1024, 0, 5);
    m.put(8);
    m.put(8);  // 5, 6
    m.seq = 3;
    m.put(8);  // 3: a duplicate
    m.seq = 7;
    m.put(8);
    m.seq = 9;
    m.put(8);  // 9: gap
    Cursor c{0, 5, {}, {}};
    c.parse(m, m.tail);
    CHECK(c.out.size() == 3 && c.out[2].seq == 7 && c.t.duplicates == 1);
    CHECK(c.t.fault == ParseTally::kSeqGap && c.pos == 4 * 32 && c.expected == 8);
    CHECK(ParseFaultText(c.t) == "sequence gap: expected 8, got 9");
  }
}

// A start position that is not 8-aligned (the handshake's `start.pos` comes from the peer): memory-safe (no
// misaligned header load: UBSan), every view inside the ring.
static void testUnalignedStart() {
  Mirror m(512, 5, 1);
  Cursor c{5, 1, {}, {}};
  uint64_t next = 1;
  for (uint32_t i = 0; i < 200; ++i) {
    m.put(i * 7 % 60);
    c.parse(m, m.tail);
    CHECK(c.t.fault == ParseTally::kNone && c.pos == m.tail);
    for (const Delivered& d : c.out) CHECK(d.seq == next++ && payloadOk(m, d));
  }
  CHECK(next == 201);
}

static void testTailDelta() {
  const uint64_t cap = 4096;
  CHECK(!TailDeltaOk(0, 0, 0, cap));        // a write that moves nothing
  CHECK(!TailDeltaOk(12, 0, 0, cap));       // not whole 8-byte units
  CHECK(TailDeltaOk(cap, 0, 0, cap));       // fills the ring exactly
  CHECK(!TailDeltaOk(cap + 8, 0, 0, cap));  // more than the ring
  CHECK(TailDeltaOk(8, 8192, 4104, cap));   // 4088 held + 8
  CHECK(!TailDeltaOk(16, 8192, 4104, cap)); // one unit too many: the head has not moved
  CHECK(!TailDeltaOk((1u << 21) - 8, 0, 0, cap));  // the largest delta the CQ data can carry
  const uint64_t top = std::numeric_limits<uint64_t>::max() - 15;  // positions near 2^64 (modular)
  CHECK(TailDeltaOk(16, top, top - 64, cap));
}

static void testHistogramEdges() {
  using rdmaq::Histogram;
  Histogram h;
  CHECK(h.quantile(0.5) == 0 && h.min() == 0 && h.max() == 0 && h.count() == 0 && h.sparse().empty());
  h.record(100);
  h.record(UINT64_MAX);  // clamped to the last bucket; max stays exact
  h.record(0);
  CHECK(h.count() == 3 && h.min() == 0 && h.max() == UINT64_MAX);
  auto sp = h.sparse();
  CHECK(sp.size() == 3 && sp[0].first == 0 && sp[1].first == 100 && sp[2].first == Histogram::kBuckets - 1);
  // Any q: NaN and out-of-range values take the nearest end (they were undefined behaviour before).
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (double q : {nan, -inf, -1e300, -1.0, 0.0}) CHECK(h.quantile(q) == h.quantile(0));
  for (double q : {1.0, 1.5, 1e300, inf}) CHECK(h.quantile(q) == h.quantile(1));
  CHECK(h.quantile(0) == 0 && h.quantile(1) == Histogram::bucketValue(Histogram::kBuckets - 1));
  CHECK(h.quantile(0.5) == 100);
  // Buckets: contiguous, ordered, every boundary value in its own bucket.
  for (uint32_t i = 1; i < Histogram::kBuckets; ++i)
    CHECK(Histogram::bucketLow(i) == Histogram::bucketLow(i - 1) + Histogram::bucketWidth(i - 1));
  for (int e = 0; e < 64; ++e) {
    const uint64_t v = 1ull << e;
    CHECK(Histogram::bucketOf(v - 1) <= Histogram::bucketOf(v));
  }
  h.reset();
  CHECK(h.count() == 0 && h.quantile(0.99) == 0 && h.sparse().empty());
  // Nearest rank, unchanged for q in [0, 1]: 1..1000 → p50 = 500, p99 = 990 (exact below 128, within a bucket above).
  for (uint64_t v = 1; v <= 1000; ++v) h.record(v);
  CHECK(std::fabs(h.quantile(0.5) - 500) <= 2 && std::fabs(h.quantile(0.99) - 990) <= 4);
  CHECK(h.quantile(0.001) == 1 && h.quantile(0.1) == 100);
}

// CRC32C: the standard check value, and the SSE4.2 path equal to the table path at every length and alignment.
static void testCrc32c() {
  const char* v = "123456789";
  CHECK(crc32c::software(0, reinterpret_cast<const uint8_t*>(v), 9) == 0xE3069283u);
  CHECK(crc32c::of(reinterpret_cast<const uint8_t*>(v), 9) == 0xE3069283u);
  std::mt19937_64 rng(7);
  std::vector<uint8_t> buf(65536 + 8);
  for (auto& b : buf) b = uint8_t(rng());
  // Lengths around the three-chain thresholds (768 = 3 × 256, 6144 = 3 × 2048) and their leftovers.
  for (size_t start = 0; start < 8; ++start)
    for (size_t n : {0, 1, 7, 8, 63, 64, 767, 768, 775, 1000, 1536, 4096, 6143, 6144, 6151, 7000, 12289, 65536})
      CHECK(crc32c::hardware(0, buf.data() + start, n) == crc32c::software(0, buf.data() + start, n));
  for (int k = 0; k < 200; ++k) {
    const size_t start = rng() % 8, n = rng() % 65536;
    CHECK(crc32c::hardware(0, buf.data() + start, n) == crc32c::software(0, buf.data() + start, n));
  }
  // Chained: the CRC of a buffer equals the CRC of its second half continued from the first's.
  CHECK(crc32c::of(buf.data() + 100, 900, crc32c::of(buf.data(), 100)) == crc32c::of(buf.data(), 1000));
}

// Sealed records (kFlagChecksum): delivered when the payload matches; a flipped bit is kBadChecksum at that
// record, after the ones before it; an unknown flag bit is a bad header.
static void testChecksum() {
  const uint64_t cap = 4096;
  std::vector<uint8_t> ring(cap);
  uint64_t tail = 0;
  std::vector<uint64_t> at;
  for (uint64_t s = 1; s <= 5; ++s) {
    const uint32_t len = uint32_t(10 * s);
    RecordHeader h{len, kData, kFlagChecksum, s, 0};
    std::memcpy(ring.data() + tail, &h, kHeaderSize);
    for (uint32_t i = 0; i < len; ++i) ring[tail + kHeaderSize + i] = uint8_t(s * 31 + i);
    const uint32_t crc = crc32c::of(ring.data() + tail + kHeaderSize, len);
    std::memcpy(ring.data() + tail + kHeaderSize + len, &crc, kChecksumSize);
    at.push_back(tail);
    tail += recordSize(len, kFlagChecksum);
  }
  {
    uint64_t expected = 1;
    ParseTally t;
    std::vector<Delivered> out;
    CHECK(ParseRecords(ring.data(), cap, 0, tail, expected, 100, out, t) == tail);
    CHECK(t.fault == ParseTally::kNone && out.size() == 5 && expected == 6);
    for (size_t i = 0; i < out.size(); ++i) CHECK(out[i].end - out[i].start == recordSize(out[i].len, kFlagChecksum));
  }
  ring[at[3] + kHeaderSize + 5] ^= 0x10;
  {
    uint64_t expected = 1;
    ParseTally t;
    std::vector<Delivered> out;
    CHECK(ParseRecords(ring.data(), cap, 0, tail, expected, 100, out, t) == at[3]);
    CHECK(t.fault == ParseTally::kBadChecksum && t.fault_seq == 4 && out.size() == 3 && expected == 4);
    CHECK(std::string(ParseFaultCode(t)) == "ERR_RDMAQ_CHECKSUM");
    CHECK(ParseFaultText(t).find("payload checksum mismatch in record 4 (40 bytes") == 0);
  }
  ring[at[3] + kHeaderSize + 5] ^= 0x10;
  ring[at[1] + 6] = 0x80;  // flags: an unknown bit
  {
    uint64_t expected = 1;
    ParseTally t;
    std::vector<Delivered> out;
    ParseRecords(ring.data(), cap, 0, tail, expected, 100, out, t);
    CHECK(t.fault == ParseTally::kBadHeader && out.size() == 1);
  }
}

int main() {
  testWraps();
  testPartialWrites();
  testLimitAndRelease();
  testFaults();
  testUnalignedStart();
  testTailDelta();
  testHistogramEdges();
  testCrc32c();
  testChecksum();
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("native fabric record tests: all passed\n");
  return 0;
}

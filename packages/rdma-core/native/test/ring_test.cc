// Native unit tests of the ring protocol, the shm transport and the histogram, without Node: built with
// AddressSanitizer + UBSan by `pnpm test:native` (and by test/native.test.ts), so memory errors in the
// protocol code show up as failures. Producer and consumer run in two processes (fork) over a real ring file.
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../histogram.h"
#include "../ring.h"
#include "../shm_link.h"
#include "check.h"

using namespace rdmaq;

static std::string base() { return "/dev/shm/rdmaq-nativetest-" + std::to_string(getpid()); }

struct Link {
  std::string ring, rxw, txw;
  LinkCounters rc, tc;
  std::unique_ptr<ShmRx> rx;
  std::unique_ptr<ShmTx> tx;
  explicit Link(uint64_t cap, const std::string& tag) {
    ring = base() + tag + ".ring";
    rxw = base() + tag + ".rxw";
    txw = base() + tag + ".txw";
    rx = std::make_unique<ShmRx>(ring, rxw, txw, true, cap, &rc);
    tx = std::make_unique<ShmTx>(ring, rxw, txw, &tc);
  }
  ~Link() {
    tx.reset();
    rx->close(true);
  }
};

static uint64_t sizeOf(uint64_t seq, uint64_t max) { return (seq * 2654435761u) % (max + 1); }

static void fillPayload(uint8_t* p, uint64_t len, uint64_t seq) {
  for (uint64_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(seq * 31 + i);
}
static bool checkPayload(const uint8_t* p, uint64_t len, uint64_t seq) {
  for (uint64_t i = 0; i < len; ++i)
    if (p[i] != static_cast<uint8_t>(seq * 31 + i)) return false;
  return true;
}

static void testHistogram() {
  CHECK(Histogram::kBuckets == 3712);
  CHECK(Histogram::bucketOf(0) == 0);
  CHECK(Histogram::bucketOf(127) == 127);
  CHECK(Histogram::bucketOf(128) == 128);
  CHECK(Histogram::bucketOf(255) == 255);
  CHECK(Histogram::bucketOf(256) == 256);
  CHECK(Histogram::bucketOf(1000) == 506);
  CHECK(Histogram::bucketOf(Histogram::kMaxTrackable) == 3711);
  CHECK(Histogram::bucketOf(UINT64_MAX) == 3711);
  for (uint32_t i = 0; i < Histogram::kBuckets; ++i) {
    CHECK(Histogram::bucketOf(Histogram::bucketLow(i)) == i);
    // Bucket width ≤ 1/128 of its lower bound: midpoint within 0.4 %.
    if (i >= 128) CHECK(Histogram::bucketWidth(i) * 128 <= Histogram::bucketLow(i));
  }
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.record(v * 10);
  const double p99 = h.quantile(0.99);
  CHECK(p99 > 990000 * 0.99 && p99 < 990000 * 1.01);
}

static void testWrapPaddingFull() {
  Link l(64 * 1024, "-wrap");
  RingWriter w(l.tx.get(), &l.tc);
  RingReader r(l.rx.get(), &l.rc);
  CHECK(w.maxPayload() == 32 * 1024 - 24);
  uint64_t next = 1;
  // Mixed sizes force PADDING records and implicit (<24 B) wraps.
  for (uint64_t seq = 1; seq <= 20000; ++seq) {
    const uint64_t len = sizeOf(seq, 3000);
    int64_t off;
    while ((off = w.claim(len, kData, monotonicNs())) < 0) {
      CHECK(w.publish());
      RecordView v;
      RingReader::Next k;
      while ((k = r.next(v)) == RingReader::kRecord) {
        CHECK(v.seq == next);
        CHECK(v.len == sizeOf(v.seq, 3000));
        CHECK(v.offset + v.len <= 64 * 1024);
        CHECK(checkPayload(l.rx->data() + v.offset, v.len, v.seq));
        r.consume(v);
        ++next;
      }
      CHECK(k == RingReader::kNone);
      r.release(false);
    }
    fillPayload(w.data() + off, len, seq);
    if (seq % 7 == 0) w.publish();
  }
  w.publish();
  RecordView v;
  while (r.next(v) == RingReader::kRecord) {
    CHECK(v.seq == next);
    r.consume(v);
    ++next;
  }
  CHECK(next == 20001);
  CHECK(l.tc.wraps > 10);
  CHECK(l.tc.wraps == l.rc.wraps);
  // Full ring: claims fail, nothing overwritten.
  r.release(false);
  int n = 0;
  while (w.claim(1000, kData, 0) >= 0) ++n;
  CHECK(n > 0 && n <= 64);
}

static void testCorruption() {
  Link l(64 * 1024, "-bad");
  RingWriter w(l.tx.get(), &l.tc);
  RingReader r(l.rx.get(), &l.rc);
  for (int i = 0; i < 3; ++i) w.claim(64, kData, 0);
  w.publish();
  // Record 2's length points past the ring's end.
  uint32_t huge = 1u << 30;
  std::memcpy(w.data() + 88, &huge, 4);
  RecordView v;
  CHECK(r.next(v) == RingReader::kRecord);
  r.consume(v);
  CHECK(r.next(v) == RingReader::kBad);
  CHECK(r.error().find("runs past") != std::string::npos);
}

// A consumer's control block with a head ahead of the tail, or a tail more than a ring ahead of the head
// (corrupt, or a hostile receiver that created the ring file): no claim may be accepted — before the fix the
// occupancy underflowed, and a claim longer than the ring (a resend from an older, bigger ring) was placed
// at offset 0 and written past the ring's end (found by native/fuzz/fuzz_ring_writer).
static void testHostileControlBlock() {
  const uint64_t cap = 64 * 1024;
  for (int variant = 0; variant < 2; ++variant) {
    Link l(cap, "-hostile" + std::to_string(variant));
    ShmControl* ctl = l.rx->ring().ctl();
    if (variant == 0) {
      ctl->head.a.store(243);
    } else {
      ctl->tail.a.store(3 * cap);
    }
    RingWriter w(l.tx.get(), &l.tc);
    CHECK(w.claim(cap + 1000, kData, 0) < 0);
    CHECK(w.claim(cap - 24, kData, 0) < 0);
    CHECK(w.claim(100, kData, 0) < 0);
    CHECK(!w.fits(w.maxPayload()));
    CHECK(l.tc.errors["bad_credit"] >= 1);
  }
  // An honest ring: the largest record fits, one longer than the ring never does.
  Link l(cap, "-honest");
  RingWriter w(l.tx.get(), &l.tc);
  CHECK(!w.fits(cap + 1) && w.claim(cap + 1, kData, 0) < 0 && w.claim(UINT64_MAX - 8, kData, 0) < 0);
  CHECK(w.claim(w.maxPayload(), kData, 0) == 24);
}

static void testBadFiles() {
  const std::string path = base() + "-ver.ring";
  {
    LinkCounters c;
    ShmRx rx(path, base() + "-ver.rxw", base() + "-ver.txw", true, 64 * 1024, &c);
    rx.ring().header()->version = 7;
  }
  bool threw = false;
  try {
    ShmRing::inspect(path);
  } catch (const RdmaqError& e) {
    threw = e.code == "ERR_RDMAQ_RING_VERSION";
  }
  CHECK(threw);
  ShmRing::removeFiles(path);
  threw = false;
  try {
    LinkCounters c;
    ShmRx rx(path, base() + "-ver.rxw", base() + "-ver.txw", true, 100000, &c);
  } catch (const RdmaqError& e) {
    threw = e.code == "ERR_RDMAQ_ARG";
  }
  CHECK(threw);
}

// Producer and consumer in two processes, parking on the FIFO (event strategy) when the ring is empty.
static void testTwoProcesses() {
  const uint64_t count = 200000, maxLen = 5000;
  Link l(256 * 1024, "-fork");
  pid_t pid = fork();
  if (pid == 0) {
    RingWriter w(l.tx.get(), &l.tc);
    for (uint64_t seq = 1; seq <= count; ++seq) {
      const uint64_t len = sizeOf(seq, maxLen);
      int64_t off;
      while ((off = w.claim(len, kData, monotonicNs())) < 0) {
        w.publish();
        if (l.tx->armWritable(w.needHead(len))) {
          pollfd pfd{l.tx->writableFd(), POLLIN, 0};
          poll(&pfd, 1, 100);
          l.tx->drainWritable();
          l.tx->disarmWritable();
        }
      }
      fillPayload(w.data() + off, len, seq);
      if (seq % 16 == 0) w.publish();
    }
    w.publish();
    _exit(0);
  }
  RingReader r(l.rx.get(), &l.rc);
  uint64_t next = 1, parks = 0;
  bool ok = true;
  while (next <= count && ok) {
    RecordView v;
    RingReader::Next k = r.next(v);
    if (k == RingReader::kBad) {
      std::fprintf(stderr, "bad header: %s\n", r.error().c_str());
      ok = false;
      break;
    }
    if (k == RingReader::kNone) {
      r.release(true);
      if (l.rx->park(r.head())) {
        ++parks;
        pollfd pfd{l.rx->readableFd(), POLLIN, 0};
        poll(&pfd, 1, 100);
        l.rx->drainReadable();
      }
      l.rx->unpark();
      continue;
    }
    ok = v.seq == next && v.len == sizeOf(v.seq, maxLen) && checkPayload(l.rx->data() + v.offset, v.len, v.seq);
    r.consume(v);
    ++next;
    if (next % 32 == 0) r.release(false);
  }
  r.release(false);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(ok);
  CHECK(next == count + 1);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::printf("two processes: %llu records, %llu parks, %llu wraps\n", static_cast<unsigned long long>(count),
              static_cast<unsigned long long>(parks), static_cast<unsigned long long>(l.rc.wraps));
}

int main() {
  testHistogram();
  testWrapPaddingFull();
  testCorruption();
  testHostileControlBlock();
  testBadFiles();
  testTwoProcesses();
  auto swept = ShmRing::sweep("/dev/shm");
  (void)swept;
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("native ring tests: all passed\n");
  return 0;
}

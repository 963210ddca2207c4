// Native unit test of the statistics file (native/stats_file.h), without Node: built with AddressSanitizer +
// UBSan by `pnpm test:native`. Covers
//  - the slot allocator: a full file counts dropped links, a freed slot is reused with a new generation;
//  - the seqlock: a writer thread publishes figures that obey invariants (bytes = 64 × records, completions =
//    records, the queue count = records and ≤ the sum of the buckets) as fast as it can, while the reader side
//    takes snapshot() and snapshotDelta() copies through a second, read-only mapping: every copy it accepts
//    must obey the invariants (a torn copy would not), and the records it sees never go backwards;
//  - snapshotDelta: an untouched slot is reported unchanged; a changed one carries only the buckets that moved;
//  - a truncated file is reported (SIGBUS guard), not a crash.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../stats_file.h"
#include "check.h"

using namespace rdmaq;

static uint64_t u64at(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
static uint32_t u32at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

struct Mapping {
  const uint8_t* base = nullptr;
  size_t size = 0;
  explicit Mapping(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) return;
    struct stat st;
    fstat(fd, &st);
    size = static_cast<size_t>(st.st_size);
    void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) base = static_cast<const uint8_t*>(p);
  }
  ~Mapping() {
    if (base) munmap(const_cast<uint8_t*>(base), size);
  }
};

// Walks a compact snapshot() copy: for each stable in-use slot, checks the invariants. Returns the records of
// slot `want` (or -1 if not seen).
static int64_t checkSnapshot(const std::vector<uint8_t>& out, uint32_t want) {
  const uint32_t highWater = u32at(out.data() + stats::H::highWater);
  size_t at = stats::kHeaderSize;
  int64_t seen = -1;
  for (uint32_t i = 0; i < highWater; ++i) {
    const uint8_t* m = out.data() + at;
    const uint32_t nq = u32at(m + stats::kMetaSize), nr = u32at(m + stats::kMetaSize + 4);
    const uint8_t* pairs = m + stats::kMetaSize + 8;
    if ((u64at(m) & 1) == 0 && u32at(m + stats::M::inUse) == 1) {
      const uint64_t records = u64at(m + stats::M::counters);
      const uint64_t bytes = u64at(m + stats::M::counters + 8);
      const uint64_t completions = u64at(m + stats::M::counters + 16);
      const uint64_t qCount = u64at(m + stats::M::queueHist);
      CHECK(bytes == 64 * records);
      CHECK(completions == records);
      CHECK(qCount == records);
      uint64_t sum = 0;
      for (uint32_t k = 0; k < nq; ++k) sum += u64at(pairs + k * 16 + 8);
      CHECK(sum >= qCount);
      if (i == want) seen = static_cast<int64_t>(records);
    }
    at += stats::kMetaSize + 8 + (nq + nr) * 16;
  }
  return seen;
}

int main() {
  char tmpl[] = "/tmp/rdmaq-stats-native-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (!dir) return 2;
  setenv("RDMAQ_STATS_DIR", dir, 1);
  setenv("RDMAQ_STATS_SLOTS", "8", 1);
  setenv("RDMAQ_APP_NAME", "native-test", 1);
  stats::File& file = stats::File::instance();

  // ---- allocator: 8 slots, the 9th link is dropped; a freed slot comes back with a new generation ----
  std::vector<stats::Slot*> slots;
  for (int i = 0; i < 8; ++i) {
    stats::Slot* s = file.allocate(stats::kTx, stats::kShm, "link-" + std::to_string(i), "peer", "shm");
    CHECK(s != nullptr);
    slots.push_back(s);
  }
  CHECK(file.allocate(stats::kTx, stats::kShm, "one-too-many", "", "shm") == nullptr);
  const std::string path = file.path();
  CHECK(!path.empty());
  Mapping map(path);
  CHECK(map.base != nullptr);
  CHECK(std::memcmp(map.base, stats::kMagic, 8) == 0);
  CHECK(u32at(map.base + stats::H::droppedLinks) == 1);
  CHECK(u32at(map.base + stats::H::highWater) == 8);
  const uint32_t idx3 = slots[3]->index();
  const uint8_t* meta3 = map.base + stats::kHeaderSize + idx3 * stats::kMetaSize;
  const uint32_t gen3 = u32at(meta3 + stats::M::generation);
  file.free(slots[3]);
  CHECK(u32at(meta3 + stats::M::inUse) == 0);
  slots[3] = file.allocate(stats::kRx, stats::kFabric, "reused", "10.0.0.2", "tcp;ofi_rxm");
  CHECK(slots[3] != nullptr && slots[3]->index() == idx3);
  CHECK(u32at(meta3 + stats::M::generation) == gen3 + 1);
  CHECK(u32at(meta3 + stats::M::inUse) == 1);

  // ---- seqlock: writer publishes as fast as it can, reader copies through the read-only mapping ----
  stats::Slot* w = slots[5];
  const uint32_t wi = w->index();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 16; ++k) {
        ++n;
        w->recordQueue(static_cast<uint32_t>(n % 40), n);
      }
      w->publish({n, 64 * n, n, n / 2, 0, n / 1000, 0, 0, 0, n % 4096, 4096}, 0);
    }
  });
  std::vector<uint8_t> out;
  std::vector<stats::SlotMemo> memo;
  int64_t last = -1, lastDelta = -1;
  int copies = 0;
  for (int round = 0; round < 20000; ++round) {
    CHECK(stats::snapshot(map.base, map.size, out).empty());
    const int64_t r = checkSnapshot(out, wi);
    if (r >= 0) {
      CHECK(r >= last);
      last = r;
      ++copies;
    }
    // The delta path over the same slots: a changed slot's figures obey the same invariants.
    CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());
    size_t at = stats::kHeaderSize;
    for (uint32_t i = 0; i < 8; ++i) {
      const uint32_t tag = u32at(out.data() + at), flags = u32at(out.data() + at + 4);
      at += 8;
      if (tag != 2) continue;
      const uint32_t len = (flags & 1) ? stats::kDeltaMeta : stats::kDeltaFigures;
      const uint8_t* m = out.data() + at;
      const uint32_t nq = u32at(m + len), nr = u32at(m + len + 4);
      if (i == wi && u32at(m + stats::M::inUse) == 1) {
        const int64_t rec = static_cast<int64_t>(u64at(m + stats::M::counters));
        CHECK(u64at(m + stats::M::counters + 8) == 64 * u64at(m + stats::M::counters));
        CHECK(rec >= lastDelta);
        lastDelta = rec;
      }
      at += len + 8 + (nq + nr) * 16;
    }
    CHECK(at == out.size());
  }
  stop = true;
  writer.join();
  CHECK(copies > 0);
  std::fprintf(stderr, "seqlock: %d consistent copies, last records %lld\n", copies, static_cast<long long>(last));

  // ---- delta: nothing moved → every slot unchanged; one bucket moved → only that bucket is sent ----
  CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());
  CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());
  size_t at = stats::kHeaderSize;
  for (uint32_t i = 0; i < 8; ++i, at += 8) CHECK(u32at(out.data() + at) == 0);
  w->recordQueue(7, 1);
  w->publish({1, 64, 1, 0, 0, 0, 0, 0, 0, 0, 4096}, 0);  // (figures need not agree with the writer's above)
  CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());
  at = stats::kHeaderSize;
  for (uint32_t i = 0; i < 8; ++i) {
    const uint32_t tag = u32at(out.data() + at), flags = u32at(out.data() + at + 4);
    at += 8;
    if (i != wi) {
      CHECK(tag == 0);
      continue;
    }
    CHECK(tag == 2 && (flags & 1) == 0);
    const uint8_t* m = out.data() + at;
    const uint32_t nq = u32at(m + stats::kDeltaFigures);
    CHECK(nq == 1);
    CHECK(u32at(m + stats::kDeltaFigures + 8) == 7);
    at += stats::kDeltaFigures + 8 + nq * 16 + u32at(m + stats::kDeltaFigures + 4) * 16;
  }

  // ---- a known bucket and a new one move together: the known sum is short of the count, so the bitmap is
  //      walked and both are sent, ascending ----
  w->recordQueue(7, 1);
  w->recordQueue(9, 1);
  w->publish({1, 64, 1, 0, 0, 0, 0, 0, 0, 0, 4096}, 0);
  CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());
  at = stats::kHeaderSize;
  for (uint32_t i = 0; i < 8; ++i) {
    const uint32_t tag = u32at(out.data() + at);
    at += 8;
    if (i != wi) continue;
    CHECK(tag == 2);
    const uint8_t* m = out.data() + at;
    const uint32_t nq = u32at(m + stats::kDeltaFigures);
    CHECK(nq == 2);
    CHECK(u32at(m + stats::kDeltaFigures + 8) == 7 && u32at(m + stats::kDeltaFigures + 24) == 9);
    at += stats::kDeltaFigures + 8 + nq * 16 + u32at(m + stats::kDeltaFigures + 4) * 16;
  }
  // ---- only known buckets move: sent without the bitmap, and nothing else ----
  w->recordQueue(9, 1);
  w->publish({1, 64, 1, 0, 0, 0, 0, 0, 0, 0, 4096}, 0);
  CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());
  {
    const uint8_t* m = out.data() + stats::kHeaderSize + wi * 8 + 8;
    CHECK(u32at(m - 8) == 2 && u32at(m + stats::kDeltaFigures) == 1 && u32at(m + stats::kDeltaFigures + 8) == 9);
  }

  // ---- a string changed after allocation (same generation): the next delta carries the strings ----
  w->setPeer("10.0.0.99:7470");
  CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());
  at = stats::kHeaderSize;
  for (uint32_t i = 0; i < 8; ++i) {
    const uint32_t tag = u32at(out.data() + at), flags = u32at(out.data() + at + 4);
    at += 8;
    if (i != wi) {
      CHECK(tag == 0);
      continue;
    }
    CHECK(tag == 2 && (flags & 1) == 1);
    const uint8_t* m = out.data() + at;
    uint16_t peerLen;
    std::memcpy(&peerLen, m + stats::M::peerLen, 2);
    CHECK(std::string(reinterpret_cast<const char*>(m + stats::M::peer), peerLen) == "10.0.0.99:7470");
    at += stats::kDeltaMeta + 8 + (u32at(m + stats::kDeltaMeta) + u32at(m + stats::kDeltaMeta + 4)) * 16;
  }
  CHECK(stats::snapshotDelta(map.base, map.size, out, memo).empty());  // and then unchanged again
  CHECK(u32at(out.data() + stats::kHeaderSize + wi * 8) == 0);

  // ---- a truncated file: reported, not a crash ----
  {
    const std::string copy = std::string(dir) + "/truncated";
    int fd = open(copy.c_str(), O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, map.base, map.size) == static_cast<ssize_t>(map.size));
    Mapping t(copy);
    CHECK(ftruncate(fd, stats::kHeaderSize + 100) == 0);  // the mapping now ends inside the slots
    close(fd);
    const std::string why = stats::snapshot(t.base, t.size, out);
    CHECK(why.find("SIGBUS") != std::string::npos);
    std::vector<stats::SlotMemo> m2;
    CHECK(stats::snapshotDelta(t.base, t.size, out, m2).find("SIGBUS") != std::string::npos);
    unlink(copy.c_str());
  }

  for (stats::Slot* s : slots) file.free(s);
  unlink(path.c_str());
  rmdir(dir);
  if (failures) {
    std::fprintf(stderr, "stats_file_test: %d failures\n", failures);
    return 1;
  }
  std::fprintf(stderr, "stats_file_test: ok\n");
  return 0;
}

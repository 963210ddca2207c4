// The per-process statistics file (Aeron counters-file style): every process that uses rdma-core
// publishes its links' counters, gauges and latency histograms in /dev/shm/rdmaq-stats-<pid>-<starttime>,
// so the agent and `rdmaq-stat` see every queue on the host without asking the process anything.
//
// Layout (little-endian, version 1; src/stats-file.ts parses the same offsets and validates every field):
//
//   [0, 4096)                      file header (magic, version, sizes, pid, start time, app name, heartbeat)
//   [4096, +slots × 2048)          slot metadata, one 2 KiB block per link slot (identity, counters, gauges,
//                                  histogram count/min/max, bitmaps of the non-empty histogram buckets)
//   [.., +slots × 59392)           slot histograms: queue latency then probe RTT, 3712 u64 buckets each, the
//                                  exact bucket layout of native/histogram.h and @rdmaq/shared histogram.ts
//
// The metadata blocks are contiguous so a reader copies all of them in one pass and touches a histogram only
// through its bitmap (a few hundred buckets, not 3712).
//
// Memory ordering (one writer per slot — the thread that owns the link — any number of readers in other
// processes, which never write):
//  - Slot metadata is guarded by a per-slot sequence lock. The writer makes `seq` odd (relaxed store), issues a
//    release fence (orders that store before the field stores), stores the fields (relaxed atomic stores: no
//    tearing of a 64-bit field), then makes `seq` even with a release store (orders the field stores before
//    it). A reader loads `seq` with acquire; odd = a write is in progress, retry; it copies the fields with
//    relaxed loads, issues an acquire fence (orders those loads before the next), loads `seq` again and
//    accepts the copy only if it is unchanged. It retries a bounded number of times (kReadTries), never
//    blocks or slows the writer, and reports the slot as busy if it never gets a stable copy.
//  - Histogram buckets and bitmap words are NOT under the lock: each is a monotonic counter written by a
//    single relaxed store per record (bucket, then the bitmap bit on the bucket's first count). The count that
//    the seqlock publishes is stored after those buckets (program order + the release store of `seq`), so a
//    reader that copied count C under the lock and reads the buckets afterwards sees at least C in them
//    (buckets read may be ahead of C by the batch being written: the reader reports the buckets as read).
//  - On x86-64 every one of these is a plain MOV (the fences are compiler barriers): publishing costs the
//    stores themselves, no locked instruction, no syscall. Slot allocation and freeing (link open/close) take
//    a process-local mutex; the data path never does.
//  - A slot freed and reused gets a new `generation` (under the lock), so a reader never mistakes a new link
//    in an old slot for the old link.
#pragma once

#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace rdmaq {
namespace stats {

constexpr char kMagic[8] = {'R', 'D', 'M', 'A', 'Q', 'S', 'T', 'F'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kHeaderSize = 4096;
constexpr uint32_t kMetaSize = 2048;
constexpr uint32_t kBuckets = 3712;  // Histogram::kBuckets (static_assert in addon.cc)
constexpr uint32_t kBitmapWords = (kBuckets + 63) / 64;  // 58
constexpr uint32_t kHistBytes = kBuckets * 8;
constexpr uint32_t kSlotHistSize = 2 * kHistBytes;  // queue, rtt
constexpr uint32_t kDefaultSlots = 256;
constexpr uint32_t kMaxSlots = 4096;
constexpr int kReadTries = 64;

// File header offsets.
namespace H {
constexpr uint32_t magic = 0, version = 8, headerSize = 12, metaSize = 16, slotHistSize = 20, slotCount = 24,
                   buckets = 28, pid = 32, flags = 36, startTime = 40, createdMs = 48, heartbeatMs = 56,
                   appSeq = 64, appLen = 72, droppedLinks = 76, highWater = 80, app = 128;
constexpr uint32_t appMax = 256;
}  // namespace H

// Slot metadata offsets.
namespace M {
constexpr uint32_t seq = 0, inUse = 8, generation = 12, role = 16, transport = 17, state = 18, errorKinds = 19,
                   idLen = 20, peerLen = 22, providerLen = 24, namesSeq = 26, epoch = 32, openedMs = 40, updatedMs = 48,
                   counters = 56,  // 10 × u64: records bytes completions creditUpdates backpressure wraps
                                   // resends reconnects wakeups (reserved)
                   gauges = 136,   // occupancy, peak (last 1–2 s), capacity
                   queueHist = 160, rttHist = 184,  // count, min, max each
                   errors = 208,                     // 8 × {char kind[24]; u64 n}
                   linkId = 464, peer = 720, provider = 848, queueBitmap = 1024, rttBitmap = 1488;
constexpr uint32_t errorSlots = 8, errorKindMax = 24, errorEntry = 32, idMax = 256, peerMax = 128, providerMax = 64;
}  // namespace M

enum Role : uint8_t { kTx = 1, kRx = 2 };
enum TransportKind : uint8_t { kShm = 1, kFabric = 2 };
// Link states in file order (src/stats-file.ts LINK_STATES).
inline uint8_t stateCode(const std::string& s) {
  if (s == "connecting") return 0;
  if (s == "up") return 1;
  if (s == "degraded") return 2;
  if (s == "stalled") return 3;
  return 4;  // down
}

inline uint64_t wallMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000000ull;
}

inline void st64(uint8_t* p, uint64_t v) { __atomic_store_n(reinterpret_cast<uint64_t*>(p), v, __ATOMIC_RELAXED); }
inline uint64_t ld64(const uint8_t* p) { return __atomic_load_n(reinterpret_cast<const uint64_t*>(p), __ATOMIC_RELAXED); }
inline void st32(uint8_t* p, uint32_t v) { __atomic_store_n(reinterpret_cast<uint32_t*>(p), v, __ATOMIC_RELAXED); }
inline void st16(uint8_t* p, uint16_t v) { __atomic_store_n(reinterpret_cast<uint16_t*>(p), v, __ATOMIC_RELAXED); }
inline void st8(uint8_t* p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

// Longest prefix of s of at most max bytes that does not cut a UTF-8 sequence.
inline size_t utf8Prefix(const std::string& s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

// Seqlock writer side over one metadata block.
inline uint64_t beginWrite(uint8_t* meta) {
  const uint64_t s = ld64(meta + M::seq);
  st64(meta + M::seq, s + 1);
  std::atomic_thread_fence(std::memory_order_release);
  return s + 1;
}
inline void endWrite(uint8_t* meta, uint64_t odd) {
  __atomic_store_n(reinterpret_cast<uint64_t*>(meta + M::seq), odd + 1, __ATOMIC_RELEASE);
}

// Seqlock reader: copies `len` bytes (multiple of 8) of the block into out; false if no stable copy within
// kReadTries (a writer in the middle of an update every time we looked).
inline bool readConsistent(const uint8_t* meta, uint8_t* out, size_t len) {
  for (int i = 0; i < kReadTries; ++i) {
    const uint64_t s1 = __atomic_load_n(reinterpret_cast<const uint64_t*>(meta + M::seq), __ATOMIC_ACQUIRE);
    if (s1 & 1) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    for (size_t o = 8; o < len; o += 8) {
      const uint64_t v = ld64(meta + o);
      std::memcpy(out + o, &v, 8);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint64_t s2 = ld64(meta + M::seq);
    if (s1 == s2) {
      std::memcpy(out, &s1, 8);
      return true;
    }
  }
  return false;
}

// Histogram count, min and max as the slot publishes them (kept by the writer beside the live buckets).
struct HistState {
  uint64_t count = 0, min = UINT64_MAX, max = 0;
};

// One link's slot, owned by the thread that owns the link. All methods are cheap and syscall-free.
class Slot {
 public:
  Slot(uint8_t* meta, uint64_t* queue, uint64_t* rtt, uint32_t index) : meta_(meta), q_(queue), r_(rtt), index_(index) {}
  uint32_t index() const { return index_; }

  // Hot path: one bucket store, and the bitmap bit the first time the bucket counts.
  // `bucket` is Histogram::bucketOf(v) (always < kBuckets).
  inline void recordQueue(uint32_t bucket, uint64_t v) { record(q_, meta_ + M::queueBitmap, qs_, bucket, v); }
  inline void recordRtt(uint32_t bucket, uint64_t v) { record(r_, meta_ + M::rttBitmap, rs_, bucket, v); }

  // Counters in file order; gauges; under the seqlock. peak is the highest occupancy of the last 1–2 s.
  struct Figures {
    uint64_t records, bytes, completions, creditUpdates, backpressure, wraps, resends, reconnects, wakeups;
    uint64_t occupancy, capacity;
  };
  inline void publish(const Figures& f, uint64_t nowMs = 0) {
    if (f.occupancy > peakNow_) peakNow_ = f.occupancy;
    uint8_t* m = meta_;
    const uint64_t s = beginWrite(m);
    uint8_t* c = m + M::counters;
    st64(c + 0, f.records);
    st64(c + 8, f.bytes);
    st64(c + 16, f.completions);
    st64(c + 24, f.creditUpdates);
    st64(c + 32, f.backpressure);
    st64(c + 40, f.wraps);
    st64(c + 48, f.resends);
    st64(c + 56, f.reconnects);
    st64(c + 64, f.wakeups);
    st64(m + M::gauges, f.occupancy);
    st64(m + M::gauges + 8, peakPrev_ > peakNow_ ? peakPrev_ : peakNow_);
    st64(m + M::gauges + 16, f.capacity);
    st64(m + M::queueHist, qs_.count);
    st64(m + M::queueHist + 8, qs_.count ? qs_.min : 0);
    st64(m + M::queueHist + 16, qs_.max);
    st64(m + M::rttHist, rs_.count);
    st64(m + M::rttHist + 8, rs_.count ? rs_.min : 0);
    st64(m + M::rttHist + 16, rs_.max);
    if (nowMs) {
      st64(m + M::updatedMs, nowMs);
      if (nowMs - windowMs_ >= 1000) {  // peak window: the gauge covers the last 1–2 s
        peakPrev_ = peakNow_;
        peakNow_ = f.occupancy;
        windowMs_ = nowMs;
      }
    }
    endWrite(m, s);
  }

  // Rare paths (state changes, errors): under the seqlock too.
  void setState(const std::string& state, uint64_t epoch) {
    const uint64_t s = beginWrite(meta_);
    st8(meta_ + M::state, stateCode(state));
    st64(meta_ + M::epoch, epoch);
    endWrite(meta_, s);
  }
  // A string changed without a new generation: namesSeq moves with it, so a reader that compares only the
  // identity bytes [8, 32) (not the 560 bytes of strings) still sees the change.
  void setPeer(const std::string& peer) {
    const uint64_t s = beginWrite(meta_);
    putString(M::peer, M::peerLen, peer, M::peerMax);
    bumpNames();
    endWrite(meta_, s);
  }
  void setProvider(const std::string& provider) {
    const uint64_t s = beginWrite(meta_);
    putString(M::provider, M::providerLen, provider, M::providerMax);
    bumpNames();
    endWrite(meta_, s);
  }
  // Errors by kind (at most 8 kinds; the rest are added to the last entry, "other").
  void setErrors(const std::map<std::string, uint64_t>& errors) {
    const uint64_t s = beginWrite(meta_);
    uint32_t i = 0;
    uint64_t other = 0;
    for (const auto& [kind, n] : errors) {
      if (i >= M::errorSlots - 1 && errors.size() > M::errorSlots) {
        other += n;
        continue;
      }
      putError(i++, kind, n);
    }
    if (other) putError(i++, "other", other);
    st8(meta_ + M::errorKinds, static_cast<uint8_t>(i));
    endWrite(meta_, s);
  }

  // Called by the file on allocation (under its mutex, before the slot is handed out).
  void init(uint32_t generation, uint8_t role, uint8_t transport, const std::string& linkId,
            const std::string& peer, const std::string& provider) {
    const uint64_t s = beginWrite(meta_);
    std::memset(meta_ + 16, 0, kMetaSize - 16);  // bitmaps included
    std::memset(q_, 0, kHistBytes);
    std::memset(r_, 0, kHistBytes);
    st32(meta_ + M::generation, generation);
    st8(meta_ + M::role, role);
    st8(meta_ + M::transport, transport);
    putString(M::linkId, M::idLen, linkId, M::idMax);
    putString(M::peer, M::peerLen, peer, M::peerMax);
    putString(M::provider, M::providerLen, provider, M::providerMax);
    st64(meta_ + M::openedMs, wallMs());
    st32(meta_ + M::inUse, 1);
    endWrite(meta_, s);
  }
  void release() {
    const uint64_t s = beginWrite(meta_);
    st32(meta_ + M::inUse, 0);
    endWrite(meta_, s);
  }

 private:
  void bumpNames() {
    uint16_t n;
    std::memcpy(&n, meta_ + M::namesSeq, 2);
    st16(meta_ + M::namesSeq, static_cast<uint16_t>(n + 1));
  }
  static inline void record(uint64_t* buckets, uint8_t* bitmap, HistState& hs, uint32_t bucket, uint64_t v) {
    uint64_t* b = buckets + bucket;
    const uint64_t old = __atomic_load_n(b, __ATOMIC_RELAXED);
    __atomic_store_n(b, old + 1, __ATOMIC_RELAXED);
    if (old == 0) {
      uint64_t* w = reinterpret_cast<uint64_t*>(bitmap) + (bucket >> 6);
      __atomic_store_n(w, __atomic_load_n(w, __ATOMIC_RELAXED) | (1ull << (bucket & 63)), __ATOMIC_RELAXED);
    }
    ++hs.count;
    if (v < hs.min) hs.min = v;
    if (v > hs.max) hs.max = v;
  }
  void putString(uint32_t off, uint32_t lenOff, const std::string& s, size_t max) {
    const size_t n = utf8Prefix(s, max);
    std::memset(meta_ + off, 0, max);
    std::memcpy(meta_ + off, s.data(), n);
    st16(meta_ + lenOff, static_cast<uint16_t>(n));
  }
  void putError(uint32_t i, const std::string& kind, uint64_t n) {
    uint8_t* e = meta_ + M::errors + i * M::errorEntry;
    std::memset(e, 0, M::errorKindMax);
    std::memcpy(e, kind.data(), utf8Prefix(kind, M::errorKindMax));
    st64(e + M::errorKindMax, n);
  }

  uint8_t* meta_;
  uint64_t* q_;
  uint64_t* r_;
  uint32_t index_;
  HistState qs_, rs_;
  uint64_t peakNow_ = 0, peakPrev_ = 0, windowMs_ = 0;
  friend class File;
};

// The process's file. Created on the first slot allocation (unless RDMAQ_STATS=0), removed at exit.
class File {
 public:
  static File& instance() {
    static File* f = new File();  // never destroyed: slots of links alive at exit stay valid
    return *f;
  }

  // A slot for a new link end, or nullptr (statistics off, file unavailable, or every slot taken: counted
  // in the header's droppedLinks).
  Slot* allocate(uint8_t role, uint8_t transport, const std::string& linkId, const std::string& peer,
                 const std::string& provider) {
    std::lock_guard<std::mutex> g(mu_);
    if (!ensureOpen()) return nullptr;
    uint32_t idx;
    if (!free_.empty()) {
      idx = free_.back();
      free_.pop_back();
    } else if (highWater_ < slots_) {
      idx = highWater_++;
      st32(base_ + H::highWater, highWater_);
    } else {
      st32(base_ + H::droppedLinks, ++dropped_);
      return nullptr;
    }
    uint8_t* meta = base_ + kHeaderSize + static_cast<size_t>(idx) * kMetaSize;
    uint8_t* hist = base_ + kHeaderSize + static_cast<size_t>(slots_) * kMetaSize + static_cast<size_t>(idx) * kSlotHistSize;
    Slot* s = new Slot(meta, reinterpret_cast<uint64_t*>(hist), reinterpret_cast<uint64_t*>(hist + kHistBytes), idx);
    s->init(++generation_[idx], role, transport, linkId, peer, provider);
    return s;
  }

  void free(Slot* s) {
    if (!s) return;
    std::lock_guard<std::mutex> g(mu_);
    s->release();
    free_.push_back(s->index());
    delete s;
  }

  // App name (header, own seqlock). Empty = keep the default (RDMAQ_APP_NAME, else the command line).
  void setAppName(const std::string& name) {
    std::lock_guard<std::mutex> g(mu_);
    app_ = name;
    if (base_) writeApp();
  }
  std::string appName() {
    std::lock_guard<std::mutex> g(mu_);
    return app_;
  }

  // Header flags (bit 0: this process is an rdmaq agent: other agents do not report its links as an app's).
  void setFlags(uint32_t flags) {
    std::lock_guard<std::mutex> g(mu_);
    flags_ = flags;
    if (base_) st32(base_ + H::flags, flags_);
  }

  void heartbeat() {
    std::lock_guard<std::mutex> g(mu_);
    if (base_) st64(base_ + H::heartbeatMs, wallMs());
  }

  // Path of the file ("" if none), and why there is none.
  std::string path() {
    std::lock_guard<std::mutex> g(mu_);
    return base_ ? path_ : "";
  }
  std::string error() {
    std::lock_guard<std::mutex> g(mu_);
    return error_;
  }
  bool enabled() const {
    const char* e = getenv("RDMAQ_STATS");
    return !(e && (std::strcmp(e, "0") == 0 || std::strcmp(e, "off") == 0 || std::strcmp(e, "false") == 0));
  }

 private:
  File() {
    const char* a = getenv("RDMAQ_APP_NAME");
    if (a && *a) app_ = a;
    else app_ = commandLine();
  }

  static std::string commandLine() {
    FILE* f = fopen("/proc/self/cmdline", "r");
    if (!f) return "";
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    std::string s(buf, n);
    while (!s.empty() && s.back() == '\0') s.pop_back();
    for (char& c : s)
      if (c == '\0') c = ' ';
    return s;
  }

  static uint64_t selfStart() {
    FILE* f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char* p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (; *p && field < 22; ++p)
      if (*p == ' ') ++field;
    return field == 22 ? strtoull(p, nullptr, 10) : 0;
  }

  static uint64_t startOf(long pid) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    FILE* f = fopen(p, "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char* q = strrchr(buf, ')');
    if (!q) return 0;
    int field = 2;
    for (; *q && field < 22; ++q)
      if (*q == ' ') ++field;
    return field == 22 ? strtoull(q, nullptr, 10) : 0;
  }

  // Removes the files of dead processes (kill -9, a signal) that we may remove: once, when our file is made.
  static void sweep(const std::string& dir) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = readdir(d)) {
      long pid = 0;
      unsigned long long st = 0;
      char tail = 0;
      if (sscanf(e->d_name, "rdmaq-stats-%ld-%llu%c", &pid, &st, &tail) != 2 || pid <= 0) continue;
      if (startOf(pid) == st) continue;
      unlink((dir + "/" + e->d_name).c_str());
    }
    closedir(d);
  }

  void writeApp() {
    const uint64_t s = ld64(base_ + H::appSeq);
    st64(base_ + H::appSeq, s + 1);
    std::atomic_thread_fence(std::memory_order_release);
    const size_t n = utf8Prefix(app_, H::appMax);
    std::memset(base_ + H::app, 0, H::appMax);
    std::memcpy(base_ + H::app, app_.data(), n);
    st32(base_ + H::appLen, static_cast<uint32_t>(n));
    __atomic_store_n(reinterpret_cast<uint64_t*>(base_ + H::appSeq), s + 2, __ATOMIC_RELEASE);
  }

  bool ensureOpen() {
    if (base_) return true;
    if (tried_ || !enabled()) return false;
    tried_ = true;
    const char* d = getenv("RDMAQ_STATS_DIR");
    const std::string dir = d && *d ? d : "/dev/shm";
    slots_ = kDefaultSlots;
    if (const char* n = getenv("RDMAQ_STATS_SLOTS")) {
      const long v = strtol(n, nullptr, 10);
      if (v >= 1 && v <= static_cast<long>(kMaxSlots)) slots_ = static_cast<uint32_t>(v);
    }
    const uint64_t start = selfStart();
    sweep(dir);
    path_ = dir + "/rdmaq-stats-" + std::to_string(getpid()) + "-" + std::to_string(start);
    size_ = kHeaderSize + static_cast<size_t>(slots_) * (kMetaSize + kSlotHistSize);
    // A file of ours from before an exec (same pid and start time cannot be another process): replace it.
    unlink(path_.c_str());
    int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) return fail("cannot create " + path_ + ": " + strerror(errno));
    fchmod(fd, 0640);  // whatever the umask
    if (const char* g = getenv("RDMAQ_STATS_GROUP")) {
      if (*g) {
        gid_t gid;
        char* end = nullptr;
        const long num = strtol(g, &end, 10);
        if (end && *end == 0) gid = static_cast<gid_t>(num);
        else {
          struct group* gr = getgrnam(g);
          if (!gr) {
            fprintf(stderr, "rdmaq: RDMAQ_STATS_GROUP=%s: no such group; the statistics file keeps the process's group\n", g);
            gid = static_cast<gid_t>(-1);
          } else {
            gid = gr->gr_gid;
          }
        }
        if (gid != static_cast<gid_t>(-1) && fchown(fd, static_cast<uid_t>(-1), gid) != 0) {
          fprintf(stderr, "rdmaq: cannot give the statistics file %s to group %s (%s): is this process a member?\n",
                  path_.c_str(), g, strerror(errno));
        }
      }
    }
    if (ftruncate(fd, static_cast<off_t>(size_)) != 0) {
      const int e = errno;
      close(fd);
      unlink(path_.c_str());
      return fail("cannot size " + path_ + ": " + strerror(e));
    }
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
      const int e = errno;
      unlink(path_.c_str());
      return fail("cannot map " + path_ + ": " + strerror(e));
    }
    uint8_t* b = static_cast<uint8_t*>(p);
    st32(b + H::version, kVersion);
    st32(b + H::headerSize, kHeaderSize);
    st32(b + H::metaSize, kMetaSize);
    st32(b + H::slotHistSize, kSlotHistSize);
    st32(b + H::slotCount, slots_);
    st32(b + H::buckets, kBuckets);
    st32(b + H::pid, static_cast<uint32_t>(getpid()));
    st64(b + H::startTime, start);
    st32(b + H::flags, flags_);
    st64(b + H::createdMs, wallMs());
    st64(b + H::heartbeatMs, wallMs());
    base_ = b;
    generation_.assign(slots_, 0);
    writeApp();
    // Magic last, with release: a reader that sees it sees a complete header.
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(b + H::magic, kMagic, 8);
    atexit([] { File::instance().removeAtExit(); });
    return true;
  }

  void removeAtExit() {
    // No lock: exit is single-threaded by now as far as we are concerned; the mapping stays.
    if (base_ && !path_.empty()) unlink(path_.c_str());
  }

  bool fail(const std::string& why) {
    error_ = why;
    fprintf(stderr, "rdmaq: statistics file disabled: %s\n", why.c_str());
    return false;
  }

  std::mutex mu_;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t slots_ = 0, highWater_ = 0, dropped_ = 0, flags_ = 0;
  bool tried_ = false;
  std::string path_, error_, app_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> generation_;
};

// ---- reader side (the agent, rdmaq-stat) -----------------------------------------------------------------
//
// A process may truncate or rewrite its own file at any moment; a read through a mapping past the file's end
// raises SIGBUS. Reads from a mapping therefore run under sigsetjmp with a SIGBUS handler that jumps back
// (only while this thread is inside a guarded read; otherwise it chains to whatever handler was there).

inline thread_local sigjmp_buf* tlBusJump = nullptr;
inline struct sigaction prevBus;

inline void onBus(int sig, siginfo_t* si, void* uc) {
  if (tlBusJump) siglongjmp(*tlBusJump, 1);
  if (prevBus.sa_flags & SA_SIGINFO) {
    if (prevBus.sa_sigaction) return prevBus.sa_sigaction(sig, si, uc);
  } else if (prevBus.sa_handler != SIG_DFL && prevBus.sa_handler != SIG_IGN) {
    return prevBus.sa_handler(sig);
  }
  signal(SIGBUS, SIG_DFL);
  raise(SIGBUS);
}

inline void installBusGuard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = onBus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &prevBus);
  });
}

// Snapshot of a mapped file into `out`, in the file's own layout but compact:
//   [header copy: 4096 B]
//   for each slot below the header's highWater (bounded by slotCount and the mapping):
//     [meta copy: 2048 B, seq = 1 (odd) when no stable copy was had]
//     [u32 nQueue, u32 nRtt, then nQueue + nRtt × {u32 index, u32 0, u64 count}] (buckets of in-use slots
//      whose bitmap bit is set; the bitmap comes from the meta copy)
// Returns "" or the reason the file cannot be read (the caller names the file).
inline std::string snapshot(const uint8_t* base, size_t size, std::vector<uint8_t>& out) {
  out.clear();
  if (size < kHeaderSize) return "file is " + std::to_string(size) + " bytes, smaller than the 4096-byte header (truncated)";
  installBusGuard();
  sigjmp_buf jb;
  if (sigsetjmp(jb, 1)) {
    tlBusJump = nullptr;
    out.clear();
    return "file was truncated while being read (SIGBUS)";
  }
  tlBusJump = &jb;
  out.resize(kHeaderSize);
  for (uint32_t o = 0; o < kHeaderSize; o += 8) {
    const uint64_t v = ld64(base + o);
    std::memcpy(out.data() + o, &v, 8);
  }
  uint32_t slotCount, highWater, metaSize, histSize, buckets;
  std::memcpy(&slotCount, out.data() + H::slotCount, 4);
  std::memcpy(&highWater, out.data() + H::highWater, 4);
  std::memcpy(&metaSize, out.data() + H::metaSize, 4);
  std::memcpy(&histSize, out.data() + H::slotHistSize, 4);
  std::memcpy(&buckets, out.data() + H::buckets, 4);
  // The layout is only walked if it is this version's; the TS side reports what is wrong with the header.
  const bool layoutOk = std::memcmp(out.data(), kMagic, 8) == 0 && metaSize == kMetaSize &&
                        histSize == kSlotHistSize && buckets == kBuckets && slotCount >= 1 && slotCount <= kMaxSlots &&
                        highWater <= slotCount &&
                        size >= kHeaderSize + static_cast<size_t>(slotCount) * (kMetaSize + kSlotHistSize);
  if (layoutOk) {
    const uint8_t* metas = base + kHeaderSize;
    const uint8_t* hists = metas + static_cast<size_t>(slotCount) * kMetaSize;
    for (uint32_t i = 0; i < highWater; ++i) {
      const size_t at = out.size();
      out.resize(at + kMetaSize + 8);
      uint8_t* m = out.data() + at;
      if (!readConsistent(metas + static_cast<size_t>(i) * kMetaSize, m, kMetaSize)) {
        const uint64_t busy = 1;
        std::memcpy(m, &busy, 8);
        std::memset(m + kMetaSize, 0, 8);
        continue;
      }
      uint32_t inUse;
      std::memcpy(&inUse, m + M::inUse, 4);
      uint32_t counts[2] = {0, 0};
      if (inUse == 1) {
        for (int h = 0; h < 2; ++h) {
          const uint8_t* bm = m + (h == 0 ? M::queueBitmap : M::rttBitmap);
          const uint64_t* src = reinterpret_cast<const uint64_t*>(hists + static_cast<size_t>(i) * kSlotHistSize + h * kHistBytes);
          for (uint32_t w = 0; w < kBitmapWords; ++w) {
            uint64_t word;
            std::memcpy(&word, bm + w * 8, 8);
            while (word) {
              const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(word));
              word &= word - 1;
              const uint32_t idx = w * 64 + bit;
              if (idx >= kBuckets) break;
              const uint64_t v = __atomic_load_n(src + idx, __ATOMIC_RELAXED);
              const size_t p = out.size();
              out.resize(p + 16);
              const uint32_t pair[2] = {idx, 0};
              std::memcpy(out.data() + p, pair, 8);
              std::memcpy(out.data() + p + 8, &v, 8);
              ++counts[h];
            }
          }
        }
      }
      std::memcpy(out.data() + at + kMetaSize, counts, 8);
    }
  }
  tlBusJump = nullptr;
  return "";
}

// Incremental reader state of one mapping (the agent scans every second; most slots have not changed since the
// previous scan, or were only republished with the same figures, e.g. by the 1 s heartbeat).
struct BucketMemo {
  std::vector<uint32_t> idx;  // non-empty buckets as last sent, ascending
  std::vector<uint64_t> val;  // their counts
  uint64_t count = 0;         // the histogram count published with them
};
struct SlotMemo {
  uint64_t seq = 0;         // sequence of the last stable copy (0: none yet)
  uint64_t figures = 0;     // hash of bytes [32, kIdentStart) of that copy (counters, gauges, errors)
  uint64_t identity[3] = {};  // bytes [8, 32): in-use, generation, role, transport, state, lengths, namesSeq
  BucketMemo h[2];          // queue, rtt
};
constexpr uint32_t kMemoEnd = M::queueBitmap;  // everything but the bitmaps (which only grow with the count)
constexpr uint32_t kIdentStart = M::linkId;    // the strings: read and sent only when the identity changed
constexpr uint32_t kDeltaMeta = kMemoEnd;      // meta bytes of a changed slot whose identity changed
constexpr uint32_t kDeltaFigures = kIdentStart;  // meta bytes of a changed slot with the same identity

// 64-bit hash of n bytes (multiple of 8), four independent lanes (a single dependent multiply chain over
// 54 words was most of a slot's cost). The memo keeps hashes, not copies: less memory traffic per slot; a
// collision would only delay an update to the next change.
inline uint64_t hashWords(const uint8_t* p, size_t n) {
  uint64_t a = 0x9E3779B97F4A7C15ull, b = 0xC2B2AE3D27D4EB4Full, c = 0x165667B19E3779F9ull, d = 0x27D4EB2F165667C5ull;
  size_t o = 0;
  for (; o + 32 <= n; o += 32) {
    uint64_t w[4];
    std::memcpy(w, p + o, 32);
    a = (a ^ w[0]) * 0x100000001B3ull;
    b = (b ^ w[1]) * 0x100000001B3ull;
    c = (c ^ w[2]) * 0x100000001B3ull;
    d = (d ^ w[3]) * 0x100000001B3ull;
  }
  for (; o + 8 <= n; o += 8) {
    uint64_t w;
    std::memcpy(&w, p + o, 8);
    a = (a ^ w) * 0x100000001B3ull;
  }
  uint64_t h = a ^ (b >> 7 | b << 57) ^ (c >> 19 | c << 45) ^ (d >> 31 | d << 33);
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

// Like snapshot(), but each slot below highWater is written as
//   [u32 tag, u32 flags] then, for tag 2 only, [meta bytes 0..464 (kDeltaFigures), or 0..1024 (kDeltaMeta,
//   with the strings) when flags bit 0 is set][u32 nQueue, u32 nRtt][pairs {u32 index, u32 0, u64 count}]:
//   tag 0 = unchanged since the previous snapshotDelta() of this memo (same sequence, or a republication of the
//           same bytes), 1 = busy (no stable copy), 2 = changed; flags bit 0 = its identity (generation, in-use,
//           role, transport, strings) changed too, so the reader decodes the strings again.
//   The pairs are only the buckets whose count changed since the previous delta sent for this slot (all the
//   non-empty ones after an identity change or forget()), with their cumulative counts; a histogram whose
//   published count did not change is not walked at all.
// Only the first 464 bytes of a slot (figures and identity) are read under its seqlock, and its first 1024
// (with the strings) only when the identity bytes [8, 32) changed: a new generation, a state, or namesSeq,
// which the writer moves with every string it changes. The bitmaps, like the buckets, are monotonic and
// written outside the lock, and are read only for a histogram whose count moved.
inline std::string snapshotDelta(const uint8_t* base, size_t size, std::vector<uint8_t>& out,
                                 std::vector<SlotMemo>& memo) {
  out.clear();
  if (size < kHeaderSize) return "file is " + std::to_string(size) + " bytes, smaller than the 4096-byte header (truncated)";
  installBusGuard();
  sigjmp_buf jb;
  if (sigsetjmp(jb, 1)) {
    tlBusJump = nullptr;
    out.clear();
    memo.clear();
    return "file was truncated while being read (SIGBUS)";
  }
  tlBusJump = &jb;
  out.resize(kHeaderSize);
  for (uint32_t o = 0; o < kHeaderSize; o += 8) {
    const uint64_t v = ld64(base + o);
    std::memcpy(out.data() + o, &v, 8);
  }
  uint32_t slotCount, highWater, metaSize, histSize, buckets;
  std::memcpy(&slotCount, out.data() + H::slotCount, 4);
  std::memcpy(&highWater, out.data() + H::highWater, 4);
  std::memcpy(&metaSize, out.data() + H::metaSize, 4);
  std::memcpy(&histSize, out.data() + H::slotHistSize, 4);
  std::memcpy(&buckets, out.data() + H::buckets, 4);
  const bool layoutOk = std::memcmp(out.data(), kMagic, 8) == 0 && metaSize == kMetaSize &&
                        histSize == kSlotHistSize && buckets == kBuckets && slotCount >= 1 && slotCount <= kMaxSlots &&
                        highWater <= slotCount &&
                        size >= kHeaderSize + static_cast<size_t>(slotCount) * (kMetaSize + kSlotHistSize);
  if (layoutOk) {
    if (memo.size() < highWater) memo.resize(highWater);
    out.reserve(kHeaderSize + static_cast<size_t>(highWater) * 64);
    const uint8_t* metas = base + kHeaderSize;
    const uint8_t* hists = metas + static_cast<size_t>(slotCount) * kMetaSize;
    alignas(8) uint8_t m[kDeltaMeta];
    auto tagOnly = [&out](uint32_t tag) {
      const uint32_t t[2] = {tag, 0};
      const size_t at = out.size();
      out.resize(at + 8);
      std::memcpy(out.data() + at, t, 8);
    };
    for (uint32_t i = 0; i < highWater; ++i) {
      SlotMemo& mo = memo[i];
      const uint8_t* src = metas + static_cast<size_t>(i) * kMetaSize;
      // Unchanged sequence: nothing was published since the last stable copy.
      const uint64_t s0 = __atomic_load_n(reinterpret_cast<const uint64_t*>(src + M::seq), __ATOMIC_ACQUIRE);
      if (mo.seq != 0 && s0 == mo.seq) {
        tagOnly(0);
        continue;
      }
      // The figures and identity bytes first (464 of the 1024); the strings only when the identity changed.
      if (!readConsistent(src, m, kDeltaFigures)) {
        tagOnly(1);
        continue;
      }
      const bool first = mo.seq == 0;
      bool ident = first || std::memcmp(m + 8, mo.identity, 24) != 0;
      if (ident && !readConsistent(src, m, kDeltaMeta)) {  // a second, whole copy: strings and figures agree
        tagOnly(1);
        continue;
      }
      uint64_t seq;
      std::memcpy(&seq, m, 8);
      ident = first || std::memcmp(m + 8, mo.identity, 24) != 0;
      const uint64_t figures = hashWords(m + 32, kIdentStart - 32);
      if (!ident && figures == mo.figures) {
        mo.seq = seq;  // republished, same figures
        tagOnly(0);
        continue;
      }
      mo.seq = seq;
      std::memcpy(mo.identity, m + 8, 24);
      mo.figures = figures;
      if (ident) {
        for (auto& b : mo.h) {
          b.idx.clear();
          b.val.clear();
          b.count = 0;
        }
      }
      const uint32_t metaLen = ident ? kDeltaMeta : kDeltaFigures;
      const size_t at = out.size();
      out.resize(at + 8 + metaLen + 8);
      const uint32_t tag[2] = {2, ident ? 1u : 0u};
      std::memcpy(out.data() + at, tag, 8);
      std::memcpy(out.data() + at + 8, m, metaLen);
      uint32_t inUse;
      std::memcpy(&inUse, m + M::inUse, 4);
      uint32_t counts[2] = {0, 0};
      if (inUse == 1) {
        for (int h = 0; h < 2; ++h) {
          BucketMemo& bm = mo.h[h];
          uint64_t count;
          std::memcpy(&count, m + (h == 0 ? M::queueHist : M::rttHist), 8);
          if (count == bm.count && !bm.idx.empty()) continue;  // histogram did not move
          if (count == 0 && bm.idx.empty()) continue;
          bm.count = count;
          const uint64_t* words = reinterpret_cast<const uint64_t*>(src + (h == 0 ? M::queueBitmap : M::rttBitmap));
          const uint64_t* hb =
              reinterpret_cast<const uint64_t*>(hists + static_cast<size_t>(i) * kSlotHistSize + h * kHistBytes);
          // Most records land in buckets already known: if the known buckets alone hold the published count,
          // no new bucket needs to be found and the bitmap (464 bytes) is not read. A bucket counted ahead of
          // the count is found later, when the count passes the known sum (at the latest once the link is
          // quiet: then the count equals the sum of all buckets).
          if (!bm.idx.empty()) {
            uint64_t known = 0;
            for (uint32_t idx : bm.idx) known += __atomic_load_n(hb + idx, __ATOMIC_RELAXED);
            if (known >= count) {
              for (size_t k = 0; k < bm.idx.size(); ++k) {
                const uint64_t v = __atomic_load_n(hb + bm.idx[k], __ATOMIC_RELAXED);
                if (v == bm.val[k]) continue;
                bm.val[k] = v;
                const size_t p = out.size();
                out.resize(p + 16);
                const uint32_t pair[2] = {bm.idx[k], 0};
                std::memcpy(out.data() + p, pair, 8);
                std::memcpy(out.data() + p + 8, &v, 8);
                ++counts[h];
              }
              continue;
            }
          }
          size_t k = 0;  // position in the memo's (ascending) list
          for (uint32_t w = 0; w < kBitmapWords; ++w) {
            uint64_t word = __atomic_load_n(words + w, __ATOMIC_RELAXED);
            while (word) {
              const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(word));
              word &= word - 1;
              const uint32_t idx = w * 64 + bit;
              if (idx >= kBuckets) break;
              const uint64_t v = __atomic_load_n(hb + idx, __ATOMIC_RELAXED);
              while (k < bm.idx.size() && bm.idx[k] < idx) ++k;
              if (k < bm.idx.size() && bm.idx[k] == idx) {
                if (bm.val[k] == v) continue;
                bm.val[k] = v;
              } else {
                bm.idx.insert(bm.idx.begin() + static_cast<long>(k), idx);
                bm.val.insert(bm.val.begin() + static_cast<long>(k), v);
              }
              const size_t p = out.size();
              out.resize(p + 16);
              const uint32_t pair[2] = {idx, 0};
              std::memcpy(out.data() + p, pair, 8);
              std::memcpy(out.data() + p + 8, &v, 8);
              ++counts[h];
            }
          }
        }
      }
      std::memcpy(out.data() + at + 8 + metaLen, counts, 8);
    }
  }
  tlBusJump = nullptr;
  return "";
}

}  // namespace stats
}  // namespace rdmaq

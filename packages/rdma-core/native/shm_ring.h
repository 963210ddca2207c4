// shm transport, the ring file: the ring in a shared-memory file mapped by both processes (DESIGN §2).
// ShmTx / ShmRx (shm_link.h) own one each.
//
// File layout (all little-endian, one 4 KiB header page then the data region):
//   [0, 128)    ShmFileHeader: magic "RDMAQRNG", version, capacity, ring id, pids + start times of both ends
//   [128, 192)  head, headSeq     — written by the consumer (release), read by the producer (acquire)
//   [192, 256)  tail, tailSeq     — written by the producer (release), read by the consumer (acquire)
//   [256, 320)  parked            — consumer sleeps on the .rxw FIFO while set
//   [320, 384)  writerNeed        — producer sleeps on the .txw FIFO until head >= writerNeed (0 = not waiting)
//   [4096, 4096 + capacity)       data region
// Each counter sits on its own 64-byte line so the two cores do not false-share.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "record.h"

namespace rdmaq {

constexpr char kRingMagic[8] = {'R', 'D', 'M', 'A', 'Q', 'R', 'N', 'G'};
constexpr uint32_t kRingVersion = 1;
constexpr uint64_t kHeaderPage = 4096;
constexpr uint64_t kMinCapacity = 64 * 1024;
constexpr uint64_t kMaxCapacity = 1ull << 30;

struct ShmFileHeader {
  char magic[8];
  uint32_t version;
  uint32_t headerBytes;  // kHeaderPage
  uint64_t capacity;
  uint64_t ringId;
  uint64_t createdNs;
  std::atomic<int32_t> rxPid;
  std::atomic<int32_t> txPid;
  std::atomic<uint64_t> rxStart;  // /proc/<pid>/stat starttime, guards against pid reuse
  std::atomic<uint64_t> txStart;
};
static_assert(sizeof(ShmFileHeader) <= 128, "header fits its two lines");

struct alignas(64) ShmLine {
  std::atomic<uint64_t> a;
  std::atomic<uint64_t> b;
  char pad[48];
};
static_assert(sizeof(ShmLine) == 64, "one cache line");

struct ShmControl {
  ShmLine head;        // a = head, b = headSeq
  ShmLine tail;        // a = tail, b = tailSeq
  ShmLine parked;      // a = consumer parked
  ShmLine writerNeed;  // a = head the producer waits for (0 = not waiting)
};

// Field 22 (starttime) of a /proc/<pid>/stat line (NUL-terminated); 0 if it has none. The command name
// (field 2) is chosen by the process itself and may hold spaces and ')': fields count from the last ')'.
inline uint64_t statStartTime(const char* line) {
  const char* p = strrchr(line, ')');
  if (!p) return 0;
  int field = 2;
  for (; *p && field < 22; ++p)
    if (*p == ' ') ++field;
  return field == 22 ? strtoull(p, nullptr, 10) : 0;
}

// Process start time (clock ticks since boot) from /proc/<pid>/stat field 22; 0 if the process is gone.
inline uint64_t processStart(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return statStartTime(buf);
}

inline bool processAlive(int pid, uint64_t start) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  const uint64_t s = processStart(pid);
  return s != 0 && (start == 0 || s == start);
}

// The mapped ring file. Owned by ShmTx / ShmRx.
class ShmRing {
 public:
  struct Info {
    uint32_t version;
    uint64_t capacity;
    uint64_t ringId;
    uint64_t head, tail;
    int32_t rxPid, txPid;
  };

  // Opens (and with `create`, creates) the ring at `path`; validates magic, version and size.
  // `startSeq`: sequence of the first record of a freshly created ring (a receiver that keeps its position
  // starts a new ring where it left off, so a sender can resend into it with the same sequences).
  ShmRing(const std::string& path, bool create, uint64_t capacity, bool receiver, uint64_t startSeq = 1)
      : path_(path) {
    if (create) {
      if (capacity < kMinCapacity || capacity > kMaxCapacity || (capacity & (capacity - 1)) != 0) {
        throw RdmaqError("ERR_RDMAQ_ARG", "ring capacity " + std::to_string(capacity) +
                                                  " must be a power of two between 64 KiB and 1 GiB");
      }
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd_ >= 0) {
        initNew(capacity, startSeq < 1 ? 1 : startSeq, receiver);
        created_ = true;
      } else if (errno != EEXIST) {
        int e = errno;
        throw RdmaqError("ERR_RDMAQ_RING_OPEN", "cannot create ring file " + path + ": " + errnoText(e), e);
      }
    }
    if (fd_ < 0) {
      fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd_ < 0) {
        int e = errno;
        throw RdmaqError("ERR_RDMAQ_RING_OPEN", "cannot open ring file " + path + ": " + errnoText(e), e);
      }
      mapExisting();
    }
    // Claim our end; refuse a second live process on the same end.
    std::atomic<int32_t>& pid = receiver ? hdr_->rxPid : hdr_->txPid;
    std::atomic<uint64_t>& start = receiver ? hdr_->rxStart : hdr_->txStart;
    const int32_t other = pid.load();
    if (other != 0 && other != getpid() && processAlive(other, start.load())) {
      unmap();
      throw RdmaqError("ERR_RDMAQ_LINK_BUSY", std::string("ring ") + path + " is in use by live " +
                                                      (receiver ? "receiver" : "sender") + " process " +
                                                      std::to_string(other));
    }
    start.store(processStart(getpid()));
    pid.store(getpid());
    receiver_ = receiver;
  }

  ~ShmRing() { close(false); }
  ShmRing(const ShmRing&) = delete;
  ShmRing& operator=(const ShmRing&) = delete;

  uint8_t* data() const { return base_ + kHeaderPage; }
  uint64_t capacity() const { return cap_; }
  ShmControl* ctl() const { return ctl_; }
  ShmFileHeader* header() const { return hdr_; }
  const std::string& path() const { return path_; }
  bool isOpen() const { return base_ != nullptr; }
  // True if this open created the file (a fresh ring), false if it attached to an existing one.
  bool created() const { return created_; }

  // Gives up our end (pid cleared so the sweep knows), unmaps; `unlinkFiles` removes ring + FIFOs.
  void close(bool unlinkFiles) {
    if (base_) {
      std::atomic<int32_t>& pid = receiver_ ? hdr_->rxPid : hdr_->txPid;
      int32_t me = getpid();
      pid.compare_exchange_strong(me, 0);
      unmap();
    }
    if (unlinkFiles) removeFiles(path_);
  }

  // A share of the mapping's lifetime for the JS Buffer over the ring: the memory is unmapped when both the
  // Buffer is collected and this ring is closed, in either order. (When a Worker or the process ends, Node
  // runs finalizers in no set order: with the Buffer owning the mapping alone, a link end's own finalizer
  // then wrote its pid into unmapped memory — SIGSEGV.)
  std::shared_ptr<uint8_t> shareMapping() const { return mapping_; }

  static void removeFiles(const std::string& ringPath) {
    unlink(ringPath.c_str());
    std::string stem = ringPath;
    if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".ring") == 0) stem.resize(stem.size() - 5);
    unlink((stem + ".rxw").c_str());
    unlink((stem + ".txw").c_str());
  }

  // Reads and validates a ring file without claiming an end.
  static Info inspect(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      throw RdmaqError("ERR_RDMAQ_RING_OPEN", "cannot open ring file " + path + ": " + errnoText(e), e);
    }
    struct stat st;
    fstat(fd, &st);
    if (static_cast<uint64_t>(st.st_size) < kHeaderPage) {
      ::close(fd);
      throw RdmaqError("ERR_RDMAQ_RING_SIZE", sizeMessage(path, st.st_size, 0));
    }
    void* p = mmap(nullptr, kHeaderPage, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) {
      int e = errno;
      throw RdmaqError("ERR_RDMAQ_RING_OPEN", "cannot map ring file " + path + ": " + errnoText(e), e);
    }
    auto* h = static_cast<ShmFileHeader*>(p);
    auto* c = reinterpret_cast<ShmControl*>(static_cast<uint8_t*>(p) + 128);
    try {
      validate(path, h, st.st_size);
    } catch (...) {
      munmap(p, kHeaderPage);
      throw;
    }
    Info i{h->version, h->capacity, h->ringId, c->head.a.load(), c->tail.a.load(), h->rxPid.load(), h->txPid.load()};
    munmap(p, kHeaderPage);
    return i;
  }

  // Checks a ring file's header (written by whichever process created the file: the peer) against the file's
  // size before anything is mapped beyond it; throws ERR_RDMAQ_RING_MAGIC / _VERSION / _SIZE. Pure: fuzzed by
  // native/fuzz/fuzz_shm_header.cc.
  static void validate(const std::string& path, const ShmFileHeader* h, uint64_t size) {
    if (std::memcmp(h->magic, kRingMagic, 8) != 0) {
      throw RdmaqError("ERR_RDMAQ_RING_MAGIC", "file " + path + " is not an rdmaq ring (bad magic); remove it");
    }
    if (h->version != kRingVersion) {
      throw RdmaqError("ERR_RDMAQ_RING_VERSION", "ring file " + path + " has layout version " +
                                                         std::to_string(h->version) + ", this build speaks " +
                                                         std::to_string(kRingVersion) +
                                                         "; stop the other rdmaq build or remove the file");
    }
    const uint64_t cap = h->capacity;
    if (h->headerBytes != kHeaderPage || cap < kMinCapacity || cap > kMaxCapacity || (cap & (cap - 1)) != 0 ||
        size != kHeaderPage + cap) {
      throw RdmaqError("ERR_RDMAQ_RING_SIZE", sizeMessage(path, size, cap));
    }
  }

  // Removes ring files in `dir` whose recorded receiver and sender are both dead (or gone cleanly).
  static std::vector<std::string> sweep(const std::string& dir) {
    std::vector<std::string> removed;
    DIR* d = opendir(dir.c_str());
    if (!d) return removed;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("rdmaq-", 0) != 0 || name.size() < 11 || name.compare(name.size() - 5, 5, ".ring") != 0) continue;
      std::string path = dir + "/" + name;
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      struct stat st;
      if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < kHeaderPage) {
        ::close(fd);
        continue;
      }
      void* p = mmap(nullptr, kHeaderPage, PROT_READ, MAP_SHARED, fd, 0);
      ::close(fd);
      if (p == MAP_FAILED) continue;
      auto* h = static_cast<ShmFileHeader*>(p);
      // Only files we understand: a ring of another version belongs to another build; leave it alone.
      bool ours = std::memcmp(h->magic, kRingMagic, 8) == 0 && h->version == kRingVersion;
      // (The creator records its pid before the magic, so a ring being created is never taken for stale.)
      bool dead = ours && !processAlive(h->rxPid.load(), h->rxStart.load()) &&
                  !processAlive(h->txPid.load(), h->txStart.load());
      munmap(p, kHeaderPage);
      if (dead) {
        removeFiles(path);
        removed.push_back(path);
      }
    }
    closedir(d);
    sweepOrphanFifos(dir, removed);
    return removed;
  }

  // Wake-up FIFOs whose ring file is gone (a process died between removing the ring and its FIFOs, or an
  // older build left them). Only FIFOs untouched for kOrphanFifoAgeS: an end being opened right now creates
  // its FIFOs around the ring file, and a FIFO's mtime moves on every wake-up write.
  static constexpr int64_t kOrphanFifoAgeS = 60;
  static void sweepOrphanFifos(const std::string& dir, std::vector<std::string>& removed) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    const time_t now = time(nullptr);
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("rdmaq-", 0) != 0 || name.size() < 11) continue;
      std::string ext = name.substr(name.size() - 4);
      if (ext != ".rxw" && ext != ".txw") continue;
      std::string path = dir + "/" + name;
      struct stat st;
      if (lstat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) continue;
      if (now - st.st_mtime < kOrphanFifoAgeS) continue;
      struct stat ring;
      std::string ringPath = path.substr(0, path.size() - 4) + ".ring";
      if (stat(ringPath.c_str(), &ring) == 0 || errno != ENOENT) continue;
      if (unlink(path.c_str()) == 0) removed.push_back(path);
    }
    closedir(d);
  }

 private:
  static std::string sizeMessage(const std::string& path, uint64_t size, uint64_t cap) {
    return "ring file " + path + " has " + std::to_string(size) + " bytes" +
           (cap ? ", its header says capacity " + std::to_string(cap) + " (expected " +
                      std::to_string(kHeaderPage + cap) + " bytes)"
                : " (too small for a ring header)") +
           "; it is damaged or not an rdmaq ring: remove it";
  }

  void initNew(uint64_t capacity, uint64_t startSeq, bool receiver) {
    if (ftruncate(fd_, static_cast<off_t>(kHeaderPage + capacity)) != 0) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      unlink(path_.c_str());
      throw RdmaqError("ERR_RDMAQ_RING_OPEN", "cannot size ring file " + path_ + ": " + errnoText(e), e);
    }
    map(kHeaderPage + capacity);
    cap_ = capacity;
    hdr_->version = kRingVersion;
    hdr_->headerBytes = kHeaderPage;
    hdr_->capacity = capacity;
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id) id = monotonicNs() ^ (static_cast<uint64_t>(getpid()) << 32);
    hdr_->ringId = id;
    hdr_->createdNs = monotonicNs();
    ctl_->head.a.store(0);
    ctl_->head.b.store(startSeq);
    ctl_->tail.a.store(0);
    ctl_->tail.b.store(startSeq);
    // Our pid before the magic: a sweep running in another process at this very moment must see a live
    // owner, never a ring with no process recorded (it would remove it under our feet).
    (receiver ? hdr_->rxStart : hdr_->txStart).store(processStart(getpid()));
    (receiver ? hdr_->rxPid : hdr_->txPid).store(getpid());
    // The magic last: a concurrent sweep/inspect sees either nothing or a complete header.
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(hdr_->magic, kRingMagic, 8);
  }

  void mapExisting() {
    struct stat st;
    if (fstat(fd_, &st) != 0) {
      int e = errno;
      throw RdmaqError("ERR_RDMAQ_RING_OPEN", "cannot stat ring file " + path_ + ": " + errnoText(e), e);
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size < kHeaderPage) {
      ::close(fd_);
      fd_ = -1;
      throw RdmaqError("ERR_RDMAQ_RING_SIZE", sizeMessage(path_, size, 0));
    }
    map(kHeaderPage);
    try {
      validate(path_, hdr_, size);
    } catch (...) {
      unmap();
      throw;
    }
    cap_ = hdr_->capacity;
    mapping_.reset();  // the header-only mapping: nobody else holds it yet
    base_ = nullptr;
    map(kHeaderPage + cap_);
  }

  void map(uint64_t len) {
    // MAP_POPULATE: fault the ring in now, not on the data path.
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      throw RdmaqError("ERR_RDMAQ_RING_OPEN", "cannot map ring file " + path_ + ": " + errnoText(e), e);
    }
    base_ = static_cast<uint8_t*>(p);
    len_ = len;
    mapping_ = std::shared_ptr<uint8_t>(base_, [len](uint8_t* b) { munmap(b, len); });
    hdr_ = reinterpret_cast<ShmFileHeader*>(base_);
    ctl_ = reinterpret_cast<ShmControl*>(base_ + 128);
  }

  void unmap() {
    mapping_.reset();  // unmapped here unless a Buffer still shares it
    base_ = nullptr;
    hdr_ = nullptr;
    ctl_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::string path_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t len_ = 0;
  uint64_t cap_ = 0;
  ShmFileHeader* hdr_ = nullptr;
  ShmControl* ctl_ = nullptr;
  bool receiver_ = false;
  std::shared_ptr<uint8_t> mapping_;  // shared with the JS Buffer over the ring (shareMapping)
  bool created_ = false;
};

}  // namespace rdmaq

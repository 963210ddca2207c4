// shm transport, the link ends: ShmTx / ShmRx implement the transport seam (transport.h) over a ShmRing
// (shm_ring.h): release/acquire stores of tail and head, and wake-ups through two FIFOs beside the ring.
//
// Wake-ups use FIFOs opened O_RDWR|O_NONBLOCK by both ends: opening never blocks or fails with ENXIO, and a
// write never raises EPIPE/SIGPIPE whichever side died. A wake-up byte is only a hint; the ring state is the
// truth, so extra bytes (a restarted peer) are harmless and a full FIFO (EAGAIN) already guarantees a wake.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "error.h"
#include "shm_ring.h"
#include "transport.h"

namespace rdmaq {

inline int openFifo(const std::string& path) {
  if (mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) {
    int e = errno;
    throw RdmaqError("ERR_RDMAQ_WAKE", "cannot create wake-up FIFO " + path + ": " + errnoText(e), e);
  }
  int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw RdmaqError("ERR_RDMAQ_WAKE", "cannot open wake-up FIFO " + path + ": " + errnoText(e), e);
  }
  return fd;
}

inline void drainFd(int fd) {
  char buf[256];
  // A short read means the FIFO is empty: saves the second (EAGAIN) syscall on every wake-up.
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf);
  } while (n == static_cast<ssize_t>(sizeof buf) || (n < 0 && errno == EINTR));
}

// Writes one wake-up byte. EAGAIN (FIFO full) means a wake-up is pending anyway.
inline void wake(int fd, LinkCounters* c) {
  static const char one = 1;
  ++c->wakeups;
  if (write(fd, &one, 1) < 0 && errno != EAGAIN && errno != EINTR) ++c->errors["wake"];
}

class ShmTx final : public TxTransport {
 public:
  ShmTx(const std::string& ringPath, const std::string& rxWake, const std::string& txWake, LinkCounters* c)
      : ring_(ringPath, false, 0, false), c_(c) {
    rxFd_ = openFifo(rxWake);
    try {
      txFd_ = openFifo(txWake);
    } catch (...) {
      ::close(rxFd_);
      throw;
    }
  }
  ~ShmTx() override { close(false); }

  void close(bool unlinkFiles) {
    if (rxFd_ >= 0) ::close(rxFd_);
    if (txFd_ >= 0) ::close(txFd_);
    rxFd_ = txFd_ = -1;
    ring_.close(unlinkFiles);
  }
  ShmRing& ring() { return ring_; }

  const char* transport() const override { return "shm"; }
  std::string provider() const override { return "shm"; }
  uint8_t* data() override { return ring_.data(); }
  uint64_t capacity() const override { return ring_.capacity(); }
  uint64_t head() override { return ring_.ctl()->head.a.load(std::memory_order_acquire); }
  uint64_t initialTail() override { return ring_.ctl()->tail.a.load(std::memory_order_acquire); }
  uint64_t initialSeq() override { return ring_.ctl()->tail.b.load(std::memory_order_acquire); }

  bool publish(uint64_t, uint64_t newTail, uint64_t nextSeq) override {
    ShmControl* ctl = ring_.ctl();
    ctl->tail.b.store(nextSeq, std::memory_order_relaxed);
    ctl->tail.a.store(newTail, std::memory_order_release);
    // Dekker with park(): our tail store must be visible before we read `parked`, or a consumer that
    // parked in between would sleep with data in the ring.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ctl->parked.a.load(std::memory_order_relaxed)) wake(rxFd_, c_);
    return true;
  }

  bool armWritable(uint64_t needHead) override {
    ShmControl* ctl = ring_.ctl();
    ctl->writerNeed.a.store(needHead == 0 ? 1 : needHead, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ctl->head.a.load(std::memory_order_acquire) >= needHead) {
      ctl->writerNeed.a.store(0, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void disarmWritable() override { ring_.ctl()->writerNeed.a.store(0, std::memory_order_relaxed); }
  int writableFd() override { return txFd_; }
  void drainWritable() override { drainFd(txFd_); }

 private:
  ShmRing ring_;
  LinkCounters* c_;
  int rxFd_ = -1, txFd_ = -1;
};

class ShmRx final : public RxTransport {
 public:
  ShmRx(const std::string& ringPath, const std::string& rxWake, const std::string& txWake, bool create,
        uint64_t capacity, LinkCounters* c, uint64_t startSeq = 1)
      : ring_(ringPath, create, capacity, true, startSeq), c_(c) {
    try {
      rxFd_ = openFifo(rxWake);
      txFd_ = openFifo(txWake);
    } catch (...) {
      if (rxFd_ >= 0) ::close(rxFd_);
      ring_.close(false);
      throw;
    }
    // A previous receiver may have died parked: we are awake now.
    ring_.ctl()->parked.a.store(0);
  }
  ~ShmRx() override { close(false); }

  void close(bool unlinkFiles) {
    if (rxFd_ >= 0) ::close(rxFd_);
    if (txFd_ >= 0) ::close(txFd_);
    rxFd_ = txFd_ = -1;
    ring_.close(unlinkFiles);
  }
  ShmRing& ring() { return ring_; }

  const char* transport() const override { return "shm"; }
  std::string provider() const override { return "shm"; }
  const uint8_t* data() override { return ring_.data(); }
  uint64_t capacity() const override { return ring_.capacity(); }
  uint64_t initialHead() override { return ring_.ctl()->head.a.load(std::memory_order_acquire); }
  uint64_t initialSeq() override { return ring_.ctl()->head.b.load(std::memory_order_acquire); }
  uint64_t tail() override { return ring_.ctl()->tail.a.load(std::memory_order_acquire); }

  void release(uint64_t head, uint64_t nextSeq, bool) override {
    ShmControl* ctl = ring_.ctl();
    ctl->head.b.store(nextSeq, std::memory_order_relaxed);
    ctl->head.a.store(head, std::memory_order_release);
    // Dekker with armWritable(): head visible before we read writerNeed.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint64_t need = ctl->writerNeed.a.load(std::memory_order_relaxed);
    if (need != 0 && head >= need && ctl->writerNeed.a.compare_exchange_strong(need, 0)) wake(txFd_, c_);
  }

  void wakeWriter() { wake(txFd_, c_); }

  bool park(uint64_t head) override {
    ShmControl* ctl = ring_.ctl();
    ctl->parked.a.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ctl->tail.a.load(std::memory_order_acquire) != head) {
      ctl->parked.a.store(0, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void unpark() override {
    if (ring_.isOpen()) ring_.ctl()->parked.a.store(0, std::memory_order_relaxed);
  }
  int readableFd() override { return rxFd_; }
  void drainReadable() override { drainFd(rxFd_); }

 private:
  ShmRing ring_;
  LinkCounters* c_;
  int rxFd_ = -1, txFd_ = -1;
};

}  // namespace rdmaq

// The ring protocol of DESIGN.md §2, independent of the transport (native/transport.h):
// records (record.h), sequences, padding at the wrap, header validation and back-pressure.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "crc32c.h"
#include "histogram.h"
#include "record.h"
#include "transport.h"

namespace rdmaq {

// Spin-wait hint (pause / yield) for polling loops: frees the core's pipeline for the sibling hyper-thread.
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Producer side. Not thread-safe (one owner thread per link).
class RingWriter {
 public:
  RingWriter(TxTransport* t, LinkCounters* c) : t_(t), c_(c) { reset(); }

  // (Re)reads the starting point from the transport (after attach or a receiver restart).
  void reset() {
    data_ = t_->data();
    cap_ = t_->capacity();
    mask_ = cap_ - 1;
    tail_ = pubTail_ = t_->initialTail();
    head_ = t_->head();
    nextSeq_ = t_->initialSeq();
    lastClaim_ = UINT64_MAX;
    sealed_ = tail_;
  }

  // Per-record CRC32C of the payload (record.h kFlagChecksum): set once, before the first claim.
  void setChecksum(bool on) { flags_ = on ? kFlagChecksum : 0; }
  bool checksum() const { return flags_ & kFlagChecksum; }

  uint64_t capacity() const { return cap_; }
  uint64_t maxPayload() const { return maxPayloadFor(cap_, flags_); }
  uint64_t nextSeq() const { return nextSeq_; }
  uint64_t tail() const { return tail_; }
  uint64_t publishedTail() const { return pubTail_; }
  uint64_t knownHead() const { return head_; }
  uint8_t* data() const { return data_; }

  // Bytes the next record of `len` payload bytes needs from the current tail (padding included).
  uint64_t need(uint64_t len) const {
    const uint64_t rs = recordSize(len, flags_);
    const uint64_t toEnd = cap_ - (tail_ & mask_);
    return rs <= toEnd ? rs : toEnd + rs;
  }
  // Head position at which a record of `len` bytes fits.
  uint64_t needHead(uint64_t len) const { return tail_ + need(len) - cap_; }

  // Whether a record of `len` payload bytes fits now. Never true for more than the ring can hold, whatever
  // the head word says: the head comes from the consumer (shared control block or remote credit), and one
  // ahead of our tail (a corrupt or hostile control block: `occupied` underflows) would otherwise open
  // "space" for a claim past the ring's end (fuzz_ring_writer; regression input in its corpus).
  bool fits(uint64_t len) {
    if (len > cap_) return false;  // also keeps need() from overflowing
    const uint64_t n = need(len);
    if (tail_ - head_ <= cap_ && cap_ - (tail_ - head_) >= n) return true;
    const uint64_t h = t_->head();  // acquire: bytes below it were released by the consumer
    if (h > pubTail_ || pubTail_ - h > cap_) {
      // A head beyond what we published is a corrupt control block: never let it open space to overwrite.
      ++c_->errors["bad_credit"];
      return false;
    }
    head_ = h;
    // Occupancy is only known exactly right after a head refresh (the cached head is stale otherwise);
    // the consumer's own gauge is the authoritative one.
    const uint64_t occupied = tail_ - head_;
    if (occupied > peak_) peak_ = occupied;
    // occupied > cap_: the head went back below what earlier claims were allowed on (unpublished claims
    // since): no space until it is sane again.
    return occupied <= cap_ && cap_ - occupied >= n;
  }

  // Reserves a record and writes its header; returns the payload offset in data() or -1 when the ring is
  // full (back-pressure). The record becomes visible at the next publish().
  int64_t claim(uint64_t len, uint16_t type, uint64_t ts) {
    if (!fits(len)) return -1;
    uint64_t idx = tail_ & mask_;
    const uint64_t rs = recordSize(len, flags_);
    const uint64_t toEnd = cap_ - idx;
    if (rs > toEnd) {
      if (toEnd >= kHeaderSize) {
        RecordHeader pad{static_cast<uint32_t>(toEnd - kHeaderSize), kPadding, 0, 0, ts};
        std::memcpy(data_ + idx, &pad, kHeaderSize);
      }
      tail_ += toEnd;
      idx = 0;
    }
    if (idx == 0 && tail_ != 0) ++c_->wraps;  // this record starts a new lap (after padding or an exact fit)
    RecordHeader h{static_cast<uint32_t>(len), type, flags_, nextSeq_++, ts};
    std::memcpy(data_ + idx, &h, kHeaderSize);
    lastClaim_ = tail_;
    lastLen_ = len;
    tail_ += rs;
    return static_cast<int64_t>(idx + kHeaderSize);
  }

  // Shrinks the most recent claim to `len` bytes (zero-copy writers that reserved an upper bound).
  bool shrinkLast(uint64_t len) {
    if (lastClaim_ == UINT64_MAX || len > lastLen_ || lastClaim_ + recordSize(lastLen_, flags_) != tail_) return false;
    const uint64_t idx = lastClaim_ & mask_;
    uint32_t l32 = static_cast<uint32_t>(len);
    std::memcpy(data_ + idx, &l32, sizeof l32);
    tail_ = lastClaim_ + recordSize(len, flags_);
    lastLen_ = len;
    return true;
  }

  bool pending() const { return tail_ != pubTail_; }

  // Makes every claimed record visible. false = the transport cannot take it now (fabric tx queue full).
  bool publish() {
    if (tail_ == pubTail_) return true;
    if (flags_ & kFlagChecksum) seal();
    if (!t_->publish(pubTail_, tail_, nextSeq_)) return false;
    pubTail_ = tail_;
    lastClaim_ = UINT64_MAX;
    return true;
  }

  uint64_t takePeak() {
    uint64_t p = peak_;
    peak_ = 0;
    return p;
  }

 private:
  // Writes the CRC32C after the payload of every record claimed since the last seal: by publish() every
  // payload is complete (send copied it, commit() was called), whichever way it was written.
  void seal() {
    uint64_t pos = sealed_;
    while (pos < tail_) {
      const uint64_t idx = pos & mask_, toEnd = cap_ - idx;
      if (toEnd < kHeaderSize) {
        pos += toEnd;
        continue;
      }
      RecordHeader h;
      std::memcpy(&h, data_ + idx, kHeaderSize);
      if (h.type == kPadding) {
        pos += toEnd;
        continue;
      }
      // Headers we wrote, but in memory the consumer maps too: never write outside the record's room.
      const uint64_t rs = recordSize(h.len, flags_);
      if (rs > toEnd || pos + rs > tail_) break;
      const uint32_t crc = crc32c::of(data_ + idx + kHeaderSize, h.len);
      std::memcpy(data_ + idx + kHeaderSize + h.len, &crc, kChecksumSize);
      pos += rs;
    }
    sealed_ = tail_;
  }

  TxTransport* t_;
  LinkCounters* c_;
  uint8_t* data_ = nullptr;
  uint64_t cap_ = 0, mask_ = 0;
  uint64_t tail_ = 0, pubTail_ = 0, head_ = 0;
  uint64_t nextSeq_ = 1;
  uint64_t lastClaim_ = UINT64_MAX, lastLen_ = 0;
  uint16_t flags_ = 0;
  uint64_t sealed_ = 0;
  uint64_t peak_ = 0;
};

// One validated record handed out by the reader.
struct RecordView {
  uint64_t pos;       // position of the header
  uint64_t offset;    // payload offset in data()
  uint32_t len;
  uint16_t type;
  uint64_t seq;
  uint64_t ts;
  uint64_t size;      // aligned record size
};

// Consumer side. Not thread-safe (one owner thread per link).
class RingReader {
 public:
  enum Next { kNone, kRecord, kBad };

  RingReader(RxTransport* t, LinkCounters* c) : t_(t), c_(c) {
    data_ = t_->data();
    cap_ = t_->capacity();
    mask_ = cap_ - 1;
    head_ = relHead_ = t_->initialHead();
    expect_ = t_->initialSeq();
    tail_ = head_;
  }

  uint64_t capacity() const { return cap_; }
  uint64_t head() const { return head_; }
  uint64_t releasedHead() const { return relHead_; }
  uint64_t nextSeq() const { return expect_; }
  uint64_t cachedTail() const { return tail_; }
  const std::string& error() const { return error_; }
  // ERR_RDMAQ_BAD_HEADER (a header that cannot be a record of this link) or ERR_RDMAQ_CHECKSUM (a sealed
  // payload whose CRC32C does not match).
  const char* errorCode() const { return errorCode_; }

  // Refreshes the cached tail from the transport; true if there is something past head.
  bool refresh() {
    const uint64_t t = t_->tail();
    if (t != tail_) {
      tail_ = t;
      ++c_->completions;
      const uint64_t occ = tail_ - relHead_;
      if (occ > peak_) peak_ = occ;
    }
    return tail_ != head_;
  }
  bool available() { return tail_ != head_ || refresh(); }

  // Validates the header at head; on success fills `r` (the record is not consumed yet).
  Next next(RecordView& r) {
    for (;;) {
      if (tail_ == head_ && !refresh()) return kNone;
      const uint64_t avail = tail_ - head_;
      if (avail > cap_ || (tail_ - relHead_) > cap_) return bad("tail moved beyond the ring's capacity");
      const uint64_t idx = head_ & mask_;
      const uint64_t toEnd = cap_ - idx;
      if (toEnd < kHeaderSize) {  // implicit padding: too little room for a header
        if (avail < toEnd) return bad("tail inside the implicit padding at the ring's end");
        head_ += toEnd;
        continue;
      }
      if (avail < kHeaderSize) return bad("tail inside a record header");
      RecordHeader h;
      std::memcpy(&h, data_ + idx, kHeaderSize);
      if (h.type == kPadding) {
        if (h.len != toEnd - kHeaderSize) return bad("PADDING record does not reach the ring's end");
        if (avail < toEnd) return bad("PADDING record extends beyond tail");
        head_ += toEnd;
        continue;
      }
      if (h.type == 0 || h.type > kMaxType) return bad("unknown record type " + std::to_string(h.type));
      if (h.flags & ~kKnownFlags) return bad("unknown header flags " + std::to_string(h.flags));
      const uint64_t rs = recordSize(h.len, h.flags);
      if (rs > toEnd) return bad("record length " + std::to_string(h.len) + " runs past the ring's end");
      if (rs > avail) return bad("record length " + std::to_string(h.len) + " runs past the published tail");
      if (h.seq != expect_) {
        return bad("sequence " + std::to_string(h.seq) + " where " + std::to_string(expect_) + " was expected");
      }
      if (h.flags & kFlagChecksum) {
        uint32_t want;
        std::memcpy(&want, data_ + idx + kHeaderSize + h.len, kChecksumSize);
        const uint32_t got = crc32c::of(data_ + idx + kHeaderSize, h.len);
        if (got != want) {
          error_ = "payload checksum mismatch in record " + std::to_string(h.seq) + " (" + std::to_string(h.len) +
                   " bytes at ring position " + std::to_string(head_) + "): CRC32C " + hex32(got) + ", sealed " +
                   hex32(want) + " — the ring's memory or the path corrupted it";
          errorCode_ = "ERR_RDMAQ_CHECKSUM";
          return kBad;
        }
      }
      r.pos = head_;
      r.offset = idx + kHeaderSize;
      r.len = h.len;
      r.type = h.type;
      r.seq = h.seq;
      r.ts = h.ts;
      r.size = rs;
      return kRecord;
    }
  }

  void consume(const RecordView& r) {
    if ((r.pos & mask_) == 0 && r.pos != 0) ++c_->wraps;
    head_ = r.pos + r.size;
    ++expect_;
  }

  // Publishes head (credit) if it moved.
  void release(bool idle) {
    if (head_ == relHead_) return;
    t_->release(head_, expect_, idle);
    relHead_ = head_;
    ++c_->creditUpdates;
  }

  uint64_t takePeak() {
    uint64_t p = peak_;
    peak_ = 0;
    return p;
  }

 private:
  Next bad(std::string why) {
    error_ = "corrupt record header at ring position " + std::to_string(head_) + " (offset " +
             std::to_string(head_ & mask_) + "): " + why;
    errorCode_ = "ERR_RDMAQ_BAD_HEADER";
    return kBad;
  }
  static std::string hex32(uint32_t v) {
    char b[11];
    std::snprintf(b, sizeof b, "0x%08x", v);
    return b;
  }

  RxTransport* t_;
  LinkCounters* c_;
  const uint8_t* data_;
  uint64_t cap_, mask_;
  uint64_t head_, relHead_, tail_;
  uint64_t expect_;
  uint64_t peak_ = 0;
  std::string error_;
  const char* errorCode_ = "ERR_RDMAQ_BAD_HEADER";
};

}  // namespace rdmaq

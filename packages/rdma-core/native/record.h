// The record format of DESIGN.md §2, the same bytes on both transports (shm: ring.h; fabric: fabric_sender.h
// writes it, fabric_parse.h reads it), and the clocks that stamp it.
//
// Record: 8-byte aligned, 24-byte header {u32 len, u16 type, u16 flags, u64 seq, u64 ts} + payload, and with
// flags bit 0 (kFlagChecksum) a u32 CRC32C of the payload right after it (crc32c.h; links opt in with
// `checksum: true`: for memory or paths that may corrupt data; `len` stays the payload's length).
// Positions are byte counters that only grow; index = pos & (capacity - 1). A record never straddles the
// ring's end: a PADDING record fills the rest, or — when fewer than 24 bytes remain — both sides skip them
// implicitly. Every record but PADDING takes the next sequence number (the first is 1).
#pragma once

#include <time.h>

#include <cstdint>

namespace rdmaq {

enum RecordType : uint16_t { kData = 1, kPadding = 2, kProbe = 3, kProbeReply = 4, kHeartbeat = 5 };
constexpr uint16_t kMaxType = 5;
constexpr uint64_t kHeaderSize = 24;
// Header flags. Unknown bits are a corrupt header (a reader that cannot check a checksum must not deliver).
constexpr uint16_t kFlagChecksum = 1;
constexpr uint16_t kKnownFlags = kFlagChecksum;
constexpr uint64_t kChecksumSize = 4;

struct RecordHeader {
  uint32_t len;  // payload bytes
  uint16_t type;
  uint16_t flags;
  uint64_t seq;
  uint64_t ts;  // sender timestamp, ns (shm: monotonicNs; fabric: wallNs)
};
static_assert(sizeof(RecordHeader) == kHeaderSize, "record header is 24 bytes");

inline uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }
// Bytes a record of `len` payload bytes takes in the ring (header and alignment included).
inline uint64_t recordSize(uint64_t len) { return align8(kHeaderSize + len); }
// The same for a record with these header flags (the checksum trailer included).
inline uint64_t recordSize(uint64_t len, uint16_t flags) {
  return align8(kHeaderSize + len + ((flags & kFlagChecksum) ? kChecksumSize : 0));
}

// Largest payload a record may carry on a ring of `capacity` bytes: header + payload ≤ capacity / 2, so a
// record always fits once the ring has drained, wherever the wrap position is.
inline uint64_t maxPayloadFor(uint64_t capacity, uint16_t flags = 0) {
  return capacity / 2 - kHeaderSize - ((flags & kFlagChecksum) ? kChecksumSize : 0);
}

// The clock of shm records: both ends share the host, so CLOCK_MONOTONIC (no jumps when the wall clock is
// set). Also what the JS side reads as nowNs().
inline uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
// The clock of fabric records: the ends are on different hosts, and only the wall clock is common to them
// (queue latency across hosts is meaningful as far as their clocks are synchronised; DESIGN.md §2).
inline uint64_t wallNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace rdmaq

// The fabric receiver's record parsing, without libfabric: the walk over the ring (record format: record.h)
// that turns landed bytes into records (ReceiverCore::Parse) and the range check of a remote write's tail delta
// (ReceiverCore::OnRemoteWrite). Pure functions over plain memory, so the fuzz targets (native/fuzz/) and
// the native tests (native/test/) drive exactly the code the engine runs, under ASan/UBSan, with no network.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "crc32c.h"
#include "record.h"

namespace rdmaq::fabric {

// One record handed out by the receiver (a view into its ring).
struct Delivered {
  uint64_t start;   // ring position of the record header
  uint64_t end;     // ring position after the record
  uint64_t offset;  // payload offset in the ring
  uint32_t len;
  uint16_t type;
  uint64_t seq;
  uint64_t ts;
};

// What one ParseRecords call counted (the caller adds it to its own counters) and, when it stopped at a bad
// record, what was wrong with it.
struct ParseTally {
  uint64_t records = 0;     // DATA records handed out (probes and heartbeats are not records)
  uint64_t bytes = 0;       // their payload bytes
  uint64_t wraps = 0;       // PADDING records and implicit paddings passed
  uint64_t duplicates = 0;  // records dropped because their sequence was delivered before (a reconnect)
  enum Fault : uint8_t { kNone, kBadPadding, kBadHeader, kSeqGap, kBadChecksum };
  Fault fault = kNone;
  uint64_t fault_pos = 0;
  uint16_t fault_type = 0;
  uint32_t fault_length = 0;
  uint64_t fault_seq = 0, fault_expected = 0;
  uint32_t fault_crc = 0, fault_sealed = 0;
};

// Parses the complete records in [pos, tail) of `ring` (`cap` bytes, a power of two) into `out` until it
// holds `limit` entries. `expected` is the sequence the next record must carry and moves past each record
// handed out; a record with a lower one was delivered before a reconnect and is dropped. A record whose end
// has not landed yet stops the walk (the rest comes with a later write). Returns the position reached: after
// the last record handed out or dropped, or at the bad record when `t.fault` is set.
// Allocation-free except for out's growth (the caller keeps it); every view lies inside [0, cap).
inline uint64_t ParseRecords(const uint8_t* ring, uint64_t cap, uint64_t pos, uint64_t tail, uint64_t& expected,
                             size_t limit, std::vector<Delivered>& out, ParseTally& t) {
  const uint64_t mask = cap - 1;
  while (out.size() < limit && pos < tail) {
    const uint64_t off = pos & mask;
    const uint64_t room = cap - off;
    if (room < kHeaderSize) {  // implicit padding
      if (tail - pos < room) break;
      pos += room;
      ++t.wraps;
      continue;
    }
    if (tail - pos < kHeaderSize) break;
    RecordHeader h;
    std::memcpy(&h, ring + off, kHeaderSize);  // one snapshot; no alignment assumption on pos
    if (h.type == kPadding) {
      if (h.len != room - kHeaderSize) {
        t.fault = ParseTally::kBadPadding;
        t.fault_pos = pos;
        break;
      }
      if (tail - pos < room) break;
      pos += room;
      ++t.wraps;
      continue;
    }
    const uint64_t total = recordSize(h.len, h.flags);
    if (h.type < kData || h.type > kHeartbeat || (h.flags & ~kKnownFlags) || total > room) {
      t.fault = ParseTally::kBadHeader;
      t.fault_pos = pos;
      t.fault_type = h.type;
      t.fault_length = h.len;
      break;
    }
    if (tail - pos < total) break;  // the rest of this record is in a later write
    if (h.seq != expected) {
      if (h.seq < expected) {  // delivered before a reconnect: drop
        ++t.duplicates;
        pos += total;
        continue;
      }
      t.fault = ParseTally::kSeqGap;
      t.fault_pos = pos;
      t.fault_seq = h.seq;
      t.fault_expected = expected;
      break;
    }
    if (h.flags & kFlagChecksum) {  // the payload as it landed against the sender's seal
      uint32_t sealed;
      std::memcpy(&sealed, ring + off + kHeaderSize + h.len, kChecksumSize);
      const uint32_t crc = crc32c::of(ring + off + kHeaderSize, h.len);
      if (crc != sealed) {
        t.fault = ParseTally::kBadChecksum;
        t.fault_pos = pos;
        t.fault_seq = h.seq;
        t.fault_length = h.len;
        t.fault_crc = crc;
        t.fault_sealed = sealed;
        break;
      }
    }
    ++expected;
    if (h.type == kData) {  // counted when handed out (Release uncounts what comes back); probes and
      ++t.records;          // heartbeats are not records (as on shm)
      t.bytes += h.len;
    }
    out.push_back({pos, pos + total, off + kHeaderSize, h.len, h.type, h.seq, h.ts});
    pos += total;
  }
  return pos;
}

// The error text of a parse that stopped at a bad record (t.fault != kNone).
inline std::string ParseFaultText(const ParseTally& t) {
  switch (t.fault) {
    case ParseTally::kBadPadding:
      return "corrupt PADDING record at position " + std::to_string(t.fault_pos);
    case ParseTally::kBadHeader:
      return "corrupt record header at position " + std::to_string(t.fault_pos) + " (type " +
             std::to_string(t.fault_type) + ", length " + std::to_string(t.fault_length) + ")";
    case ParseTally::kSeqGap:
      return "sequence gap: expected " + std::to_string(t.fault_expected) + ", got " + std::to_string(t.fault_seq);
    case ParseTally::kBadChecksum: {
      char b[64];
      std::snprintf(b, sizeof b, "CRC32C 0x%08x, sealed 0x%08x", t.fault_crc, t.fault_sealed);
      return "payload checksum mismatch in record " + std::to_string(t.fault_seq) + " (" +
             std::to_string(t.fault_length) + " bytes at position " + std::to_string(t.fault_pos) + "): " + b +
             " — corrupted on the path; the sender resends it from its own copy";
    }
    case ParseTally::kNone:
      break;
  }
  return "";
}

// The error code of a parse fault (the JS side counts ERR_RDMAQ_CHECKSUM as `checksum`).
inline const char* ParseFaultCode(const ParseTally& t) {
  return t.fault == ParseTally::kBadChecksum ? "ERR_RDMAQ_CHECKSUM" : "ERR_RDMAQ_BAD_HEADER";
}

// A remote write may move the tail by `delta` bytes (from its CQ data): whole 8-byte units, at least one, and
// the unreleased part of the ring [head, tail + delta) no longer than the ring.
inline bool TailDeltaOk(uint64_t delta, uint64_t tail, uint64_t head, uint64_t cap) {
  return delta != 0 && (delta & 7) == 0 && tail + delta - head <= cap;
}

}  // namespace rdmaq::fabric

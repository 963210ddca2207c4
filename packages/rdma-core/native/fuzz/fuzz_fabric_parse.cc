// libFuzzer target: the fabric receiver's record parsing (ParseRecords, TailDeltaOk in native/fabric_record.h:
// exactly what ReceiverCore::Parse / OnRemoteWrite run) against a hostile sender. The sender chooses every
// byte it writes into the ring, every tail delta its CQ data claims, and (through the handshake's `start`)
// where the stream starts and which sequence comes first. The receiver is modelled as ReceiverCore drives
// the functions: remote writes move the tail, polls parse, releases hand back the unconsumed rest.
// Invariants: every record handed out lies inside the ring and below the tail, sequences are consecutive,
// the counters add up, and the walk ends.
#include <cstdint>
#include <vector>

#include "../fabric_parse.h"
#include "fuzz_input.h"

using namespace rdmaq;
using namespace rdmaq::fabric;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint64_t cap = uint64_t(32) << (in.u8() % 8);  // 32 B .. 4 KiB
  const uint64_t mask = cap - 1;
  std::vector<uint8_t> ring(cap);  // exactly the ring: ASan reports any view past it
  const uint64_t start = in.pick64();
  uint64_t head = start, tail = start, consumed = start, expected = in.pick64();
  std::vector<Delivered> out;
  out.reserve(64);
  uint64_t records = 0, bytes = 0;

  for (int op = 0; op < 512 && !in.empty(); ++op) {
    switch (in.u8() % 4) {
      case 0:
      case 1: {  // a remote write at the tail: bytes, then its CQ data's delta (21 bits, as on the wire)
        const uint64_t delta = (in.u8() & 1) ? (in.u8() % (cap / 8 + 2)) * 8 : in.u32() & ((1u << 21) - 1);
        if (!TailDeltaOk(delta, tail, head, cap)) {
          // Refused: the ring would hold more than its capacity, or the delta is not whole records' units.
          FUZZ_CHECK(delta == 0 || (delta & 7) || tail + delta - head > cap);
          return 0;  // the engine fails the link
        }
        FUZZ_CHECK(delta <= cap);
        for (uint64_t done = 0; done < delta;) {  // the sender splits a write at the ring's end
          const uint64_t off = (tail + done) & mask;
          const uint64_t n = std::min<uint64_t>(delta - done, cap - off);
          in.bytes(ring.data() + off, n);
          done += n;
        }
        tail += delta;
        break;
      }
      case 2: {  // poll (as ReceiverCore::Poll: a fresh list; views not released before count as consumed)
        const size_t limit = 1 + in.u8() % 32;
        out.clear();
        const uint64_t from = consumed, seq0 = expected;
        ParseTally t;
        consumed = ParseRecords(ring.data(), cap, consumed, tail, expected, limit, out, t);
        FUZZ_CHECK(out.size() <= limit);
        FUZZ_CHECK(consumed - from <= tail - from);  // never past the tail (modulo 2^64)
        uint64_t seq = seq0, prevEnd = from, r = 0, b = 0;
        for (size_t i = 0; i < out.size(); ++i) {
          const Delivered& d = out[i];
          FUZZ_CHECK(d.start - from >= prevEnd - from && d.end - from <= consumed - from);
          FUZZ_CHECK(d.end - d.start == align8(kHeaderSize + d.len) ||
                     d.end - d.start == align8(kHeaderSize + d.len + kChecksumSize));
          FUZZ_CHECK(d.offset == (d.start & mask) + kHeaderSize && d.offset + d.len <= cap);
          FUZZ_CHECK(d.type >= kData && d.type <= kHeartbeat && d.type != kPadding);
          FUZZ_CHECK(d.seq == seq);
          ++seq;
          prevEnd = d.end;
          if (d.type == kData) {
            ++r;
            b += d.len;
          }
          volatile uint8_t sink = 0;
          for (uint64_t k = 0; k < d.len; ++k) sink = sink ^ ring[d.offset + k];
          (void)sink;
        }
        FUZZ_CHECK(expected == seq && t.records == r && t.bytes == b);
        records += t.records;
        bytes += t.bytes;
        if (t.fault != ParseTally::kNone) {
          FUZZ_CHECK(!ParseFaultText(t).empty() && t.fault_pos == consumed);
          return 0;  // the engine fails the link (ERR_RDMAQ_BAD_HEADER)
        }
        break;
      }
      default: {  // release: the first k of this poll's records were consumed, the rest come again
        if (out.empty()) break;
        const size_t k = in.u8() % (out.size() + 1);
        if (k < out.size()) {
          consumed = out[k].start;
          expected = out[k].seq;
        }
        head = consumed;
        out.clear();
        FUZZ_CHECK(tail - head <= cap);
        break;
      }
    }
  }
  (void)records;
  (void)bytes;
  return 0;
}

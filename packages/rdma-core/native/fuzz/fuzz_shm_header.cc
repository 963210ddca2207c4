// libFuzzer target: what a shm link end reads from files another process wrote before trusting them.
//  - The ring file's header (ShmRing::validate, native/shm_link.h): the file is created by the receiver (a
//    peer), and its capacity decides how much is mapped. A header that passes must describe a ring the
//    file really holds: a power-of-two capacity in range and a size of exactly header page + capacity.
//  - A /proc/<pid>/stat line (statStartTime): its command name is chosen by that process (spaces, ')').
#include <cstdint>
#include <cstring>
#include <vector>

#include "../shm_link.h"
#include "fuzz_input.h"

using namespace rdmaq;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  // The header page as mapped: aligned memory holding whatever the file says.
  alignas(64) uint8_t page[128];
  const uint8_t mode = in.u8();
  in.bytes(page, sizeof page);
  if (mode & 1) std::memcpy(page, kRingMagic, 8);  // past the magic check most of the time
  if (mode & 2) {
    const uint32_t v = kRingVersion;
    std::memcpy(page + 8, &v, 4);
  }
  if (mode & 4) {
    const uint32_t hb = kHeaderPage;
    std::memcpy(page + 12, &hb, 4);
  }
  const auto* h = reinterpret_cast<const ShmFileHeader*>(page);
  uint64_t fileSize = in.pick64();
  if (mode & 8) fileSize = kHeaderPage + h->capacity;  // a file sized as its header says
  try {
    ShmRing::validate("/dev/shm/fuzz.ring", h, fileSize);
    const uint64_t cap = h->capacity;
    FUZZ_CHECK(std::memcmp(h->magic, kRingMagic, 8) == 0 && h->version == kRingVersion);
    FUZZ_CHECK(cap >= kMinCapacity && cap <= kMaxCapacity && (cap & (cap - 1)) == 0);
    FUZZ_CHECK(fileSize == kHeaderPage + cap && h->headerBytes == kHeaderPage);
  } catch (const RdmaqError& e) {
    FUZZ_CHECK(e.code == "ERR_RDMAQ_RING_MAGIC" || e.code == "ERR_RDMAQ_RING_VERSION" ||
               e.code == "ERR_RDMAQ_RING_SIZE");
    FUZZ_CHECK(e.what()[0] != 0);
  }

  // The rest of the input as a stat line (at most what processStart reads: 1023 bytes + NUL).
  char line[1024];
  const size_t n = in.left() < sizeof line - 1 ? in.left() : sizeof line - 1;
  in.bytes(reinterpret_cast<uint8_t*>(line), n);
  line[n] = 0;
  const uint64_t start = statStartTime(line);
  // Field 22 exists only with a ')' and 20 more spaces after the last one.
  const char* close = strrchr(line, ')');
  if (!close) FUZZ_CHECK(start == 0);
  return 0;
}

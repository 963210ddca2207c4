// Memory of a fabric link end (fabric_sender.h's mirror and journal, fabric_receiver.h's ring).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "fabric_endpoint.h"

namespace rdmaq::fabric {

// Memory that is either anonymous or a file mapping (the sender's journal). Page aligned.
struct Mapping {
  uint8_t* base = nullptr;
  size_t len = 0;
  int fd = -1;
  bool existed = false;
  void MapAnon(size_t n) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) Fail("ERR_RDMAQ_NOMEM", "could not map " + std::to_string(n) + " bytes", -errno);
    base = static_cast<uint8_t*>(p);
    len = n;
  }
  void MapFile(const std::string& path, size_t n) {
    struct stat st;
    existed = stat(path.c_str(), &st) == 0 && size_t(st.st_size) == n;
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) Fail("ERR_RDMAQ_JOURNAL", "cannot open journal file " + path + ": " + strerror(errno));
    if (!existed && ftruncate(fd, off_t(n)) != 0)
      Fail("ERR_RDMAQ_JOURNAL", "cannot size journal file " + path + ": " + strerror(errno));
    // MAP_SHARED: stores reach the page cache at once, so a kill -9 of the sender loses nothing accepted.
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) Fail("ERR_RDMAQ_JOURNAL", "cannot map journal file " + path + ": " + strerror(errno));
    base = static_cast<uint8_t*>(p);
    len = n;
  }
  ~Mapping() {
    if (base) munmap(base, len);
    if (fd >= 0) close(fd);
  }
};

}  // namespace rdmaq::fabric

// The one error type of the native code (no N-API here, so the native tests and fuzz targets use it too).
// Thrown by the transports, and kept by a failed fabric link core (its error()); js_error.h turns it into the
// JS RdmaqError {code, errno} the TypeScript side expects.
#pragma once

#include <cstring>
#include <exception>
#include <string>
#include <utility>

namespace rdmaq {

struct RdmaqError : std::exception {
  std::string code;     // stable: ERR_RDMAQ_*
  std::string message;  // for people: what failed and, where it helps, what to do
  int err = 0;          // positive OS or libfabric errno, 0 if none
  bool fabric = false;  // raised by the fabric transport: JS also gets `fiError` (fi_strerror of err)

  RdmaqError() = default;
  RdmaqError(std::string c, std::string m, int e = 0, bool fi = false)
      : code(std::move(c)), message(std::move(m)), err(e), fabric(fi) {}
  const char* what() const noexcept override { return message.c_str(); }
};

// "No such file or directory (errno 2)": the OS error text as shm messages carry it.
inline std::string errnoText(int e) { return std::string(strerror(e)) + " (errno " + std::to_string(e) + ")"; }

}  // namespace rdmaq

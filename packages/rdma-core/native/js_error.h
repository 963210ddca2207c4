// Errors to JS, the one family: every native error reaches JS as an Error with `code` (ERR_RDMAQ_*) and, where
// the OS or libfabric gave one, `errno` (and for fabric errors `fiError`, libfabric's text); src/errors.ts
// and src/fabric read them. RdmaqError (error.h) is what the native code throws; guard() converts it.
#pragma once

#include <napi.h>
#include <rdma/fi_errno.h>

#include <string>

#include "error.h"

namespace rdmaq {

inline Napi::Error toJs(Napi::Env env, const RdmaqError& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", Napi::String::New(env, e.code));
  if (e.err) {
    err.Set("errno", Napi::Number::New(env, e.err));
    if (e.fabric) err.Set("fiError", Napi::String::New(env, fi_strerror(e.err)));
  }
  return err;
}

inline Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& msg, int err = 0) {
  return toJs(env, RdmaqError(code, msg, err));
}

[[noreturn]] inline void throwError(Napi::Env env, const std::string& code, const std::string& msg, int err = 0) {
  throw makeError(env, code, msg, err);
}

// A TypeError with a code: how the fabric classes report a bad argument.
[[noreturn]] inline void throwTypeError(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::TypeError err = Napi::TypeError::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  throw err;
}

// Runs `f`, turning an RdmaqError into the JS Error above (bad input never crashes the process).
template <typename F>
auto guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const RdmaqError& e) {
    throw toJs(env, e);
  }
}

}  // namespace rdmaq

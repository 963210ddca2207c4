// Test support (test_support.cc): natives only the tests use, kept out of the queue's own files.
#pragma once

#include <napi.h>

namespace rdmaq::test_support {

Napi::Value TestSeal(const Napi::CallbackInfo& info);
Napi::Value TestCheck(const Napi::CallbackInfo& info);

}  // namespace rdmaq::test_support

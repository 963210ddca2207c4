// Reading arguments from JS. Two conventions, both part of the binding surface: the shm classes (Sender,
// Receiver and the helpers beside them) take numbers only and throw a plain Error; the fabric classes
// (FabricSenderNative, FabricReceiverNative, fabric*) also take BigInts and throw a TypeError. Both with
// code ERR_RDMAQ_ARG (js_error.h).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "js_error.h"

namespace rdmaq {

inline uint64_t toU64(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throwError(v.Env(), "ERR_RDMAQ_ARG", std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throwError(v.Env(), "ERR_RDMAQ_ARG", std::string(what) + " must be a non-negative integer");
  }
  return static_cast<uint64_t>(d);
}

inline std::string getString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throwError(o.Env(), "ERR_RDMAQ_ARG", std::string("option ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// (view, offset, length) of a Uint8Array/Buffer argument: the bytes checksum() and the test payloads cover.
inline const uint8_t* viewOf(const Napi::CallbackInfo& info, uint64_t& len) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throwError(env, "ERR_RDMAQ_ARG", "expected a Uint8Array/Buffer");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  uint64_t off = toU64(info[1], "offset");
  len = toU64(info[2], "length");
  if (off + len > ta.ByteLength()) throwError(env, "ERR_RDMAQ_ARG", "offset + length beyond the buffer");
  return static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset() + off;
}

namespace fabric {

[[noreturn]] inline void ArgError(Napi::Env env, const std::string& msg) { throwTypeError(env, "ERR_RDMAQ_ARG", msg); }

inline uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i) ArgError(info.Env(), std::string(name) + " is required");
  if (info[i].IsBigInt()) {
    bool lossless = true;
    uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ArgError(info.Env(), std::string(name) + " must fit in 64 bits");
    return v;
  }
  if (info[i].IsNumber()) {
    double d = info[i].As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > 9007199254740991.0 || d != double(uint64_t(d)))
      ArgError(info.Env(), std::string(name) + " must be a non-negative integer");
    return uint64_t(d);
  }
  ArgError(info.Env(), std::string(name) + " must be a number or bigint");
}

inline std::string ArgStr(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) ArgError(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ArgError(info.Env(), std::string(name) + " must be a Uint8Array/Buffer");
  return info[i].As<Napi::Uint8Array>();
}

}  // namespace fabric
}  // namespace rdmaq

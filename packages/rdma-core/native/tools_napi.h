// The helper functions exported beside the classes (src/native.ts): the histogram's bucket function, the
// clock, checksums, ring files (sweep, inspect) and libfabric discovery.
#pragma once

#include <napi.h>
#include <rdma/fabric.h>
#include <rdma/fi_errno.h>

#include <cstdio>
#include <set>
#include <string>

#include "hash.h"
#include "histogram.h"
#include "js_args.h"
#include "js_error.h"
#include "record.h"
#include "shm_ring.h"

namespace rdmaq {

inline Napi::Value BucketOf(const Napi::CallbackInfo& info) {
  double v = info[0].As<Napi::Number>().DoubleValue();
  if (!(v >= 0)) throwError(info.Env(), "ERR_RDMAQ_ARG", "bucketOf: value must be >= 0");
  uint64_t u = v >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(v);
  return Napi::Number::New(info.Env(), Histogram::bucketOf(u));
}

inline Napi::Value NowNs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(monotonicNs()));
}

inline Napi::Value Checksum(const Napi::CallbackInfo& info) {
  uint64_t len;
  const uint8_t* p = viewOf(info, len);
  // 53 bits: exact as a JS number.
  return Napi::Number::New(info.Env(), static_cast<double>(hash::hash64(p, len, 0) >> 11));
}

inline Napi::Value Checksum32(const Napi::CallbackInfo& info) {
  uint64_t len;
  const uint8_t* p = viewOf(info, len);
  return Napi::Number::New(info.Env(), static_cast<uint32_t>(hash::hash64(p, len, 0)));
}

inline Napi::Value SweepStale(const Napi::CallbackInfo& info) {
  auto removed = ShmRing::sweep(info[0].As<Napi::String>().Utf8Value());
  Napi::Array a = Napi::Array::New(info.Env(), removed.size());
  for (uint32_t i = 0; i < removed.size(); ++i) a.Set(i, removed[i]);
  return a;
}

inline Napi::Value InspectRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    ShmRing::Info i = ShmRing::inspect(info[0].As<Napi::String>().Utf8Value());
    Napi::Object o = Napi::Object::New(env);
    o.Set("version", i.version);
    o.Set("capacity", static_cast<double>(i.capacity));
    char id[17];
    snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(i.ringId));
    o.Set("ringId", id);
    o.Set("head", static_cast<double>(i.head));
    o.Set("tail", static_cast<double>(i.tail));
    o.Set("rxPid", i.rxPid);
    o.Set("txPid", i.txPid);
    return o;
  });
}

// Lists the libfabric providers fi_getinfo offers on this host, without hints (what `fi_info -l` shows).
inline Napi::Value Providers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fi_info* list = nullptr;
  int rc = fi_getinfo(FI_VERSION(1, 17), nullptr, nullptr, 0, nullptr, &list);
  Napi::Array out = Napi::Array::New(env);
  if (rc == -FI_ENODATA) return out;  // no provider at all: an empty list, not an error
  if (rc != 0) throwError(env, "ERR_RDMAQ_FABRIC", std::string("fi_getinfo failed: ") + fi_strerror(-rc), -rc);
  std::set<std::string> names;
  for (fi_info* p = list; p; p = p->next) {
    if (p->fabric_attr && p->fabric_attr->prov_name) names.insert(p->fabric_attr->prov_name);
  }
  fi_freeinfo(list);
  uint32_t i = 0;
  for (const auto& n : names) out.Set(i++, Napi::String::New(env, n));
  return out;
}

inline Napi::Value FabricVersion(const Napi::CallbackInfo& info) {
  uint32_t v = fi_version();
  return Napi::String::New(info.Env(), std::to_string(FI_MAJOR(v)) + "." + std::to_string(FI_MINOR(v)));
}

}  // namespace rdmaq

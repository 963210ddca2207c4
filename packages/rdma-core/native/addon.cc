// rdmaq native addon: one compile unit, one C++ class per JS class (see src/native.ts for the JS side).
#include <napi.h>
#include <rdma/fabric.h>
#include <rdma/fi_errno.h>

#include "fabric_napi.h"  // fabric transport (issue 4): FabricSenderNative, FabricReceiverNative

#include <set>
#include <string>

namespace {

// Lists the libfabric providers fi_getinfo offers on this host, without hints (what `fi_info -l` shows).
Napi::Value Providers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fi_info* list = nullptr;
  int rc = fi_getinfo(FI_VERSION(1, 17), nullptr, nullptr, 0, nullptr, &list);
  Napi::Array out = Napi::Array::New(env);
  if (rc == -FI_ENODATA) return out;  // no provider at all: an empty list, not an error
  if (rc != 0) {
    Napi::Error err = Napi::Error::New(env, std::string("fi_getinfo failed: ") + fi_strerror(-rc));
    err.Set("code", Napi::String::New(env, "ERR_RDMAQ_FABRIC"));
    err.Set("errno", Napi::Number::New(env, -rc));
    throw err;
  }
  std::set<std::string> names;
  for (fi_info* p = list; p; p = p->next) {
    if (p->fabric_attr && p->fabric_attr->prov_name) names.insert(p->fabric_attr->prov_name);
  }
  fi_freeinfo(list);
  uint32_t i = 0;
  for (const auto& n : names) out.Set(i++, Napi::String::New(env, n));
  return out;
}

Napi::Value FabricVersion(const Napi::CallbackInfo& info) {
  uint32_t v = fi_version();
  return Napi::String::New(info.Env(), std::to_string(FI_MAJOR(v)) + "." + std::to_string(FI_MINOR(v)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("providers", Napi::Function::New(env, Providers, "providers"));
  exports.Set("fabricVersion", Napi::Function::New(env, FabricVersion, "fabricVersion"));
  rdmaq_fabric::Register(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(rdmaq, Init)

// What the fabric N-API classes (fabric_sender_napi.h, fabric_receiver_napi.h) share, and the fabric helper
// functions exported beside them (fabricAddressIp, fabricProbe). The JS side lives in src/fabric/
// (declarations in src/fabric/native.ts).
#pragma once

#include <napi.h>
#include <rdma/fabric.h>

#include <map>
#include <memory>
#include <string>

#include "fabric_engine.h"
#include "js_args.h"
#include "js_error.h"
#include "stats_file.h"

namespace rdmaq::fabric {

inline Napi::Object InfoToJs(Napi::Env env, Endpoint& ep) {
  const InfoSummary& s = ep.summary();
  Napi::Object o = Napi::Object::New(env);
  o.Set("provider", s.provider);
  o.Set("fabric", s.fabric);
  o.Set("domain", s.domain);
  o.Set("rxCqData", Napi::Boolean::New(env, (s.mode & FI_RX_CQ_DATA) != 0));
  o.Set("mrVirtAddr", Napi::Boolean::New(env, (s.mr_mode & FI_MR_VIRT_ADDR) != 0));
  o.Set("mrLocal", Napi::Boolean::New(env, (s.mr_mode & FI_MR_LOCAL) != 0));
  o.Set("mrEndpoint", Napi::Boolean::New(env, (s.mr_mode & FI_MR_ENDPOINT) != 0));
  o.Set("mrMode", Napi::Number::New(env, double(s.mr_mode)));
  o.Set("cqDataSize", Napi::Number::New(env, double(s.cq_data_size)));
  o.Set("injectSize", Napi::Number::New(env, double(s.inject_size)));
  o.Set("txSize", Napi::Number::New(env, double(s.tx_size)));
  o.Set("rxSize", Napi::Number::New(env, double(s.rx_size)));
  o.Set("maxMsgSize", Napi::Number::New(env, double(s.max_msg_size)));
  o.Set("mrKeySize", Napi::Number::New(env, double(s.mr_key_size)));
  o.Set("addrFormat", Napi::Number::New(env, double(s.addr_format)));
  o.Set("waitFd", Napi::Boolean::New(env, ep.wait_fd() >= 0));
  o.Set("waitNote", ep.wait_note());
  o.Set("address", Napi::Buffer<uint8_t>::Copy(env, ep.addr(), ep.addrlen()));
  o.Set("addressText", ep.StrAddr(ep.addr(), ep.addrlen()));
  return o;
}

inline Napi::Value ErrorOrNull(Napi::Env env, bool failed, const RdmaqError& e) {
  if (!failed) return env.Null();
  return toJs(env, e).Value();
}

// Keeps native memory alive while JS still holds an ArrayBuffer over it.
template <typename T>
Napi::ArrayBuffer ExternalBuffer(Napi::Env env, std::shared_ptr<T> owner, uint8_t* data, size_t len) {
  auto* hold = new std::shared_ptr<T>(std::move(owner));
  return Napi::ArrayBuffer::New(env, data, len, [](Napi::Env, void*, std::shared_ptr<T>* h) { delete h; }, hold);
}

// This link end's slot in the process's statistics file (native/stats_file.h). The TS side opens it once the
// link id is known (statsOpen), tells it what only JS knows (statsMeta: state, epoch, reconnects, resends,
// errors by kind); the data path publishes the core's counters at the end of each call.
class FabricStatsSlot {
 public:
  ~FabricStatsSlot() { close(); }
  stats::Slot* slot = nullptr;
  uint64_t reconnects = 0, resends = 0;
  void open(const Napi::CallbackInfo& info, uint8_t role) {
    if (slot || info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString()) return;
    slot = stats::File::instance().allocate(role, stats::kFabric, info[0].As<Napi::String>().Utf8Value(),
                                                   info[1].As<Napi::String>().Utf8Value(),
                                                   info[2].As<Napi::String>().Utf8Value());
  }
  void meta(const Napi::CallbackInfo& info) {
    if (!slot || info.Length() < 6) return;
    if (info[0].IsString()) slot->setState(info[0].As<Napi::String>().Utf8Value(), info[1].IsNumber() ? uint64_t(info[1].As<Napi::Number>().DoubleValue()) : 0);
    if (info[2].IsNumber()) reconnects = uint64_t(info[2].As<Napi::Number>().DoubleValue());
    if (info[3].IsNumber()) resends = uint64_t(info[3].As<Napi::Number>().DoubleValue());
    if (info[4].IsObject()) {
      std::map<std::string, uint64_t> errs;
      Napi::Object o = info[4].As<Napi::Object>();
      Napi::Array keys = o.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length() && i < 64; ++i) {
        Napi::Value k = keys.Get(i), v = o.Get(k);
        if (k.IsString() && v.IsNumber()) errs[k.As<Napi::String>().Utf8Value()] = uint64_t(v.As<Napi::Number>().DoubleValue());
      }
      slot->setErrors(errs);
    }
    if (info[5].IsString()) slot->setProvider(info[5].As<Napi::String>().Utf8Value());
  }
  void close() {
    if (slot) stats::File::instance().free(slot);
    slot = nullptr;
  }

  // statsOpen / statsMeta / statsClose of both classes; `publish` puts the core's counters into the slot.
  template <typename Publish>
  Napi::Value jsOpen(const Napi::CallbackInfo& info, uint8_t role, Publish&& publish) {
    open(info, role);
    publish();
    return info.Env().Undefined();
  }
  template <typename Publish>
  Napi::Value jsMeta(const Napi::CallbackInfo& info, Publish&& publish) {
    meta(info);
    publish();
    return info.Env().Undefined();
  }
  template <typename Publish>
  Napi::Value jsClose(const Napi::CallbackInfo& info, Publish&& publish) {
    publish();
    close();
    return info.Env().Undefined();
  }
};

// open(provider, node) of both classes: the core joins the thread's shared endpoint; returns the fi_info
// summary with what `more` adds (the addresses and keys the peer needs).
template <typename Core, typename More>
Napi::Value OpenCore(const Napi::CallbackInfo& info, Core& core, More&& more) {
  std::string prov = ArgStr(info, 0, "provider"), node = ArgStr(info, 1, "node");
  return guard(info.Env(), [&]() -> Napi::Value {
    core.OpenFabric(prov, node);
    Napi::Object o = InfoToJs(info.Env(), core.ep());
    more(o);
    return o;
  });
}

// fabricAddress(bytes) → {ip, port} for IP providers' sockaddr addresses (null for other formats).
inline Napi::Value FabricAddressIp(const Napi::CallbackInfo& info) {
  Napi::Uint8Array a = ArgBytes(info, 0, "address");
  int port = -1;
  std::string ip = SockaddrIp(a.Data(), a.ByteLength(), &port);
  if (ip.empty()) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("ip", ip);
  o.Set("port", port);
  return o;
}

// fabricProbe(provider, node) → the fi_info summary of what an endpoint gets (throws the plain-words errors).
inline Napi::Value FabricProbe(const Napi::CallbackInfo& info) {
  std::string prov = ArgStr(info, 0, "provider"), node = ArgStr(info, 1, "node");
  return guard(info.Env(), [&]() -> Napi::Value {
    Endpoint ep;
    ep.Open(prov, node, 64);
    return InfoToJs(info.Env(), ep);
  });
}

}  // namespace rdmaq::fabric

// FabricSenderNative, the JS class of the same name (src/fabric/native.ts): a SenderCore (fabric_sender.h)
// with its statistics slot. The JS side (src/fabric/sender.ts) drives the handshake and the progress loop.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "fabric_engine.h"
#include "fabric_napi.h"
#include "js_args.h"
#include "js_error.h"
#include "stats_file.h"

namespace rdmaq::fabric {

class FabricSenderNative : public Napi::ObjectWrap<FabricSenderNative> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FabricSenderNative",
                       {InstanceMethod("open", &FabricSenderNative::Open),
                        InstanceMethod("resendPoint", &FabricSenderNative::ResendPoint),
                        InstanceMethod("connect", &FabricSenderNative::Connect),
                        InstanceMethod("send", &FabricSenderNative::Send),
                        InstanceMethod("claim", &FabricSenderNative::Claim),
                        InstanceMethod("commit", &FabricSenderNative::Commit),
                        InstanceMethod("mirror", &FabricSenderNative::Mirror),
                        InstanceMethod("progress", &FabricSenderNative::Progress),
                        InstanceMethod("state", &FabricSenderNative::State),
                        InstanceMethod("error", &FabricSenderNative::Error),
                        InstanceMethod("closeFabric", &FabricSenderNative::CloseFabric),
                        InstanceMethod("forgeWrite", &FabricSenderNative::ForgeWrite),
                        InstanceMethod("forgeCredit", &FabricSenderNative::ForgeCredit),
                        InstanceMethod("forgeWedge", &FabricSenderNative::ForgeWedge),
                        InstanceMethod("writeCheck", &FabricSenderNative::WriteCheck),
                        InstanceMethod("startData", &FabricSenderNative::StartData),
                        InstanceMethod("statsOpen", &FabricSenderNative::StatsOpen),
                        InstanceMethod("statsMeta", &FabricSenderNative::StatsMeta),
                        InstanceMethod("statsRtt", &FabricSenderNative::StatsRtt),
                        InstanceMethod("statsClose", &FabricSenderNative::StatsClose)});
  }
  FabricSenderNative(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FabricSenderNative>(info) {
    uint64_t cap = ArgU64(info, 0, "capacity");
    std::string journal = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    core_ = guard(info.Env(), [&] { return std::make_shared<SenderCore>(cap, journal); });
    core_->SetChecksum(info.Length() > 2 && info[2].ToBoolean().Value());
  }
  // For the benchmark engine loops below (same thread, same object: no ownership change).
  SenderCore& core() { return *core_; }

 private:
  inline void publish() {
    if (!stats_.slot) return;
    SenderCore& c = *core_;
    stats_.slot->publish({c.records_, c.bytes_, c.completions_, c.credits_, c.backpressure_, c.wraps_, stats_.resends,
                          stats_.reconnects, 0, c.tail() - c.acked(), c.capacity()});
  }
  Napi::Value StatsOpen(const Napi::CallbackInfo& info) {
    return stats_.jsOpen(info, stats::kTx, [this] { publish(); });
  }
  Napi::Value StatsMeta(const Napi::CallbackInfo& info) { return stats_.jsMeta(info, [this] { publish(); }); }
  Napi::Value StatsRtt(const Napi::CallbackInfo& info) {
    if (stats_.slot && info[0].IsNumber()) {
      const double d = info[0].As<Napi::Number>().DoubleValue();
      const uint64_t v = d > 0 ? uint64_t(d) : 0;
      stats_.slot->recordRtt(Histogram::bucketOf(v), v);
      publish();
    }
    return info.Env().Undefined();
  }
  Napi::Value StatsClose(const Napi::CallbackInfo& info) { return stats_.jsClose(info, [this] { publish(); }); }
  Napi::Value Open(const Napi::CallbackInfo& info) {
    return OpenCore(info, *core_, [&](Napi::Object& o) {
      o.Set("creditAddr", Napi::BigInt::New(info.Env(), core_->credit_addr()));
      o.Set("creditKey", Napi::BigInt::New(info.Env(), core_->credit_key()));
    });
  }
  Napi::Value ResendPoint(const Napi::CallbackInfo& info) {
    double want = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    return guard(info.Env(), [&]() -> Napi::Value {
      auto p = core_->ResendPoint(want < 0 ? -1 : int64_t(want));
      Napi::Array a = Napi::Array::New(info.Env(), 2);
      a.Set(0u, Napi::Number::New(info.Env(), double(p.first)));
      a.Set(1u, Napi::Number::New(info.Env(), double(p.second)));
      return a;
    });
  }
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Uint8Array peer = ArgBytes(info, 0, "peer address");
    uint64_t base = ArgU64(info, 1, "ring address"), key = ArgU64(info, 2, "ring key");
    uint64_t start = ArgU64(info, 3, "start position"), slot = ArgU64(info, 4, "receiver slot");
    if (slot == 0 || slot >= kSlots) ArgError(info.Env(), "receiver slot must be 1..1023");
    guard(info.Env(), [&] {
      core_->Connect(peer.Data(), peer.ByteLength(), base, key, uint32_t(slot), start);
      return 0;
    });
    return info.Env().Undefined();
  }
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Uint8Array data = ArgBytes(info, 0, "record");
    if (data.ByteLength() > 0xffffffffu) ArgError(info.Env(), "record too large");
    return guard(info.Env(), [&]() -> Napi::Value {
      uint16_t type = info.Length() > 1 && info[1].IsNumber() ? uint16_t(info[1].As<Napi::Number>().Uint32Value()) : uint16_t(kData);
      if (type != kData && type != kProbe && type != kHeartbeat) ArgError(info.Env(), "record type must be DATA, PROBE or HEARTBEAT");
      bool ok = core_->Send(data.Data(), uint32_t(data.ByteLength()), type);
      // post: progress(true) in the same crossing (a busy-spin writer would call flush() next anyway). Also
      // when the ring is full: the CQ read brings the credit. A failure is sticky; progress() reports it.
      if (info.Length() > 2 && info[2].ToBoolean()) core_->Progress(true);
      publish();
      return Napi::Boolean::New(info.Env(), ok);
    });
  }
  Napi::Value Claim(const Napi::CallbackInfo& info) {
    uint64_t len = ArgU64(info, 0, "length");
    if (len > 0xffffffffu) ArgError(info.Env(), "length too large");
    return guard(info.Env(),
                 [&]() -> Napi::Value { return Napi::Number::New(info.Env(), double(core_->Claim(uint32_t(len)))); });
  }
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    const double r = double(core_->Commit());
    publish();
    return Napi::Number::New(info.Env(), r);
  }
  Napi::Value Mirror(const Napi::CallbackInfo& info) {
    return ExternalBuffer(info.Env(), core_, core_->mirror(), core_->capacity());
  }
  // -1: the link failed (error() says why); 0: idle (nothing unsent, nothing in flight); 1: busy, nothing
  // moved this call; 2: busy and something moved (posted, completed or credited).
  Napi::Value Progress(const Napi::CallbackInfo& info) {
    uint64_t s0 = core_->sent(), a0 = core_->acked(), c0 = core_->completions_;
    bool ok = core_->Progress(info.Length() > 0 && info[0].ToBoolean());
    int r = !ok ? -1 : core_->idle() ? 0 : (core_->sent() != s0 || core_->acked() != a0 || core_->completions_ != c0) ? 2 : 1;
    if (r != 1) publish();
    return Napi::Number::New(info.Env(), r);
  }
  Napi::Value State(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SenderCore& c = *core_;
    Napi::Object o = Napi::Object::New(env);
    o.Set("tail", double(c.tail()));
    o.Set("sent", double(c.sent()));
    o.Set("acked", double(c.acked()));
    o.Set("nextSeq", double(c.next_seq()));
    o.Set("free", double(c.Free()));
    o.Set("capacity", double(c.capacity()));
    o.Set("maxPayload", double(c.MaxPayload()));
    o.Set("inflight", double(c.inflight()));
    o.Set("idle", c.idle());
    o.Set("streamId", double(c.stream_id()));
    o.Set("recovered", c.recovered());
    o.Set("records", double(c.records_));
    o.Set("bytes", double(c.bytes_));
    o.Set("writes", double(c.writes_));
    o.Set("completions", double(c.completions_));
    o.Set("credits", double(c.credits_));
    o.Set("backpressure", double(c.backpressure_));
    o.Set("wraps", double(c.wraps_));
    o.Set("cqErrors", double(c.cq_errors_));
    o.Set("endpointLinks", double(c.endpoint_links()));
    return o;
  }
  Napi::Value Error(const Napi::CallbackInfo& info) {
    return ErrorOrNull(info.Env(), core_->failed(), core_->error());
  }
  Napi::Value CloseFabric(const Napi::CallbackInfo& info) {
    if (info.Length() > 1 && info[1].ToBoolean())
      core_->AbandonEndpoint();  // the provider connection to the peer is wedged: next time a new endpoint
    else
      core_->CloseFabric(info.Length() > 0 && info[0].ToBoolean());  // final: leave the shared endpoint
    return info.Env().Undefined();
  }
  Napi::Value WriteCheck(const Napi::CallbackInfo& info) {
    uint64_t v = ArgU64(info, 0, "check value");
    guard(info.Env(), [&] {
      core_->WriteCheck(v);
      return 0;
    });
    return info.Env().Undefined();
  }
  Napi::Value StartData(const Napi::CallbackInfo& info) {
    core_->StartData();
    return info.Env().Undefined();
  }
  Napi::Value ForgeWedge(const Napi::CallbackInfo& info) {
    core_->ForgeWedge();
    return info.Env().Undefined();
  }
  Napi::Value ForgeCredit(const Napi::CallbackInfo& info) {
    core_->ForgeCredit(ArgU64(info, 0, "credit"));
    return info.Env().Undefined();
  }
  Napi::Value ForgeWrite(const Napi::CallbackInfo& info) {
    core_->ForgeWrite(ArgU64(info, 0, "length"), ArgU64(info, 1, "data"));
    return info.Env().Undefined();
  }

  std::shared_ptr<SenderCore> core_;
  FabricStatsSlot stats_;
};

}  // namespace rdmaq::fabric

// N-API wrappers of the fabric engine (fabric_engine.h): FabricSenderNative, FabricReceiverNative and
// fabric helpers. Included by the single compile unit native/addon.cc, which calls rdmaq_fabric::Register.
// The JS side lives in src/fabric/ (declarations in src/fabric/native.ts).
#pragma once

#include <napi.h>

#include <memory>

#include "cq_waiter.h"
#include "fabric_engine.h"
#include "histogram.h"
#include "stats_file.h"

namespace rdmaq_fabric {

inline Napi::Error ToJs(Napi::Env env, const FabricError& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", Napi::String::New(env, e.code));
  if (e.err) {
    err.Set("errno", Napi::Number::New(env, e.err));
    err.Set("fiError", Napi::String::New(env, fi_strerror(e.err)));
  }
  return err;
}

// Runs f, turning FabricError into a thrown JS Error (bad input never crashes the process).
template <typename F>
auto Guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const FabricError& e) {
    throw ToJs(env, e);
  }
}

inline void ArgError(Napi::Env env, const std::string& msg) {
  Napi::TypeError err = Napi::TypeError::New(env, msg);
  err.Set("code", Napi::String::New(env, "ERR_RDMAQ_ARG"));
  throw err;
}

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
  return 0;
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

inline Napi::Value ErrorOrNull(Napi::Env env, bool failed, const FabricError& e) {
  if (!failed) return env.Null();
  return ToJs(env, e).Value();
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
  rdmaq::stats::Slot* slot = nullptr;
  uint64_t reconnects = 0, resends = 0;
  void open(const Napi::CallbackInfo& info, uint8_t role) {
    if (slot || info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString()) return;
    slot = rdmaq::stats::File::instance().allocate(role, rdmaq::stats::kFabric, info[0].As<Napi::String>().Utf8Value(),
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
    if (slot) rdmaq::stats::File::instance().free(slot);
    slot = nullptr;
  }
};

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
    core_ = Guard(info.Env(), [&] { return std::make_shared<SenderCore>(cap, journal); });
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
    stats_.open(info, rdmaq::stats::kTx);
    publish();
    return info.Env().Undefined();
  }
  Napi::Value StatsMeta(const Napi::CallbackInfo& info) {
    stats_.meta(info);
    publish();
    return info.Env().Undefined();
  }
  Napi::Value StatsRtt(const Napi::CallbackInfo& info) {
    if (stats_.slot && info[0].IsNumber()) {
      const double d = info[0].As<Napi::Number>().DoubleValue();
      const uint64_t v = d > 0 ? uint64_t(d) : 0;
      stats_.slot->recordRtt(rdmaq::Histogram::bucketOf(v), v);
      publish();
    }
    return info.Env().Undefined();
  }
  Napi::Value StatsClose(const Napi::CallbackInfo& info) {
    publish();
    stats_.close();
    return info.Env().Undefined();
  }
  Napi::Value Open(const Napi::CallbackInfo& info) {
    std::string prov = ArgStr(info, 0, "provider"), node = ArgStr(info, 1, "node");
    return Guard(info.Env(), [&]() -> Napi::Value {
      core_->OpenFabric(prov, node);
      Napi::Object o = InfoToJs(info.Env(), core_->ep());
      o.Set("creditAddr", Napi::BigInt::New(info.Env(), core_->credit_addr()));
      o.Set("creditKey", Napi::BigInt::New(info.Env(), core_->credit_key()));
      return o;
    });
  }
  Napi::Value ResendPoint(const Napi::CallbackInfo& info) {
    double want = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    return Guard(info.Env(), [&]() -> Napi::Value {
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
    Guard(info.Env(), [&] {
      core_->Connect(peer.Data(), peer.ByteLength(), base, key, uint32_t(slot), start);
      return 0;
    });
    return info.Env().Undefined();
  }
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Uint8Array data = ArgBytes(info, 0, "record");
    if (data.ByteLength() > 0xffffffffu) ArgError(info.Env(), "record too large");
    return Guard(info.Env(), [&]() -> Napi::Value {
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
    return Guard(info.Env(),
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
    Guard(info.Env(), [&] {
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

class FabricReceiverNative : public Napi::ObjectWrap<FabricReceiverNative> {
 public:
  static constexpr size_t kDescFields = 5;  // offset, length, type, seq, queue latency ns
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FabricReceiverNative",
                       {InstanceMethod("open", &FabricReceiverNative::Open),
                        InstanceMethod("connect", &FabricReceiverNative::Connect),
                        InstanceMethod("poll", &FabricReceiverNative::Poll),
                        InstanceMethod("release", &FabricReceiverNative::Release),
                        InstanceMethod("ring", &FabricReceiverNative::Ring),
                        InstanceMethod("descriptors", &FabricReceiverNative::Descriptors),
                        InstanceMethod("state", &FabricReceiverNative::State),
                        InstanceMethod("error", &FabricReceiverNative::Error),
                        InstanceMethod("closeFabric", &FabricReceiverNative::CloseFabric),
                        InstanceMethod("expectCheck", &FabricReceiverNative::ExpectCheck),
                        InstanceMethod("pollCheck", &FabricReceiverNative::PollCheck),
                        InstanceMethod("sleep", &FabricReceiverNative::Sleep),
                        InstanceMethod("unsleep", &FabricReceiverNative::Unsleep),
                        InstanceMethod("statsOpen", &FabricReceiverNative::StatsOpen),
                        InstanceMethod("statsMeta", &FabricReceiverNative::StatsMeta),
                        InstanceMethod("statsClose", &FabricReceiverNative::StatsClose)});
  }
  FabricReceiverNative(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FabricReceiverNative>(info) {
    uint64_t cap = ArgU64(info, 0, "capacity");
    uint64_t max_batch = info.Length() > 1 ? ArgU64(info, 1, "max batch") : 1024;
    if (max_batch == 0 || max_batch > 65536) ArgError(info.Env(), "max batch must be 1..65536");
    core_ = Guard(info.Env(), [&] { return std::make_shared<ReceiverCore>(cap); });
    max_batch_ = max_batch;
    desc_ = std::make_shared<std::vector<double>>(max_batch_ * kDescFields);
  }
  ReceiverCore& core() { return *core_; }

 private:
  inline void publish(uint64_t now = 0) {
    if (!stats_.slot) return;
    ReceiverCore& c = *core_;
    stats_.slot->publish({c.records_, c.bytes_, c.completions_, c.credits_, 0, c.wraps_, c.duplicates_,
                          stats_.reconnects, c.wakeups_, c.tail() - c.head(), c.capacity()},
                         now / 1000000);
  }
  Napi::Value StatsOpen(const Napi::CallbackInfo& info) {
    stats_.open(info, rdmaq::stats::kRx);
    publish();
    return info.Env().Undefined();
  }
  Napi::Value StatsMeta(const Napi::CallbackInfo& info) {
    stats_.meta(info);
    publish();
    return info.Env().Undefined();
  }
  Napi::Value StatsClose(const Napi::CallbackInfo& info) {
    publish();
    stats_.close();
    return info.Env().Undefined();
  }
  Napi::Value Open(const Napi::CallbackInfo& info) {
    std::string prov = ArgStr(info, 0, "provider"), node = ArgStr(info, 1, "node");
    return Guard(info.Env(), [&]() -> Napi::Value {
      core_->OpenFabric(prov, node);
      Napi::Object o = InfoToJs(info.Env(), core_->ep());
      o.Set("ringAddr", Napi::BigInt::New(info.Env(), core_->ring_base()));
      o.Set("ringKey", Napi::BigInt::New(info.Env(), core_->ring_key()));
      o.Set("slot", Napi::Number::New(info.Env(), core_->slot()));
      return o;
    });
  }
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Uint8Array peer = ArgBytes(info, 0, "peer address");
    uint64_t caddr = ArgU64(info, 1, "credit address"), ckey = ArgU64(info, 2, "credit key");
    uint64_t start = ArgU64(info, 3, "start position"), seq = ArgU64(info, 4, "start sequence");
    out_.clear();  // views of the previous connection were delivered; the stream restarts at `start`
    Guard(info.Env(), [&] {
      core_->Connect(peer.Data(), peer.ByteLength(), caddr, ckey, start, seq);
      return 0;
    });
    return info.Env().Undefined();
  }
  // Fills the descriptor array (see descriptors()) and returns how many records are ready.
  Napi::Value Poll(const Napi::CallbackInfo& info) {
    uint64_t limit = info.Length() > 0 ? ArgU64(info, 0, "limit") : max_batch_;
    limit = std::min<uint64_t>(limit, max_batch_);
    // spinNs: keep polling inside this call until something arrives or spinNs pass — a spinning consumer
    // then pays one N-API crossing per record, not one per empty poll (each poll is a CQ read anyway).
    const uint64_t spin = info.Length() > 1 && !info[1].IsUndefined() ? ArgU64(info, 1, "spinNs") : 0;
    // Views the caller did not release (its handlers all returned) are released here: one N-API crossing per
    // poll instead of two. A caller that needs credit back now, or whose handler threw, calls release().
    if (!out_.empty()) {
      core_->Release(out_.size(), out_, false);
      out_.clear();
    }
    size_t n = core_->Poll(limit, out_);
    if (n == 0 && spin && !core_->failed()) {
      const uint64_t end = NowNs() + spin;
      do n = core_->Poll(limit, out_);
      while (n == 0 && !core_->failed() && NowNs() < end);
    }
    if (n == 0 && core_->failed()) return Napi::Number::New(info.Env(), -1);  // error() says why
    uint64_t now = n ? NowNs() : 0;
    for (size_t i = 0; i < n; ++i) {
      const Delivered& d = out_[i];
      double* row = desc_->data() + i * kDescFields;
      row[0] = double(d.offset);
      row[1] = double(d.length);
      row[2] = double(d.type);
      row[3] = double(d.seq);
      row[4] = now > d.timestamp_ns ? double(now - d.timestamp_ns) : 0.0;
      if (stats_.slot && d.type == kData) {
        const uint64_t lat = now > d.timestamp_ns ? now - d.timestamp_ns : 0;
        stats_.slot->recordQueue(rdmaq::Histogram::bucketOf(lat), lat);
      }
    }
    if (n) publish(now);
    return Napi::Number::New(info.Env(), double(n));
  }
  // release(count?, flush?, resend?): the first `count` records of the last poll were consumed (default all: also
  // what to pass when nothing was polled since); the rest are handed out again by the next poll (a handler
  // threw). flush: return credit now.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    uint64_t k = info.Length() > 0 && info[0].IsNumber() ? ArgU64(info, 0, "count") : out_.size();
    bool flush = info.Length() > 1 && info[1].ToBoolean();
    bool resend = info.Length() > 2 && info[2].ToBoolean();
    core_->Release(std::min<uint64_t>(k, out_.size()), out_, flush || resend, resend);
    out_.clear();  // released views are gone: a later release() must not rewind to them
    publish();
    return info.Env().Undefined();
  }
  Napi::Value Ring(const Napi::CallbackInfo& info) {
    return ExternalBuffer(info.Env(), core_, core_->ring(), core_->capacity());
  }
  Napi::Value Descriptors(const Napi::CallbackInfo& info) {
    // A Float64Array over desc_, created once by the JS side (desc_ never reallocates).
    Napi::ArrayBuffer ab = ExternalBuffer(info.Env(), desc_, reinterpret_cast<uint8_t*>(desc_->data()),
                                          desc_->size() * sizeof(double));
    return Napi::Float64Array::New(info.Env(), desc_->size(), ab, 0);
  }
  Napi::Value State(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ReceiverCore& c = *core_;
    Napi::Object o = Napi::Object::New(env);
    o.Set("head", double(c.head()));
    o.Set("tail", double(c.tail()));
    o.Set("expected", double(c.expected()));
    o.Set("hasExpected", c.has_expected());
    o.Set("capacity", double(c.capacity()));
    o.Set("empty", c.empty());
    o.Set("records", double(c.records_));
    o.Set("bytes", double(c.bytes_));
    o.Set("completions", double(c.completions_));
    o.Set("credits", double(c.credits_));
    o.Set("wraps", double(c.wraps_));
    o.Set("duplicates", double(c.duplicates_));
    o.Set("cqErrors", double(c.cq_errors_));
    o.Set("sleeps", double(c.sleeps_));
    o.Set("wakeups", double(c.wakeups_));
    o.Set("parked", c.parked);
    o.Set("endpointLinks", double(c.endpoint_links()));
    return o;
  }
  Napi::Value Error(const Napi::CallbackInfo& info) {
    return ErrorOrNull(info.Env(), core_->failed(), core_->error());
  }
  Napi::Value CloseFabric(const Napi::CallbackInfo& info) {
    core_->CloseFabric(info.Length() > 0 && info[0].ToBoolean());  // final: leave the shared endpoint
    return info.Env().Undefined();
  }
  Napi::Value ExpectCheck(const Napi::CallbackInfo& info) {
    core_->ExpectCheck(ArgU64(info, 0, "check value"));
    return info.Env().Undefined();
  }
  Napi::Value PollCheck(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_->PollCheck());
  }
  // sleep(cb) → 1 asleep on the shared CQ's wait fd (cb is called once when there is something to do),
  // 0 not asleep (records or an error are there now: poll), -1 this endpoint has no wait fd (waitNote says
  // why): the caller falls back to another way of waking. Releases the views of the last poll first, with
  // credit only if a sixteenth of the ring or more was consumed since the last (CreditIfAbove).
  Napi::Value Sleep(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsFunction()) ArgError(info.Env(), "sleep(callback): callback must be a function");
    FabricHub* hub = core_->hub_ptr();
    if (!hub || hub->ep().wait_fd() < 0) return Napi::Number::New(info.Env(), -1);
    if (!out_.empty()) {
      core_->Release(out_.size(), out_, false);
      out_.clear();
    }
    core_->CreditIfAbove(core_->capacity() / 16);
    return Guard(info.Env(), [&]() -> Napi::Value {
      HubWaiter& w = HubWaiter::For(info.Env(), *hub);
      return Napi::Number::New(info.Env(), w.Sleep(info.Env(), core_.get(), info[0].As<Napi::Function>()));
    });
  }
  Napi::Value Unsleep(const Napi::CallbackInfo& info) {
    FabricHub* hub = core_->hub_ptr();
    if (hub && hub->sleepers) hub->sleepers->Forget(core_.get());
    return info.Env().Undefined();
  }

  std::shared_ptr<ReceiverCore> core_;
  FabricStatsSlot stats_;
  size_t max_batch_ = 1024;
  std::vector<Delivered> out_;
  std::shared_ptr<std::vector<double>> desc_;
};

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
  return Guard(info.Env(), [&]() -> Napi::Value {
    Endpoint ep;
    ep.Open(prov, node, 64);
    return InfoToJs(info.Env(), ep);
  });
}


// ---------------------------------------------------------------------------------------------------------
// rdmaq-perf --engine over fabric: the busy-spin loops of src/fabric/perf.ts driven from C++ — the same
// cores and calls, without an N-API crossing per record. Each call runs a bounded chunk and returns, so the
// event loop (the control connection's heartbeats, which are the liveness signal) runs between chunks.

inline SenderCore& EngineSender(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsObject()) ArgError(info.Env(), "sender must be a FabricSenderNative");
  return FabricSenderNative::Unwrap(info[i].As<Napi::Object>())->core();
}
inline ReceiverCore& EngineReceiver(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsObject()) ArgError(info.Env(), "receiver must be a FabricReceiverNative");
  return FabricReceiverNative::Unwrap(info[i].As<Napi::Object>())->core();
}
// Optional Float64Array argument (null/undefined: no samples).
inline double* EngineSamples(const Napi::CallbackInfo& info, size_t i, size_t* len) {
  *len = 0;
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ArgError(info.Env(), "samples must be a Float64Array");
  Napi::Float64Array a = info[i].As<Napi::Float64Array>();
  *len = a.ElementLength();
  return a.Data();
}
inline void EngineCheck(Napi::Env env, SenderCore& tx) {
  if (tx.failed()) throw ToJs(env, tx.error());
}
inline void EngineCheck(Napi::Env env, ReceiverCore& rx) {
  if (rx.failed()) throw ToJs(env, rx.error());
}
[[noreturn]] inline void EngineTimeout(Napi::Env env, const std::string& what) {
  Napi::Error err = Napi::Error::New(env, "engine: " + what);
  err.Set("code", Napi::String::New(env, "ERR_RDMAQ_TIMEOUT"));
  throw err;
}
constexpr uint64_t kEngineStallNs = 10'000'000'000ull;

// Spins until one record is delivered (DATA returned; other types are consumed on the way) or `wait_ns`
// passes (false). Our own write completions are reaped every 64 spins, as the JS loop does: each CQ read
// drives the provider's progress, i.e. syscalls.
inline bool EngineNext(Napi::Env env, SenderCore& tx, ReceiverCore& rx, std::vector<Delivered>& out,
                       uint64_t wait_ns) {
  const uint64_t start = NowNs();
  for (uint64_t k = 1;; ++k) {
    if (rx.Poll(1, out)) {
      if (out[0].type == kData) return true;
      rx.Release(1, out, false);
      continue;
    }
    EngineCheck(env, rx);
    if ((k & 63) == 0) {
      if (!tx.Progress(true)) EngineCheck(env, tx);
      if (NowNs() - start > wait_ns) return false;
    }
  }
}

inline void EngineSend(Napi::Env env, SenderCore& tx, const uint8_t* data, uint32_t len) {
  const uint64_t start = NowNs();
  while (!tx.Send(data, len)) {
    if (!tx.Progress(false)) EngineCheck(env, tx);
    if (NowNs() - start > kEngineStallNs) EngineTimeout(env, "no credit from the receiver for 10 s");
  }
}

// fabricEngineLatPing(tx, rx, size, count, samples, offset) → count. Sends `count` records of `size` bytes,
// each after the previous echo; one-way ns (round trip / 2) of round trip i go to samples[offset + i] when
// that index is in range (a negative offset skips warm-up trips).
inline Napi::Value FabricEngineLatPingImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SenderCore& tx = EngineSender(info, 0);
  ReceiverCore& rx = EngineReceiver(info, 1);
  const uint64_t size = ArgU64(info, 2, "size"), count = ArgU64(info, 3, "count");
  size_t nsamples = 0;
  double* samples = EngineSamples(info, 4, &nsamples);
  const int64_t offset = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Int64Value() : 0;
  if (size > tx.MaxPayload()) ArgError(env, "size exceeds the ring's largest record");
  std::vector<uint8_t> payload(size, 0x5a);
  std::vector<Delivered> out;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t s = NowNs();
    EngineSend(env, tx, payload.data(), uint32_t(size));
    if (!tx.Progress(true)) EngineCheck(env, tx);
    if (!EngineNext(env, tx, rx, out, kEngineStallNs)) EngineTimeout(env, "no echo within 10 s");
    rx.Release(1, out, false);
    const uint64_t e = NowNs();
    const int64_t at = offset + int64_t(i);
    if (samples && at >= 0 && uint64_t(at) < nsamples) samples[at] = double(e - s) / 2;
  }
  return Napi::Number::New(env, double(count));
}

// fabricEngineLatPong(tx, rx, count, waitMs) → echoed. Echoes up to `count` records (same length); returns
// early when nothing arrived for waitMs, so the caller can let the event loop run.
inline Napi::Value FabricEngineLatPongImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SenderCore& tx = EngineSender(info, 0);
  ReceiverCore& rx = EngineReceiver(info, 1);
  const uint64_t count = ArgU64(info, 2, "count"), wait_ms = ArgU64(info, 3, "waitMs");
  std::vector<Delivered> out;
  uint64_t done = 0;
  while (done < count && EngineNext(env, tx, rx, out, wait_ms * 1'000'000ull)) {
    // Copy out of the ring before releasing it: credit lets the sender reuse those bytes.
    EngineSend(env, tx, rx.ring() + out[0].offset, out[0].length);
    if (!tx.Progress(true)) EngineCheck(env, tx);
    rx.Release(1, out, false);
    ++done;
  }
  return Napi::Number::New(env, double(done));
}

// fabricEngineBwSend(tx, size, count) → count. Appends `count` records as fast as credit allows, posting
// every 32 records (a write each: one syscall on the IP providers) and once at the end.
inline Napi::Value FabricEngineBwSendImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SenderCore& tx = EngineSender(info, 0);
  const uint64_t size = ArgU64(info, 1, "size"), count = ArgU64(info, 2, "count");
  if (size > tx.MaxPayload()) ArgError(env, "size exceeds the ring's largest record");
  std::vector<uint8_t> payload(size, 0xa5);
  for (uint64_t i = 0; i < count; ++i) {
    EngineSend(env, tx, payload.data(), uint32_t(size));
    if ((i & 31) == 31 && !tx.Progress(true)) EngineCheck(env, tx);
  }
  if (!tx.Progress(true)) EngineCheck(env, tx);
  return Napi::Number::New(env, double(count));
}

// fabricEngineBwRecv(rx, count, waitMs, samples, first) → consumed. Consumes up to `count` records; the queue
// latency (send timestamp → delivery, ns) of every record whose stream index (first + i) is a multiple of 64
// goes to samples[(first + i) / 64]. Returns early when nothing arrived for waitMs; credit is flushed then.
inline Napi::Value FabricEngineBwRecvImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReceiverCore& rx = EngineReceiver(info, 0);
  const uint64_t count = ArgU64(info, 1, "count"), wait_ms = ArgU64(info, 2, "waitMs");
  size_t nsamples = 0;
  double* samples = EngineSamples(info, 3, &nsamples);
  const uint64_t first = info.Length() > 4 ? ArgU64(info, 4, "first") : 0;
  std::vector<Delivered> out;
  uint64_t done = 0, idle_since = NowNs();
  while (done < count) {
    size_t n = rx.Poll(std::min<uint64_t>(256, count - done), out);
    if (n == 0) {
      EngineCheck(env, rx);
      if (NowNs() - idle_since > wait_ms * 1'000'000ull) break;
      continue;
    }
    const uint64_t now = NowNs();
    for (size_t j = 0; j < n; ++j) {
      const uint64_t idx = first + done + j;
      if (samples && (idx & 63) == 0 && (idx >> 6) < nsamples)
        samples[idx >> 6] = now > out[j].timestamp_ns ? double(now - out[j].timestamp_ns) : 0;
    }
    for (size_t j = 0; j < n; ++j) done += out[j].type == kData;
    rx.Release(n, out, false);
    idle_since = now;
  }
  out.clear();  // Release(k < out.size()) would rewind to out[k]: nothing is held back here
  rx.Release(0, out, true);
  return Napi::Number::New(env, double(done));
}

// A FabricError thrown inside (a core method's Fail) reaches JS as an Error with its code.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return F(info); });
}

inline void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("FabricSenderNative", FabricSenderNative::Define(env));
  exports.Set("FabricReceiverNative", FabricReceiverNative::Define(env));
  exports.Set("fabricAddressIp", Napi::Function::New(env, FabricAddressIp, "fabricAddressIp"));
  exports.Set("fabricProbe", Napi::Function::New(env, FabricProbe, "fabricProbe"));
  exports.Set("fabricEngineLatPing", Napi::Function::New(env, Guarded<FabricEngineLatPingImpl>, "fabricEngineLatPing"));
  exports.Set("fabricEngineLatPong", Napi::Function::New(env, Guarded<FabricEngineLatPongImpl>, "fabricEngineLatPong"));
  exports.Set("fabricEngineBwSend", Napi::Function::New(env, Guarded<FabricEngineBwSendImpl>, "fabricEngineBwSend"));
  exports.Set("fabricEngineBwRecv", Napi::Function::New(env, Guarded<FabricEngineBwRecvImpl>, "fabricEngineBwRecv"));
}

}  // namespace rdmaq_fabric

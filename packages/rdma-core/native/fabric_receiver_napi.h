// FabricReceiverNative, the JS class of the same name (src/fabric/native.ts): a ReceiverCore
// (fabric_receiver.h) with its descriptor array, its statistics slot and its sleep on the shared CQ's wait fd
// (cq_waiter.h). The JS side (src/fabric/receiver.ts) drives the handshake and the poll loop.
#pragma once

#include <napi.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "cq_waiter.h"
#include "fabric_engine.h"
#include "fabric_napi.h"
#include "histogram.h"
#include "js_args.h"
#include "js_error.h"
#include "record.h"
#include "stats_file.h"

namespace rdmaq::fabric {

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
    core_ = guard(info.Env(), [&] { return std::make_shared<ReceiverCore>(cap); });
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
    return stats_.jsOpen(info, stats::kRx, [this] { publish(); });
  }
  Napi::Value StatsMeta(const Napi::CallbackInfo& info) { return stats_.jsMeta(info, [this] { publish(); }); }
  Napi::Value StatsClose(const Napi::CallbackInfo& info) { return stats_.jsClose(info, [this] { publish(); }); }
  Napi::Value Open(const Napi::CallbackInfo& info) {
    return OpenCore(info, *core_, [&](Napi::Object& o) {
      o.Set("ringAddr", Napi::BigInt::New(info.Env(), core_->ring_base()));
      o.Set("ringKey", Napi::BigInt::New(info.Env(), core_->ring_key()));
      o.Set("slot", Napi::Number::New(info.Env(), core_->slot()));
    });
  }
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Uint8Array peer = ArgBytes(info, 0, "peer address");
    uint64_t caddr = ArgU64(info, 1, "credit address"), ckey = ArgU64(info, 2, "credit key");
    uint64_t start = ArgU64(info, 3, "start position"), seq = ArgU64(info, 4, "start sequence");
    out_.clear();  // views of the previous connection were delivered; the stream restarts at `start`
    guard(info.Env(), [&] {
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
      const uint64_t end = wallNs() + spin;
      do n = core_->Poll(limit, out_);
      while (n == 0 && !core_->failed() && wallNs() < end);
    }
    if (n == 0 && core_->failed()) return Napi::Number::New(info.Env(), -1);  // error() says why
    uint64_t now = n ? wallNs() : 0;
    for (size_t i = 0; i < n; ++i) {
      const Delivered& d = out_[i];
      double* row = desc_->data() + i * kDescFields;
      row[0] = double(d.offset);
      row[1] = double(d.len);
      row[2] = double(d.type);
      row[3] = double(d.seq);
      row[4] = now > d.ts ? double(now - d.ts) : 0.0;
      if (stats_.slot && d.type == kData) {
        const uint64_t lat = now > d.ts ? now - d.ts : 0;
        stats_.slot->recordQueue(Histogram::bucketOf(lat), lat);
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
    return guard(info.Env(), [&]() -> Napi::Value {
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

}  // namespace rdmaq::fabric

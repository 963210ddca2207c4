// LinkInfo: what both shm N-API link ends (sender_napi.h, receiver_napi.h) keep for stats(): identity,
// counters, state, histograms and the link's slot in the statistics file; and the one Buffer over a ring.
#pragma once

#include <napi.h>

#include <algorithm>
#include <memory>
#include <string>

#include "histogram.h"
#include "js_args.h"
#include "shm_ring.h"
#include "stats_file.h"
#include "transport.h"

namespace rdmaq {

// Stats shared by both ends: counters, state, histograms.
struct LinkInfo {
  std::string linkId, role, transport, provider;
  std::string state = "connecting";
  uint64_t epoch = 0;
  LinkCounters counters;
  Histogram queue;  // receiver: send timestamp → delivery
  Histogram rtt;    // sender: probe round trips
  // This link's slot in the process's statistics file (native/stats_file.h); null when statistics are off.
  stats::Slot* slot = nullptr;

  // Reads the options object of `new Sender(o)` / `new Receiver(o)` ({transport, linkId, ...}): sets linkId and
  // role, and refuses any transport but shm (fabric links have their own classes). `cls` names the JS class.
  Napi::Object begin(const Napi::CallbackInfo& info, const char* cls, const char* r) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throwError(env, "ERR_RDMAQ_ARG", std::string(cls) + " needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    const std::string t = getString(o, "transport");
    linkId = getString(o, "linkId");
    role = r;
    if (t == "fabric") {
      throwError(env, "ERR_RDMAQ_NO_TRANSPORT",
                 "Sender and Receiver carry shm links; fabric links are FabricSenderNative and FabricReceiverNative");
    }
    if (t != "shm") throwError(env, "ERR_RDMAQ_ARG", "unknown transport " + t + " (shm or fabric)");
    return o;
  }

  ~LinkInfo() { closeSlot(); }
  void openSlot() {
    if (slot) return;
    slot = stats::File::instance().allocate(role == "sender" ? stats::kTx : stats::kRx,
                                            transport == "fabric" ? stats::kFabric : stats::kShm, linkId,
                                            "localhost", provider);
  }
  void closeSlot() {
    if (slot) stats::File::instance().free(slot);
    slot = nullptr;
  }
  inline void recordQueue(uint64_t v) {
    queue.record(v);
    if (slot) slot->recordQueue(Histogram::bucketOf(v), v);
  }
  void recordRtt(uint64_t v) {
    rtt.record(v);
    if (slot) slot->recordRtt(Histogram::bucketOf(v), v);
  }
  // Batch end: the counters this end keeps, straight into its slot (a few plain stores, no syscall).
  inline void publish(uint64_t occupancy, uint64_t capacity, uint64_t nowNsOrZero) {
    if (!slot) return;
    const LinkCounters& k = counters;
    slot->publish({k.records, k.bytes, k.completions, k.creditUpdates, k.backpressure, k.wraps, k.resends,
                   k.reconnects, k.wakeups, occupancy, capacity},
                  nowNsOrZero / 1000000);
  }
  void publishMeta() {
    if (!slot) return;
    slot->setState(state, epoch);
    slot->setErrors(counters.errors);
  }

  // What the JS side tells either end: state and epoch, an error of a kind it counted, the peer's name.
  Napi::Value jsSetState(const Napi::CallbackInfo& info) {
    state = info[0].As<Napi::String>().Utf8Value();
    epoch = toU64(info[1], "epoch");
    publishMeta();
    return info.Env().Undefined();
  }
  Napi::Value jsCountError(const Napi::CallbackInfo& info) {
    ++counters.errors[info[0].As<Napi::String>().Utf8Value()];
    publishMeta();
    return info.Env().Undefined();
  }
  Napi::Value jsSetStatsPeer(const Napi::CallbackInfo& info) {
    if (slot && info[0].IsString()) slot->setPeer(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  }

  Napi::Object toJs(Napi::Env env, uint64_t occupancy, uint64_t peak, uint64_t capacity) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("linkId", linkId);
    o.Set("role", role);
    o.Set("transport", transport);
    o.Set("provider", provider);
    o.Set("state", state);
    o.Set("epoch", static_cast<double>(epoch));
    Napi::Object c = Napi::Object::New(env);
    const LinkCounters& k = counters;
    c.Set("records", static_cast<double>(k.records));
    c.Set("bytes", static_cast<double>(k.bytes));
    c.Set("completions", static_cast<double>(k.completions));
    c.Set("creditUpdates", static_cast<double>(k.creditUpdates));
    c.Set("backpressure", static_cast<double>(k.backpressure));
    c.Set("wraps", static_cast<double>(k.wraps));
    c.Set("resends", static_cast<double>(k.resends));
    c.Set("reconnects", static_cast<double>(k.reconnects));
    Napi::Object errs = Napi::Object::New(env);
    for (const auto& [kind, n] : k.errors) errs.Set(kind, static_cast<double>(n));
    c.Set("errors", errs);
    o.Set("counters", c);
    Napi::Object g = Napi::Object::New(env);
    g.Set("occupancyBytes", static_cast<double>(occupancy));
    g.Set("peakOccupancyBytes", static_cast<double>(std::max(peak, occupancy)));
    g.Set("capacityBytes", static_cast<double>(capacity));
    o.Set("gauges", g);
    Napi::Object l = Napi::Object::New(env);
    l.Set("queue", sparseToJs(env, queue));
    l.Set("rtt", sparseToJs(env, rtt));
    o.Set("latency", l);
    return o;
  }

  static Napi::Array sparseToJs(Napi::Env env, const Histogram& h) {
    auto sp = h.sparse();
    Napi::Array a = Napi::Array::New(env, sp.size());
    for (uint32_t i = 0; i < sp.size(); ++i) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::Number::New(env, sp[i].first));
      pair.Set(1u, Napi::Number::New(env, static_cast<double>(sp[i].second)));
      a.Set(i, pair);
    }
    return a;
  }
};

// The one Buffer over a ring data region, created once per link end. For shm it owns the mapping (unmapped
// by its finalizer), so a Buffer a user keeps after close() stays valid memory instead of a crash.
inline Napi::Value bufferOver(Napi::Env env, uint8_t* data, uint64_t len, ShmRing* owned) {
  if (!owned) return Napi::Buffer<uint8_t>::New(env, data, len);
  auto* share = new std::shared_ptr<uint8_t>(owned->shareMapping());
  return Napi::Buffer<uint8_t>::New(
      env, data, len, [](Napi::Env, uint8_t*, std::shared_ptr<uint8_t>* s) { delete s; }, share);
}

}  // namespace rdmaq

// rdmaq native addon: one compile unit, one C++ class per JS class (see src/native.ts for the JS side).
//
//   NativeSender   — producer end of a link: RingWriter over a TxTransport (shm: ShmTx; fabric: issue 4)
//   NativeReceiver — consumer end: RingReader over an RxTransport
//   Waker          — uv_poll on a wake-up fd, calling back into JS on the Node event loop
//
// Threads: none of our own. Every method runs on the Node main thread; sleeping is uv_poll on its loop.
#include <napi.h>
#include <rdma/fabric.h>
#include <rdma/fi_errno.h>
#include <uv.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "histogram.h"
#include "ring.h"
#include "shm_link.h"
#include "stats_file.h"
#include "transport.h"

// The fabric transport (issue 4). Either plug-in style is picked up without editing this file:
// fabric.h implements the transport seam (rdmaq::fabric::makeTx/makeRx/Init, see ARCHITECTURE.md);
// fabric_napi.h brings its own N-API classes (rdmaq_fabric::Register).
#if __has_include("fabric.h")
#include "fabric.h"
#define RDMAQ_HAVE_FABRIC 1
#endif
#if __has_include("fabric_napi.h")
#include "fabric_napi.h"
#define RDMAQ_HAVE_FABRIC_NAPI 1
#endif

namespace rdmaq {
namespace {

Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& msg, int err = 0) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  if (err) e.Set("errno", Napi::Number::New(env, err));
  return e;
}

[[noreturn]] void throwError(Napi::Env env, const std::string& code, const std::string& msg, int err = 0) {
  throw makeError(env, code, msg, err);
}

// Runs `f`, turning an RdmaqException into a JS Error with its code and errno.
template <typename F>
auto guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const RdmaqException& e) {
    throw makeError(env, e.code, e.what(), e.err);
  }
}

uint64_t toU64(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throwError(v.Env(), "ERR_RDMAQ_ARG", std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throwError(v.Env(), "ERR_RDMAQ_ARG", std::string(what) + " must be a non-negative integer");
  }
  return static_cast<uint64_t>(d);
}

std::string getString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throwError(o.Env(), "ERR_RDMAQ_ARG", std::string("option ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// A uv_poll watcher on one fd; on readability it drains the fd and calls the JS callback through
// MakeCallback (so promise jobs queued by the callback run before the loop sleeps again).
class Waker {
 public:
  ~Waker() { stop(); }

  void start(Napi::Env env, int fd, Napi::Function cb, std::function<void()> drain) {
    stop();
    if (fd < 0) throwError(env, "ERR_RDMAQ_WAKE", "this transport has no wake-up fd to sleep on");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) throwError(env, "ERR_RDMAQ_WAKE", "no event loop");
    auto* h = new uv_poll_t;
    int rc = uv_poll_init(loop, h, fd);
    if (rc != 0) {
      delete h;
      throwError(env, "ERR_RDMAQ_WAKE", std::string("uv_poll_init failed: ") + uv_strerror(rc), -rc);
    }
    h->data = this;
    env_ = env;
    cb_ = Napi::Persistent(cb);
    drain_ = std::move(drain);
    rc = uv_poll_start(h, UV_READABLE, &Waker::onPoll);
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_poll_t*>(x); });
      cb_.Reset();
      throwError(env, "ERR_RDMAQ_WAKE", std::string("uv_poll_start failed: ") + uv_strerror(rc), -rc);
    }
    h_ = h;
  }

  void stop() {
    if (!h_) return;
    uv_poll_stop(h_);
    h_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(h_), [](uv_handle_t* x) { delete reinterpret_cast<uv_poll_t*>(x); });
    h_ = nullptr;
    cb_.Reset();
  }

  bool active() const { return h_ != nullptr; }

 private:
  static void onPoll(uv_poll_t* h, int, int) {
    auto* self = static_cast<Waker*>(h->data);
    if (!self) return;
    if (self->drain_) self->drain_();
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    Napi::FunctionReference& cb = self->cb_;
    if (cb.IsEmpty()) return;
    try {
      cb.MakeCallback(env.Global(), {});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  uv_poll_t* h_ = nullptr;
  napi_env env_ = nullptr;
  Napi::FunctionReference cb_;
  std::function<void()> drain_;
};

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
Napi::Value bufferOver(Napi::Env env, uint8_t* data, uint64_t len, ShmRing* owned) {
  if (!owned) return Napi::Buffer<uint8_t>::New(env, data, len);
  auto* share = new std::shared_ptr<uint8_t>(owned->shareMapping());
  return Napi::Buffer<uint8_t>::New(
      env, data, len, [](Napi::Env, uint8_t*, std::shared_ptr<uint8_t>* s) { delete s; }, share);
}

// ---------------------------------------------------------------------------------------------------------

class NativeSender;
// Senders of this thread with a statistics slot: the 1 s heartbeat (src/index.ts, one timer per JS thread)
// refreshes their occupancy from the consumer's head, which the data path does not read for the file.
thread_local std::set<NativeSender*> tlStatsSenders;

class NativeSender : public Napi::ObjectWrap<NativeSender> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sender",
                       {
                           InstanceAccessor<&NativeSender::Buffer>("buffer"),
                           InstanceAccessor<&NativeSender::Capacity>("capacity"),
                           InstanceAccessor<&NativeSender::MaxPayload>("maxPayload"),
                           InstanceAccessor<&NativeSender::NextSeq>("nextSeq"),
                           InstanceAccessor<&NativeSender::Role>("role"),
                           InstanceMethod<&NativeSender::Send>("send"),
                           InstanceMethod<&NativeSender::Claim>("claim"),
                           InstanceMethod<&NativeSender::ClaimBatch>("claimBatch"),
                           InstanceMethod<&NativeSender::SetBatchArray>("setBatchArray"),
                           InstanceMethod<&NativeSender::Commit>("commit"),
                           InstanceMethod<&NativeSender::Writable>("writable"),
                           InstanceMethod<&NativeSender::ArmWritable>("armWritable"),
                           InstanceMethod<&NativeSender::DisarmWritable>("disarmWritable"),
                           InstanceMethod<&NativeSender::Probe>("probe"),
                           InstanceMethod<&NativeSender::RecordRtt>("recordRtt"),
                           InstanceMethod<&NativeSender::Resync>("resync"),
                           InstanceMethod<&NativeSender::Stats>("stats"),
                           InstanceMethod<&NativeSender::SetState>("setState"),
                           InstanceMethod<&NativeSender::CountError>("countError"),
                           InstanceMethod<&NativeSender::CountReconnect>("countReconnect"),
                           InstanceMethod<&NativeSender::SetStatsPeer>("setStatsPeer"),
                           InstanceMethod<&NativeSender::Watch>("watch"),
                           InstanceMethod<&NativeSender::Unwatch>("unwatch"),
                           InstanceMethod<&NativeSender::Close>("close"),
                       });
  }

  NativeSender(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeSender>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throwError(env, "ERR_RDMAQ_ARG", "Sender needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    std::string transport = getString(o, "transport");
    link_.linkId = getString(o, "linkId");
    link_.role = "sender";
    guard(env, [&] {
      if (transport == "shm") {
        auto t = std::make_unique<ShmTx>(getString(o, "ringPath"), getString(o, "rxWakePath"),
                                         getString(o, "txWakePath"), &link_.counters);
        shm_ = t.get();
        tx_ = std::move(t);
      } else if (transport == "fabric") {
#ifdef RDMAQ_HAVE_FABRIC
        tx_ = fabric::makeTx(o, &link_.counters);
#else
        throw RdmaqException("ERR_RDMAQ_NO_TRANSPORT", "this build has no fabric transport (native/fabric.h)");
#endif
      } else {
        throw RdmaqException("ERR_RDMAQ_ARG", "unknown transport " + transport + " (shm or fabric)");
      }
      return 0;
    });
    link_.transport = tx_->transport();
    link_.provider = tx_->provider();
    writer_ = std::make_unique<RingWriter>(tx_.get(), &link_.counters);
    link_.openSlot();
    publish(0);
    if (link_.slot) tlStatsSenders.insert(this);
    buffer_ = Napi::Persistent(
        bufferOver(env, tx_->data(), tx_->capacity(), shm_ ? &shm_->ring() : nullptr).As<Napi::Object>());
  }

  ~NativeSender() override {
    closeNow(false);
    tlStatsSenders.erase(this);
  }
  // Heartbeat: occupancy with a fresh head (one read of the consumer's line per second).
  void refreshStats() {
    if (tx_ && writer_) link_.publish(writer_->publishedTail() - tx_->head(), writer_->capacity(), 0);
  }

  RingWriter* writer() { return writer_.get(); }
  TxTransport* tx() { return tx_.get(); }
  LinkInfo& link() { return link_; }
  void ensureOpen(Napi::Env env) {
    if (!tx_) throwError(env, "ERR_RDMAQ_CLOSED", "link " + link_.linkId + " is closed");
  }

 private:
  Napi::Value Buffer(const Napi::CallbackInfo& info) {
    if (buffer_.IsEmpty()) return info.Env().Undefined();
    return buffer_.Value();
  }
  Napi::Value Capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(cap_()));
  }
  Napi::Value MaxPayload(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(maxPayloadFor(cap_())));
  }
  Napi::Value NextSeq(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), writer_ ? static_cast<double>(writer_->nextSeq()) : 0);
  }
  Napi::Value Role(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), "sender"); }
  uint64_t cap_() const { return writer_ ? writer_->capacity() : 0; }
  // Occupancy as this end knows it without touching the consumer's cache line (cached head).
  inline void publish(uint64_t now) {
    if (writer_) link_.publish(writer_->publishedTail() - writer_->knownHead(), writer_->capacity(), now);
  }

  void checkLen(Napi::Env env, uint64_t len) {
    if (len > writer_->maxPayload()) {
      throwError(env, "ERR_RDMAQ_TOO_LARGE",
                 "record of " + std::to_string(len) + " bytes does not fit a ring of " +
                     std::to_string(writer_->capacity()) + " bytes (largest payload " +
                     std::to_string(writer_->maxPayload()) + "); use a bigger ring or split the record");
    }
  }

  // A back-pressure event is the ring turning full for this sender: one count per episode, not per retry
  // (a spinning producer would otherwise count millions).
  void refused() {
    if (!full_) {
      ++link_.counters.backpressure;
      publish(0);
    }
    full_ = true;
  }

  void committed() {
    link_.counters.records += pendingRecords_;
    link_.counters.bytes += pendingBytes_;
    pendingRecords_ = pendingBytes_ = 0;
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    // One napi_get_typedarray_info call (the data pointer already includes the view's offset): this is the
    // hot path of JS senders.
    napi_typedarray_type tt;
    size_t elems = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, info[0], &tt, &elems, &data, nullptr, nullptr) != napi_ok) {
      throwError(env, "ERR_RDMAQ_ARG", "send(payload): payload must be a Uint8Array/Buffer (or another TypedArray)");
    }
    const uint64_t len = tt == napi_uint8_array ? elems : info[0].As<Napi::TypedArray>().ByteLength();
    const uint8_t* src = static_cast<const uint8_t*>(data);
    uint16_t type = kData;
    if (info.Length() > 1 && info[1].IsNumber()) type = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
    if (type != kData && type != kHeartbeat) throwError(env, "ERR_RDMAQ_ARG", "send: type must be DATA or HEARTBEAT");
    checkLen(env, len);
    const uint64_t now = nowNs();
    int64_t off = writer_->claim(len, type, now);
    if (off < 0) {
      refused();
      return Napi::Boolean::New(env, false);
    }
    full_ = false;
    if (len) std::memcpy(writer_->data() + off, src, len);
    if (type == kData) {
      ++pendingRecords_;
      pendingBytes_ += len;
    }
    if (writer_->publish()) committed();
    publish(now);
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Claim(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    uint64_t len = toU64(info[0], "claim(length)");
    checkLen(env, len);
    int64_t off = writer_->claim(len, kData, nowNs());
    if (off < 0) {
      refused();
      return Napi::Number::New(env, -1);
    }
    full_ = false;
    ++pendingRecords_;
    pendingBytes_ += len;
    lastLen_ = len;
    return Napi::Number::New(env, static_cast<double>(off));
  }

  Napi::Value SetBatchArray(const Napi::CallbackInfo& info) {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      throwError(info.Env(), "ERR_RDMAQ_ARG", "setBatchArray needs a Uint32Array");
    }
    batch_ = Napi::Persistent(info[0].As<Napi::Object>());
    return info.Env().Undefined();
  }

  Napi::Value ClaimBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    uint64_t count = toU64(info[0], "claimBatch(count)");
    uint64_t size = toU64(info[1], "claimBatch(size)");
    checkLen(env, size);
    if (batch_.IsEmpty()) throwError(env, "ERR_RDMAQ_STATE", "claimBatch: no batch array set");
    Napi::Uint32Array arr = batch_.Value().As<Napi::Uint32Array>();
    count = std::min<uint64_t>(count, arr.ElementLength());
    uint32_t* out = arr.Data();
    const uint64_t ts = nowNs();
    uint64_t n = 0;
    for (; n < count; ++n) {
      int64_t off = writer_->claim(size, kData, ts);
      if (off < 0) break;
      out[n] = static_cast<uint32_t>(off);
    }
    if (n == 0 && count > 0) refused();
    else if (n > 0) full_ = false;
    pendingRecords_ += n;
    pendingBytes_ += n * size;
    lastLen_ = size;
    return Napi::Number::New(env, static_cast<double>(n));
  }

  Napi::Value Commit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      uint64_t len = toU64(info[0], "commit(length)");
      if (!writer_->shrinkLast(len)) {
        throwError(env, "ERR_RDMAQ_ARG", "commit(length): length must not exceed the last claim (" +
                                             std::to_string(lastLen_) + " bytes) and only a single last claim can shrink");
      }
      pendingBytes_ -= lastLen_ - len;
    }
    if (writer_->publish()) committed();
    publish(0);
    return env.Undefined();
  }

  Napi::Value Writable(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    uint64_t len = toU64(info[0], "writable(length)");
    return Napi::Boolean::New(info.Env(), len <= writer_->maxPayload() && writer_->fits(len));
  }

  Napi::Value ArmWritable(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    uint64_t len = std::min<uint64_t>(toU64(info[0], "armWritable(length)"), writer_->maxPayload());
    if (writer_->fits(len)) return Napi::Boolean::New(info.Env(), false);
    return Napi::Boolean::New(info.Env(), tx_->armWritable(writer_->needHead(len)));
  }
  Napi::Value DisarmWritable(const Napi::CallbackInfo& info) {
    if (tx_) tx_->disarmWritable();
    return info.Env().Undefined();
  }

  Napi::Value Probe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    uint64_t seq = writer_->nextSeq();
    if (writer_->claim(0, kProbe, nowNs()) < 0) {
      refused();
      return Napi::Number::New(env, -1);
    }
    if (writer_->publish()) committed();
    publish(0);
    return Napi::Number::New(env, static_cast<double>(seq));
  }

  Napi::Value RecordRtt(const Napi::CallbackInfo& info) {
    link_.recordRtt(toU64(info[0], "recordRtt(ns)"));
    publish(0);
    return info.Env().Undefined();
  }

  Napi::Value Resync(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    writer_->fits(0);  // refreshes the cached head
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    uint64_t occ = 0;
    if (tx_) occ = writer_->publishedTail() - tx_->head();
    uint64_t peak = writer_ ? writer_->takePeak() : 0;
    return link_.toJs(info.Env(), occ, peak, cap_());
  }

  Napi::Value SetState(const Napi::CallbackInfo& info) {
    link_.state = info[0].As<Napi::String>().Utf8Value();
    link_.epoch = toU64(info[1], "epoch");
    link_.publishMeta();
    return info.Env().Undefined();
  }
  Napi::Value CountError(const Napi::CallbackInfo& info) {
    ++link_.counters.errors[info[0].As<Napi::String>().Utf8Value()];
    link_.publishMeta();
    return info.Env().Undefined();
  }
  Napi::Value CountReconnect(const Napi::CallbackInfo& info) {
    ++link_.counters.reconnects;
    publish(0);
    return info.Env().Undefined();
  }
  Napi::Value SetStatsPeer(const Napi::CallbackInfo& info) {
    if (link_.slot && info[0].IsString()) link_.slot->setPeer(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  }

  Napi::Value Watch(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    TxTransport* t = tx_.get();
    waker_.start(info.Env(), t->writableFd(), info[0].As<Napi::Function>(), [t] { t->drainWritable(); });
    return info.Env().Undefined();
  }
  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    waker_.stop();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    closeNow(info.Length() > 0 && info[0].ToBoolean());
    return info.Env().Undefined();
  }

  void closeNow(bool unlinkFiles) {
    waker_.stop();
    if (!tx_) return;
    publish(0);
    link_.closeSlot();
    tlStatsSenders.erase(this);
    tx_->disarmWritable();
    if (shm_) shm_->close(unlinkFiles);
    // The external Buffer still points at the mapping: replace nothing, but the JS side never touches it
    // after close (the TS Sender throws ERR_RDMAQ_CLOSED first). The mapping itself is gone, so keep the
    // transport alive until the object dies to avoid dangling pointers inside it.
    closedTx_ = std::move(tx_);
    shm_ = nullptr;
  }

  LinkInfo link_;
  std::unique_ptr<TxTransport> tx_, closedTx_;
  ShmTx* shm_ = nullptr;
  std::unique_ptr<RingWriter> writer_;
  Napi::ObjectReference buffer_;
  Napi::ObjectReference batch_;
  Waker waker_;
  uint64_t pendingRecords_ = 0, pendingBytes_ = 0, lastLen_ = 0;
  bool full_ = false;
};

// ---------------------------------------------------------------------------------------------------------

class NativeReceiver : public Napi::ObjectWrap<NativeReceiver> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Receiver",
                       {
                           InstanceAccessor<&NativeReceiver::Buffer>("buffer"),
                           InstanceAccessor<&NativeReceiver::Capacity>("capacity"),
                           InstanceAccessor<&NativeReceiver::MaxPayload>("maxPayload"),
                           InstanceAccessor<&NativeReceiver::NextSeq>("nextSeq"),
                           InstanceAccessor<&NativeReceiver::Broken>("broken"),
                           InstanceAccessor<&NativeReceiver::RingId>("ringId"),
                           InstanceAccessor<&NativeReceiver::Role>("role"),
                           InstanceMethod<&NativeReceiver::Poll>("poll"),
                           InstanceMethod<&NativeReceiver::SpinPoll>("spinPoll"),
                           InstanceMethod<&NativeReceiver::PollBatch>("pollBatch"),
                           InstanceMethod<&NativeReceiver::Release>("release"),
                           InstanceMethod<&NativeReceiver::Park>("park"),
                           InstanceMethod<&NativeReceiver::PollOrPark>("pollOrPark"),
                           InstanceMethod<&NativeReceiver::Unpark>("unpark"),
                           InstanceMethod<&NativeReceiver::SetProbeHandler>("setProbeHandler"),
                           InstanceMethod<&NativeReceiver::WakeWriter>("wakeWriter"),
                           InstanceMethod<&NativeReceiver::Stats>("stats"),
                           InstanceMethod<&NativeReceiver::SetState>("setState"),
                           InstanceMethod<&NativeReceiver::CountError>("countError"),
                           InstanceMethod<&NativeReceiver::CountReconnect>("countReconnect"),
                           InstanceMethod<&NativeReceiver::SetStatsPeer>("setStatsPeer"),
                           InstanceMethod<&NativeReceiver::Watch>("watch"),
                           InstanceMethod<&NativeReceiver::Unwatch>("unwatch"),
                           InstanceMethod<&NativeReceiver::Close>("close"),
                       });
  }

  NativeReceiver(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeReceiver>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throwError(env, "ERR_RDMAQ_ARG", "Receiver needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    std::string transport = getString(o, "transport");
    link_.linkId = getString(o, "linkId");
    link_.role = "receiver";
    guard(env, [&] {
      if (transport == "shm") {
        bool create = o.Get("create").ToBoolean();
        uint64_t cap = o.Has("capacity") && o.Get("capacity").IsNumber() ? toU64(o.Get("capacity"), "capacity") : 0;
        uint64_t resume =
            o.Has("resumeFrom") && o.Get("resumeFrom").IsNumber() ? toU64(o.Get("resumeFrom"), "resumeFrom") : 0;
        auto t = std::make_unique<ShmRx>(getString(o, "ringPath"), getString(o, "rxWakePath"),
                                         getString(o, "txWakePath"), create, cap, &link_.counters, resume);
        shm_ = t.get();
        rx_ = std::move(t);
      } else if (transport == "fabric") {
#ifdef RDMAQ_HAVE_FABRIC
        rx_ = fabric::makeRx(o, &link_.counters);
#else
        throw RdmaqException("ERR_RDMAQ_NO_TRANSPORT", "this build has no fabric transport (native/fabric.h)");
#endif
      } else {
        throw RdmaqException("ERR_RDMAQ_ARG", "unknown transport " + transport + " (shm or fabric)");
      }
      return 0;
    });
    link_.transport = rx_->transport();
    link_.provider = rx_->provider();
    reader_ = std::make_unique<RingReader>(rx_.get(), &link_.counters);
    link_.openSlot();
    // Resume: records below resumeFrom were delivered by a previous run of the application.
    uint64_t resume = o.Has("resumeFrom") && o.Get("resumeFrom").IsNumber() ? toU64(o.Get("resumeFrom"), "resumeFrom") : 0;
    if (resume > 0 && resume < reader_->nextSeq()) {
      std::string msg = "resumeFrom " + std::to_string(resume) + " asks for records the ring released already (it" +
                        " continues at sequence " + std::to_string(reader_->nextSeq()) +
                        "); the application's position is behind the ring's head";
      if (shm_) shm_->close(false);
      throwError(env, "ERR_RDMAQ_RESUME_GAP", msg);
    }
    skipBelow_ = resume;
    if (shm_) {
      char id[17];
      snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(shm_->ring().header()->ringId));
      ringId_ = id;
    }
    buffer_ = Napi::Persistent(
        bufferOver(env, const_cast<uint8_t*>(rx_->data()), rx_->capacity(), shm_ ? &shm_->ring() : nullptr)
            .As<Napi::Object>());
  }

  ~NativeReceiver() override { closeNow(false); }

  RingReader* reader() { return reader_.get(); }
  RxTransport* rx() { return rx_.get(); }
  LinkInfo& link() { return link_; }
  void ensureOpen(Napi::Env env) {
    if (!rx_) throwError(env, "ERR_RDMAQ_CLOSED", "link " + link_.linkId + " is closed");
    if (broken_) throwError(env, "ERR_RDMAQ_BAD_HEADER", reader_->error() + "; the link is broken, close it");
  }

  // Validation failure: the link is broken for good (never hand out data after a bad header).
  [[noreturn]] void fail(Napi::Env env) {
    broken_ = true;
    ++link_.counters.errors["bad_header"];
    link_.state = "down";
    link_.publishMeta();
    throwError(env, "ERR_RDMAQ_BAD_HEADER", reader_->error() + "; the link is broken, close it");
  }

 private:
  Napi::Value Buffer(const Napi::CallbackInfo& info) {
    if (buffer_.IsEmpty()) return info.Env().Undefined();
    return buffer_.Value();
  }
  Napi::Value Capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), reader_ ? static_cast<double>(reader_->capacity()) : 0);
  }
  Napi::Value MaxPayload(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), reader_ ? static_cast<double>(maxPayloadFor(reader_->capacity())) : 0);
  }
  Napi::Value NextSeq(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), reader_ ? static_cast<double>(reader_->nextSeq()) : 0);
  }
  Napi::Value Broken(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), broken_); }
  Napi::Value RingId(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ringId_); }
  Napi::Value Role(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), "receiver"); }

  // Batch end: counters and occupancy (cached tail - released head: no extra read of the producer's line).
  inline void publish(uint64_t now = 0) {
    if (reader_) link_.publish(reader_->cachedTail() - reader_->releasedHead(), reader_->capacity(), now);
  }

  // Hands out up to `limit` records; `deliver(r)` returns false to stop (handler threw). Records of other
  // types are handled here. Returns the number of DATA records delivered.
  // `clockPerRecord`: read the clock for every record (handler path: a slow handler would otherwise make
  // later records of the batch look younger than they are); pollBatch reads it once per call.
  template <typename Deliver>
  uint64_t drain(Napi::Env env, uint64_t limit, Deliver&& deliver, bool clockPerRecord = true) {
    uint64_t n = 0;
    uint64_t now = 0;
    RecordView r;
    while (n < limit) {
      RingReader::Next k = reader_->next(r);
      if (k == RingReader::kNone) break;
      if (k == RingReader::kBad) {
        reader_->release(false);
        fail(env);
      }
      if (r.type == kData) {
        if (r.seq < skipBelow_) {  // delivered by a previous run of the application
          reader_->consume(r);
          continue;
        }
        if (!now || clockPerRecord) now = nowNs();
        link_.recordQueue(now > r.ts ? now - r.ts : 0);
        if (!deliver(r)) break;
        reader_->consume(r);
        ++link_.counters.records;
        link_.counters.bytes += r.len;
        ++n;
      } else {
        reader_->consume(r);
        if (r.type == kProbe && !probe_.IsEmpty()) {
          probe_.Call({Napi::Number::New(env, static_cast<double>(r.seq))});
        }
      }
      if (closing_) break;
    }
    lastNow_ = now;
    return n;
  }

  void settleBatch() {
    if (batchOut_) {
      batchOut_ = false;
      reader_->release(false);
    }
  }

  uint64_t pollWith(const Napi::CallbackInfo& info, Napi::Function handler, uint64_t limit) {
    Napi::Env env = info.Env();
    settleBatch();
    Napi::Value buf = buffer_.Value();
    polling_ = true;
    uint64_t n = 0;
    try {
      n = drain(env, limit, [&](const RecordView& r) {
        handler.Call({buf, Napi::Number::New(env, static_cast<double>(r.offset)),
                      Napi::Number::New(env, r.len), Napi::Number::New(env, static_cast<double>(r.seq))});
        return true;
      });
    } catch (...) {
      // Handler threw: records before it are delivered (release them), it stays for the next poll.
      polling_ = false;
      if (rx_) reader_->release(false);
      if (closing_) closeNow(closeUnlink_);
      throw;
    }
    polling_ = false;
    if (closing_) {
      closeNow(closeUnlink_);
      return n;
    }
    reader_->release(false);
    if (n) publish(lastNow_);
    return n;
  }

  Napi::Value Poll(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    if (!info[0].IsFunction()) throwError(info.Env(), "ERR_RDMAQ_ARG", "poll(handler, limit): handler must be a function");
    uint64_t limit = info.Length() > 1 ? toU64(info[1], "limit") : 256;
    return Napi::Number::New(info.Env(), static_cast<double>(pollWith(info, info[0].As<Napi::Function>(), limit)));
  }

  Napi::Value SpinPoll(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    if (!info[0].IsFunction()) throwError(info.Env(), "ERR_RDMAQ_ARG", "spinPoll: handler must be a function");
    uint64_t limit = toU64(info[1], "limit");
    uint64_t spinNs = toU64(info[2], "spinNs");
    settleBatch();
    if (!spinUntilAvailable(spinNs)) return Napi::Number::New(info.Env(), 0);
    return Napi::Number::New(info.Env(), static_cast<double>(pollWith(info, info[0].As<Napi::Function>(), limit)));
  }

  // Spins on the tail until a record is published or spinNs pass. The tail's cache line stays in our cache
  // until the producer writes it, so checking on every iteration costs no traffic; one pause per check (not
  // 32: a pause is ~65 cycles on this EPYC, 32 of them added ~0.35 µs to the average detection).
  bool spinUntilAvailable(uint64_t spinNs) {
    if (reader_->available()) return true;
    if (spinNs == 0) return false;
    const uint64_t start = nowNs();
    for (uint64_t spins = 1;; ++spins) {
      cpuRelax();
      if (reader_->available()) return true;
      if ((spins & 63) == 0 && nowNs() - start >= spinNs) return false;
    }
  }

  Napi::Value PollBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throwError(env, "ERR_RDMAQ_ARG", "pollBatch(out, limit): out must be a Float64Array");
    }
    Napi::Float64Array out = info[0].As<Napi::Float64Array>();
    uint64_t limit = std::min<uint64_t>(toU64(info[1], "limit"), out.ElementLength() / 3);
    const uint64_t spinNs = info.Length() > 2 && !info[2].IsUndefined() ? toU64(info[2], "spinNs") : 0;
    settleBatch();
    if (!spinUntilAvailable(spinNs)) return Napi::Number::New(env, 0);
    double* o = out.Data();
    uint64_t n = drain(env, limit, [&](const RecordView& r) {
      o[0] = static_cast<double>(r.offset);
      o[1] = r.len;
      o[2] = static_cast<double>(r.seq);
      o += 3;
      return true;
    }, false);
    if (closing_) {
      closeNow(closeUnlink_);
      return Napi::Number::New(env, static_cast<double>(n));
    }
    if (n > 0) batchOut_ = true;  // released at the next poll / release()
    else reader_->release(false);  // skipped/probe records only
    if (n) publish(lastNow_);
    return Napi::Number::New(env, static_cast<double>(n));
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (rx_) {
      batchOut_ = false;
      reader_->release(false);
    }
    return info.Env().Undefined();
  }

  // Event strategy in one call: deliver up to `limit`; if the ring ran dry, release and park. Returns the
  // count delivered, or -(count + 1) when parked (sleep on the fd).
  Napi::Value PollOrPark(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    if (!info[0].IsFunction()) throwError(info.Env(), "ERR_RDMAQ_ARG", "pollOrPark: handler must be a function");
    uint64_t limit = toU64(info[1], "limit");
    uint64_t n = pollWith(info, info[0].As<Napi::Function>(), limit);
    if (!rx_ || n >= limit) return Napi::Number::New(info.Env(), static_cast<double>(n));
    reader_->release(true);
    if (rx_->park(reader_->head())) return Napi::Number::New(info.Env(), -static_cast<double>(n) - 1);
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  Napi::Value Park(const Napi::CallbackInfo& info) {
    ensureOpen(info.Env());
    settleBatch();
    reader_->release(true);
    return Napi::Boolean::New(info.Env(), rx_->park(reader_->head()));
  }
  Napi::Value Unpark(const Napi::CallbackInfo& info) {
    if (rx_) rx_->unpark();
    return info.Env().Undefined();
  }

  Napi::Value SetProbeHandler(const Napi::CallbackInfo& info) {
    probe_ = Napi::Persistent(info[0].As<Napi::Function>());
    return info.Env().Undefined();
  }
  Napi::Value WakeWriter(const Napi::CallbackInfo& info) {
    if (shm_) shm_->wakeWriter();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    uint64_t occ = 0, peak = 0;
    if (rx_ && !broken_) {
      reader_->refresh();
      occ = reader_->cachedTail() - reader_->releasedHead();
      peak = reader_->takePeak();
    }
    return link_.toJs(info.Env(), occ, peak, reader_ ? reader_->capacity() : 0);
  }
  Napi::Value SetState(const Napi::CallbackInfo& info) {
    link_.state = info[0].As<Napi::String>().Utf8Value();
    link_.epoch = toU64(info[1], "epoch");
    link_.publishMeta();
    return info.Env().Undefined();
  }
  Napi::Value CountError(const Napi::CallbackInfo& info) {
    ++link_.counters.errors[info[0].As<Napi::String>().Utf8Value()];
    link_.publishMeta();
    return info.Env().Undefined();
  }
  Napi::Value CountReconnect(const Napi::CallbackInfo& info) {
    ++link_.counters.reconnects;
    publish(0);
    return info.Env().Undefined();
  }
  Napi::Value SetStatsPeer(const Napi::CallbackInfo& info) {
    if (link_.slot && info[0].IsString()) link_.slot->setPeer(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  }

  Napi::Value Watch(const Napi::CallbackInfo& info) {
    if (!rx_) throwError(info.Env(), "ERR_RDMAQ_CLOSED", "link " + link_.linkId + " is closed");
    RxTransport* t = rx_.get();
    // Woken = no longer parked: unpark here, before JS runs, so the producer stops signalling at once.
    waker_.start(info.Env(), t->readableFd(), info[0].As<Napi::Function>(), [t] {
      t->drainReadable();
      t->unpark();
    });
    return info.Env().Undefined();
  }
  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    waker_.stop();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    bool unlinkFiles = info.Length() > 0 && info[0].ToBoolean();
    if (polling_) {  // called from inside a handler: finish after the poll loop unwinds
      closing_ = true;
      closeUnlink_ = unlinkFiles;
      return info.Env().Undefined();
    }
    closeNow(unlinkFiles);
    return info.Env().Undefined();
  }

  void closeNow(bool unlinkFiles) {
    waker_.stop();
    closing_ = false;
    if (!rx_) return;
    if (!broken_) {
      batchOut_ = false;
      reader_->release(false);
    }
    publish();
    link_.closeSlot();
    rx_->unpark();
    if (shm_) shm_->close(unlinkFiles);
    closedRx_ = std::move(rx_);
    shm_ = nullptr;
  }

  LinkInfo link_;
  std::unique_ptr<RxTransport> rx_, closedRx_;
  ShmRx* shm_ = nullptr;
  std::unique_ptr<RingReader> reader_;
  Napi::ObjectReference buffer_;
  Napi::FunctionReference probe_;
  Waker waker_;
  uint64_t skipBelow_ = 0;
  std::string ringId_;
  uint64_t lastNow_ = 0;
  bool batchOut_ = false, broken_ = false, polling_ = false, closing_ = false, closeUnlink_ = false;
};

// ---------------------------------------------------------------------------------------------------------
// Resend after a reconnect onto a fresh ring: the unacknowledged records of the old ring (between the head
// its receiver released and the tail we published) with sequence >= fromSeq are copied into the new ring.
// They keep their sequences when the new ring starts at fromSeq (a receiver that keeps its position);
// otherwise they are renumbered in order. Returns {resent, dropped}; dropped = did not fit the new ring.
Napi::Value Resend(const Napi::CallbackInfo& info);

// ---------------------------------------------------------------------------------------------------------
// Helpers: histogram twin, clock, checksums, memcpy bandwidth, ring files.

Napi::Value BucketOf(const Napi::CallbackInfo& info) {
  double v = info[0].As<Napi::Number>().DoubleValue();
  if (!(v >= 0)) throwError(info.Env(), "ERR_RDMAQ_ARG", "bucketOf: value must be >= 0");
  uint64_t u = v >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(v);
  return Napi::Number::New(info.Env(), Histogram::bucketOf(u));
}

Napi::Value NowNs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(nowNs()));
}

const uint8_t* viewOf(const Napi::CallbackInfo& info, uint64_t& len) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throwError(env, "ERR_RDMAQ_ARG", "expected a Uint8Array/Buffer");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  uint64_t off = toU64(info[1], "offset");
  len = toU64(info[2], "length");
  if (off + len > ta.ByteLength()) throwError(env, "ERR_RDMAQ_ARG", "offset + length beyond the buffer");
  return static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset() + off;
}

// 64-bit hash in the style of xxh64 (4 lanes, ~10 GB/s): fast enough to checksum gigabytes in a test.
constexpr uint64_t P1 = 11400714785074694791ull, P2 = 14029467366897019727ull, P3 = 1609587929392839161ull;
inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t round64(uint64_t acc, uint64_t w) { return rotl(acc + w * P2, 31) * P1; }
uint64_t hash64(const uint8_t* p, uint64_t len, uint64_t seed) {
  uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1;
  uint64_t i = 0;
  for (; i + 32 <= len; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    a = round64(a, w[0]);
    b = round64(b, w[1]);
    c = round64(c, w[2]);
    d = round64(d, w[3]);
  }
  uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + len;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = rotl(h ^ round64(0, w), 27) * P1 + P3;
  }
  for (; i < len; ++i) h = rotl(h ^ (p[i] * P1), 11) * P2;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  return h;
}

Napi::Value Checksum(const Napi::CallbackInfo& info) {
  uint64_t len;
  const uint8_t* p = viewOf(info, len);
  // 53 bits: exact as a JS number.
  return Napi::Number::New(info.Env(), static_cast<double>(hash64(p, len, 0) >> 11));
}

Napi::Value Checksum32(const Napi::CallbackInfo& info) {
  uint64_t len;
  const uint8_t* p = viewOf(info, len);
  return Napi::Number::New(info.Env(), static_cast<uint32_t>(hash64(p, len, 0)));
}

// Test payloads: [u64 checksum of the rest][pattern from seed]; short records are pattern only.
inline void patternFill(uint8_t* p, uint64_t len, uint64_t seed) {
  // Additive pattern: no dependency chain beyond one add, so the compiler vectorises it (tens of GB/s).
  const uint64_t base = (seed + 1) * P1;
  uint64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t x = base + i * P3;
    std::memcpy(p + i, &x, 8);
  }
  const uint64_t x = base + i * P3;
  for (uint64_t k = 0; i < len; ++i, ++k) p[i] = static_cast<uint8_t>(x >> (8 * k));
}

Napi::Value TestSeal(const Napi::CallbackInfo& info) {
  uint64_t len;
  uint8_t* p = const_cast<uint8_t*>(viewOf(info, len));
  uint64_t seed = toU64(info[3], "seed");
  if (len < 8) {
    patternFill(p, len, seed);
  } else {
    patternFill(p + 8, len - 8, seed);
    uint64_t h = hash64(p + 8, len - 8, seed);
    std::memcpy(p, &h, 8);
  }
  return info.Env().Undefined();
}

Napi::Value TestCheck(const Napi::CallbackInfo& info) {
  uint64_t len;
  const uint8_t* p = viewOf(info, len);
  uint64_t seed = toU64(info[3], "seed");
  if (len < 8) {
    uint8_t want[8];
    patternFill(want, len, seed);
    return Napi::Boolean::New(info.Env(), std::memcmp(want, p, len) == 0);
  }
  uint64_t h;
  std::memcpy(&h, p, 8);
  return Napi::Boolean::New(info.Env(), h == hash64(p + 8, len - 8, seed));
}

// memcpy bandwidth: `size`-byte copies from one source into destinations rotating over `span` bytes (the
// ring's capacity), for about `ms` milliseconds — the physical limit of the bw case. GB/s (1e9 bytes/s).
Napi::Value MemcpyBandwidth(const Napi::CallbackInfo& info) {
  uint64_t size = toU64(info[0], "size");
  uint64_t ms = toU64(info[1], "ms");
  uint64_t span = info.Length() > 2 ? toU64(info[2], "span") : (4u << 20);
  if (size == 0 || size > span) throwError(info.Env(), "ERR_RDMAQ_ARG", "memcpyBandwidth: 0 < size <= span");
  std::vector<uint8_t> src(size, 1), dst(span + size);
  uint64_t slots = span / size, copied = 0, i = 0;
  const uint64_t start = nowNs(), end = start + ms * 1000000ull;
  uint64_t now = start;
  while (now < end) {
    for (int k = 0; k < 64; ++k) {
      std::memcpy(dst.data() + (i++ % slots) * size, src.data(), size);
      copied += size;
    }
    asm volatile("" : : "r"(dst.data()) : "memory");
    now = nowNs();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(copied) / static_cast<double>(now - start));
}

Napi::Value SweepStale(const Napi::CallbackInfo& info) {
  auto removed = ShmRing::sweep(info[0].As<Napi::String>().Utf8Value());
  Napi::Array a = Napi::Array::New(info.Env(), removed.size());
  for (uint32_t i = 0; i < removed.size(); ++i) a.Set(i, removed[i]);
  return a;
}

Napi::Value InspectRing(const Napi::CallbackInfo& info) {
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

Napi::Value Resend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativeSender* from = NativeSender::Unwrap(info[0].As<Napi::Object>());
  NativeSender* to = NativeSender::Unwrap(info[1].As<Napi::Object>());
  from->ensureOpen(env);
  to->ensureOpen(env);
  const uint64_t fromSeq = toU64(info[2], "fromSeq");
  RingWriter* ow = from->writer();
  RingWriter* nw = to->writer();
  const uint8_t* data = ow->data();
  const uint64_t cap = ow->capacity(), mask = cap - 1;
  uint64_t pos = from->tx()->head();  // what the old receiver released
  const uint64_t end = ow->publishedTail();
  uint64_t resent = 0, dropped = 0;
  if (end - pos > cap) pos = end;  // nothing trustworthy
  while (pos < end) {
    const uint64_t idx = pos & mask, toEnd = cap - idx;
    if (toEnd < kHeaderSize) {
      pos += toEnd;
      continue;
    }
    RecordHeader h;
    std::memcpy(&h, data + idx, kHeaderSize);
    if (h.type == kPadding) {
      pos += toEnd;
      continue;
    }
    const uint64_t rs = recordSize(h.len);
    if (rs > toEnd || pos + rs > end) break;  // our own ring, but never trust it blindly
    if (h.type == kData && h.seq >= fromSeq) {
      int64_t off = nw->claim(h.len, kData, h.ts);
      if (off < 0) {
        ++dropped;
      } else {
        std::memcpy(nw->data() + off, data + idx + kHeaderSize, h.len);
        ++resent;
      }
    }
    pos += rs;
  }
  nw->publish();
  to->link().counters.resends += resent;
  if (dropped) to->link().counters.errors["resend_overflow"] += dropped;
  Napi::Object o = Napi::Object::New(env);
  o.Set("resent", static_cast<double>(resent));
  o.Set("dropped", static_cast<double>(dropped));
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// Engine loops (rdmaq-perf --engine): the same ring code, driven from C++ without crossing N-API per record.

Napi::Object engineResult(Napi::Env env, const Histogram& h, uint64_t elapsed, uint64_t bytes) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("buckets", LinkInfo::sparseToJs(env, h));
  o.Set("count", static_cast<double>(h.count()));
  o.Set("minNs", static_cast<double>(h.min()));
  o.Set("maxNs", static_cast<double>(h.max()));
  o.Set("elapsedNs", static_cast<double>(elapsed));
  o.Set("bytes", static_cast<double>(bytes));
  return o;
}

NativeSender* senderArg(const Napi::Value& v) {
  NativeSender* s = NativeSender::Unwrap(v.As<Napi::Object>());
  s->ensureOpen(v.Env());
  return s;
}
NativeReceiver* receiverArg(const Napi::Value& v) {
  NativeReceiver* r = NativeReceiver::Unwrap(v.As<Napi::Object>());
  r->ensureOpen(v.Env());
  return r;
}

// Waits for the next DATA record (spinning); other record types are consumed on the way.
bool engineNext(Napi::Env env, NativeReceiver* rx, RecordView& r, uint64_t deadline) {
  RingReader* rd = rx->reader();
  uint64_t spins = 0;
  for (;;) {
    RingReader::Next k = rd->next(r);
    if (k == RingReader::kRecord) {
      if (r.type == kData) return true;
      rd->consume(r);
      continue;
    }
    if (k == RingReader::kBad) rx->fail(env);
    cpuRelax();
    if ((++spins & 0xffff) == 0 && nowNs() > deadline) return false;
  }
}

int64_t engineClaim(NativeSender* tx, uint64_t len, uint64_t ts) {
  RingWriter* w = tx->writer();
  int64_t off;
  while ((off = w->claim(len, kData, ts)) < 0) {
    w->publish();
    tx->tx()->progress();
    cpuRelax();
  }
  return off;
}

Napi::Value EngineLatPing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativeSender* tx = senderArg(info[0]);
  NativeReceiver* rx = receiverArg(info[1]);
  uint64_t size = toU64(info[2], "size"), iters = toU64(info[3], "iters"), warm = toU64(info[4], "warmup");
  std::vector<uint8_t> payload(size, 0x5a);
  Histogram h;
  RecordView r;
  const uint64_t t0 = nowNs();
  for (uint64_t i = 0; i < warm + iters; ++i) {
    const uint64_t s = nowNs();
    int64_t off = engineClaim(tx, size, s);
    std::memcpy(tx->writer()->data() + off, payload.data(), size);
    tx->writer()->publish();
    if (!engineNext(env, rx, r, s + 10'000'000'000ull)) throwError(env, "ERR_RDMAQ_TIMEOUT", "engine: no echo within 10 s");
    rx->reader()->consume(r);
    rx->reader()->release(false);
    const uint64_t e = nowNs();
    if (i >= warm) h.record((e - s) / 2);
  }
  return engineResult(env, h, nowNs() - t0, iters * size);
}

Napi::Value EngineLatPong(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativeSender* tx = senderArg(info[0]);
  NativeReceiver* rx = receiverArg(info[1]);
  uint64_t iters = toU64(info[2], "iters");
  Histogram h;
  RecordView r;
  const uint64_t t0 = nowNs();
  for (uint64_t i = 0; i < iters; ++i) {
    if (!engineNext(env, rx, r, nowNs() + 10'000'000'000ull)) throwError(env, "ERR_RDMAQ_TIMEOUT", "engine: no ping within 10 s");
    int64_t off = engineClaim(tx, r.len, r.ts);
    std::memcpy(tx->writer()->data() + off, rx->rx()->data() + r.offset, r.len);
    rx->reader()->consume(r);
    rx->reader()->release(false);
    tx->writer()->publish();
  }
  return engineResult(env, h, nowNs() - t0, 0);
}

Napi::Value EngineBwSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativeSender* tx = senderArg(info[0]);
  uint64_t size = toU64(info[1], "size"), iters = toU64(info[2], "iters");
  std::vector<uint8_t> payload(size, 0xa5);
  RingWriter* w = tx->writer();
  // Publish every 64 records or every quarter ring, whichever comes first, so the consumer works on one
  // part of the ring while the producer fills the next (with 64 KiB records the ring holds only 63).
  const uint64_t every = std::max<uint64_t>(1, std::min<uint64_t>(64, w->capacity() / 4 / recordSize(size)));
  const uint64_t t0 = nowNs();
  uint64_t ts = t0;
  for (uint64_t i = 0; i < iters; ++i) {
    if (i % every == 0) {
      w->publish();
      ts = nowNs();
    }
    int64_t off = engineClaim(tx, size, ts);
    std::memcpy(w->data() + off, payload.data(), size);
  }
  w->publish();
  tx->link().counters.records += iters;
  tx->link().counters.bytes += iters * size;
  Histogram h;
  return engineResult(env, h, nowNs() - t0, iters * size);
}

Napi::Value EngineBwRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativeReceiver* rx = receiverArg(info[0]);
  uint64_t iters = toU64(info[1], "iters");
  RingReader* rd = rx->reader();
  Histogram h;
  RecordView r;
  uint64_t t0 = 0, bytes = 0;
  for (uint64_t i = 0; i < iters; ++i) {
    if (!rd->available()) rd->release(false);  // return credit before spinning
    if (!engineNext(env, rx, r, nowNs() + 10'000'000'000ull)) throwError(env, "ERR_RDMAQ_TIMEOUT", "engine: stream stalled for 10 s");
    if (i == 0) t0 = nowNs();
    if ((i & 63) == 0) {  // queue latency on every 64th record: a clock read per record would cost ~10 %
      const uint64_t now = nowNs();
      rx->link().queue.record(now > r.ts ? now - r.ts : 0);
    }
    bytes += r.len;
    rd->consume(r);
    if (rd->head() - rd->releasedHead() >= rd->capacity() / 4 || (i & 63) == 63) rd->release(false);
  }
  rd->release(false);
  const uint64_t e = nowNs();
  rx->link().counters.records += iters;
  rx->link().counters.bytes += bytes;
  return engineResult(env, h, e - t0, bytes);
}

// ---------------------------------------------------------------------------------------------------------

// Lists the libfabric providers fi_getinfo offers on this host, without hints (what `fi_info -l` shows).
Napi::Value Providers(const Napi::CallbackInfo& info) {
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

Napi::Value FabricVersion(const Napi::CallbackInfo& info) {
  uint32_t v = fi_version();
  return Napi::String::New(info.Env(), std::to_string(FI_MAJOR(v)) + "." + std::to_string(FI_MINOR(v)));
}

// ---- statistics file (native/stats_file.h) ------------------------------------------------------------

static_assert(stats::kBuckets == Histogram::kBuckets, "the statistics file carries the histogram layout");

Napi::Value StatsSetAppName(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throwError(info.Env(), "ERR_RDMAQ_ARG", "setAppName(name): name must be a string");
  stats::File::instance().setAppName(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}
Napi::Value StatsInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  stats::File& f = stats::File::instance();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", f.enabled());
  o.Set("path", f.path());
  o.Set("error", f.error());
  o.Set("app", f.appName());
  return o;
}
Napi::Value StatsSetFlags(const Napi::CallbackInfo& info) {
  stats::File::instance().setFlags(static_cast<uint32_t>(toU64(info[0], "flags")));
  return info.Env().Undefined();
}
Napi::Value StatsHeartbeat(const Napi::CallbackInfo& info) {
  stats::File::instance().heartbeat();
  for (NativeSender* s : tlStatsSenders) s->refreshStats();
  return info.Env().Undefined();
}

// Read-only mapping of another process's statistics file; snapshot() copies it consistently (seqlock per
// slot, SIGBUS-guarded) into a compact Buffer that src/stats-file.ts validates and parses.
class StatsMap : public Napi::ObjectWrap<StatsMap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "StatsMap",
                       {InstanceMethod<&StatsMap::Snapshot>("snapshot"), InstanceMethod<&StatsMap::SnapshotDelta>("snapshotDelta"),
                        InstanceMethod<&StatsMap::SnapshotDeltaInto>("snapshotDeltaInto"),
                        InstanceMethod<&StatsMap::PendingInto>("pendingInto"),
                        InstanceMethod<&StatsMap::Forget>("forget"),
                        InstanceMethod<&StatsMap::Close>("close"),
                        InstanceAccessor<&StatsMap::Size>("size"), InstanceAccessor<&StatsMap::Ino>("ino")});
  }
  StatsMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StatsMap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throwError(env, "ERR_RDMAQ_ARG", "StatsMap(path): path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
      const int e = errno;
      throwError(env, "ERR_RDMAQ_STATS_FILE", "cannot open " + path + ": " + strerror(e), e);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      throwError(env, "ERR_RDMAQ_STATS_FILE", path + " is not a regular file");
    }
    const uint64_t maxSize = stats::kHeaderSize + uint64_t{stats::kMaxSlots} * (stats::kMetaSize + stats::kSlotHistSize);
    if (static_cast<uint64_t>(st.st_size) > maxSize) {
      close(fd);
      throwError(env, "ERR_RDMAQ_STATS_FILE", path + " is " + std::to_string(st.st_size) +
                                                   " bytes, larger than any statistics file (" +
                                                   std::to_string(maxSize) + ")");
    }
    size_ = static_cast<size_t>(st.st_size);
    ino_ = static_cast<uint64_t>(st.st_ino);
    if (size_ > 0) {
      void* p = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        close(fd);
        throwError(env, "ERR_RDMAQ_STATS_FILE", "cannot map " + path + ": " + strerror(e), e);
      }
      base_ = static_cast<const uint8_t*>(p);
    }
    close(fd);
  }
  ~StatsMap() override { unmap(); }

 private:
  void unmap() {
    if (base_) munmap(const_cast<uint8_t*>(base_), size_);
    base_ = nullptr;
  }
  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!base_ && size_ > 0) throwError(env, "ERR_RDMAQ_CLOSED", "statistics mapping is closed");
    std::string why = stats::snapshot(base_, size_, out_);
    if (!why.empty()) throwError(env, "ERR_RDMAQ_STATS_FILE", why);
    return Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size());
  }
  // Incremental: only the slots that changed since the previous snapshotDelta() (stats_file.h snapshotDelta).
  Napi::Value SnapshotDelta(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!base_ && size_ > 0) throwError(env, "ERR_RDMAQ_CLOSED", "statistics mapping is closed");
    std::string why = stats::snapshotDelta(base_, size_, out_, memo_);
    if (!why.empty()) throwError(env, "ERR_RDMAQ_STATS_FILE", why);
    return Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size());
  }
  // The same into the caller's Buffer (no allocation per file per scan): returns the length, or -length when
  // the Buffer is too small (the snapshot is kept: pendingInto(bigger) copies it).
  Napi::Value SnapshotDeltaInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!base_ && size_ > 0) throwError(env, "ERR_RDMAQ_CLOSED", "statistics mapping is closed");
    if (!info[0].IsBuffer()) throwError(env, "ERR_RDMAQ_ARG", "snapshotDeltaInto(buffer)");
    std::string why = stats::snapshotDelta(base_, size_, out_, memo_);
    if (!why.empty()) throwError(env, "ERR_RDMAQ_STATS_FILE", why);
    return PendingInto(info);
  }
  // The reader could not use slot i's last delta (a bad field): the next snapshotDelta() sends it whole.
  Napi::Value Forget(const Napi::CallbackInfo& info) {
    const uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    if (i < memo_.size()) memo_[i] = stats::SlotMemo();
    return info.Env().Undefined();
  }
  Napi::Value PendingInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsBuffer()) throwError(env, "ERR_RDMAQ_ARG", "pendingInto(buffer)");
    auto b = info[0].As<Napi::Buffer<uint8_t>>();
    if (b.Length() < out_.size()) return Napi::Number::New(env, -static_cast<double>(out_.size()));
    std::memcpy(b.Data(), out_.data(), out_.size());
    return Napi::Number::New(env, static_cast<double>(out_.size()));
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    unmap();
    size_ = 0;
    return info.Env().Undefined();
  }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(size_)); }
  Napi::Value Ino(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(ino_)); }

  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint64_t ino_ = 0;
  std::vector<uint8_t> out_;
  std::vector<stats::SlotMemo> memo_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("statsSetAppName", Napi::Function::New(env, StatsSetAppName, "statsSetAppName"));
  exports.Set("statsInfo", Napi::Function::New(env, StatsInfo, "statsInfo"));
  exports.Set("statsHeartbeat", Napi::Function::New(env, StatsHeartbeat, "statsHeartbeat"));
  exports.Set("statsSetFlags", Napi::Function::New(env, StatsSetFlags, "statsSetFlags"));
  exports.Set("StatsMap", StatsMap::Define(env));
  exports.Set("providers", Napi::Function::New(env, Providers, "providers"));
  exports.Set("fabricVersion", Napi::Function::New(env, FabricVersion, "fabricVersion"));
  exports.Set("Sender", NativeSender::Define(env));
  exports.Set("Receiver", NativeReceiver::Define(env));
  exports.Set("bucketOf", Napi::Function::New(env, BucketOf, "bucketOf"));
  exports.Set("nowNs", Napi::Function::New(env, NowNs, "nowNs"));
  exports.Set("checksum", Napi::Function::New(env, Checksum, "checksum"));
  exports.Set("checksum32", Napi::Function::New(env, Checksum32, "checksum32"));
  exports.Set("testSeal", Napi::Function::New(env, TestSeal, "testSeal"));
  exports.Set("testCheck", Napi::Function::New(env, TestCheck, "testCheck"));
  exports.Set("memcpyBandwidth", Napi::Function::New(env, MemcpyBandwidth, "memcpyBandwidth"));
  exports.Set("sweepStale", Napi::Function::New(env, SweepStale, "sweepStale"));
  exports.Set("resend", Napi::Function::New(env, Resend, "resend"));
  exports.Set("inspectRing", Napi::Function::New(env, InspectRing, "inspectRing"));
  exports.Set("engineLatPing", Napi::Function::New(env, EngineLatPing, "engineLatPing"));
  exports.Set("engineLatPong", Napi::Function::New(env, EngineLatPong, "engineLatPong"));
  exports.Set("engineBwSend", Napi::Function::New(env, EngineBwSend, "engineBwSend"));
  exports.Set("engineBwRecv", Napi::Function::New(env, EngineBwRecv, "engineBwRecv"));
#ifdef RDMAQ_HAVE_FABRIC
  fabric::Init(env, exports);
#endif
#ifdef RDMAQ_HAVE_FABRIC_NAPI
  rdmaq_fabric::Register(env, exports);
#endif
  return exports;
}

}  // namespace
}  // namespace rdmaq

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rdmaq::Init(env, exports); }
NODE_API_MODULE(rdmaq, InitModule)

// Benchmark support, not part of the queue: the loops behind rdmaq-perf --engine (shm and fabric), which drive
// the same ring code from C++ without an N-API crossing per record, and the memcpy bandwidth that bounds the bw
// case. Exported on the addon for src/perf and src/fabric/perf.ts.
#include "bench.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "fabric_receiver_napi.h"
#include "fabric_sender_napi.h"
#include "histogram.h"
#include "js_args.h"
#include "js_error.h"
#include "link_info.h"
#include "receiver_napi.h"
#include "record.h"
#include "ring.h"
#include "sender_napi.h"

namespace rdmaq::bench {

// memcpy bandwidth: `size`-byte copies from one source into destinations rotating over `span` bytes (the
// ring's capacity), for about `ms` milliseconds — the physical limit of the bw case. GB/s (1e9 bytes/s).
Napi::Value MemcpyBandwidth(const Napi::CallbackInfo& info) {
  uint64_t size = toU64(info[0], "size");
  uint64_t ms = toU64(info[1], "ms");
  uint64_t span = info.Length() > 2 ? toU64(info[2], "span") : (4u << 20);
  if (size == 0 || size > span) throwError(info.Env(), "ERR_RDMAQ_ARG", "memcpyBandwidth: 0 < size <= span");
  std::vector<uint8_t> src(size, 1), dst(span + size);
  uint64_t slots = span / size, copied = 0, i = 0;
  const uint64_t start = monotonicNs(), end = start + ms * 1000000ull;
  uint64_t now = start;
  while (now < end) {
    for (int k = 0; k < 64; ++k) {
      std::memcpy(dst.data() + (i++ % slots) * size, src.data(), size);
      copied += size;
    }
    asm volatile("" : : "r"(dst.data()) : "memory");
    now = monotonicNs();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(copied) / static_cast<double>(now - start));
}

// ---- shm engine loops (rdmaq-perf --engine): the same ring code, driven from C++ without crossing N-API per
// record. They run inside one native call on the main thread of the benchmark process.

static Napi::Object engineResult(Napi::Env env, const Histogram& h, uint64_t elapsed, uint64_t bytes) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("buckets", LinkInfo::sparseToJs(env, h));
  o.Set("count", static_cast<double>(h.count()));
  o.Set("minNs", static_cast<double>(h.min()));
  o.Set("maxNs", static_cast<double>(h.max()));
  o.Set("elapsedNs", static_cast<double>(elapsed));
  o.Set("bytes", static_cast<double>(bytes));
  return o;
}

static NativeSender* senderArg(const Napi::Value& v) {
  NativeSender* s = NativeSender::Unwrap(v.As<Napi::Object>());
  s->ensureOpen(v.Env());
  return s;
}
static NativeReceiver* receiverArg(const Napi::Value& v) {
  NativeReceiver* r = NativeReceiver::Unwrap(v.As<Napi::Object>());
  r->ensureOpen(v.Env());
  return r;
}

// Waits for the next DATA record (spinning); other record types are consumed on the way.
static bool engineNext(Napi::Env env, NativeReceiver* rx, RecordView& r, uint64_t deadline) {
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
    if ((++spins & 0xffff) == 0 && monotonicNs() > deadline) return false;
  }
}

static int64_t engineClaim(NativeSender* tx, uint64_t len, uint64_t ts) {
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
  const uint64_t t0 = monotonicNs();
  for (uint64_t i = 0; i < warm + iters; ++i) {
    const uint64_t s = monotonicNs();
    int64_t off = engineClaim(tx, size, s);
    std::memcpy(tx->writer()->data() + off, payload.data(), size);
    tx->writer()->publish();
    if (!engineNext(env, rx, r, s + 10'000'000'000ull)) throwError(env, "ERR_RDMAQ_TIMEOUT", "engine: no echo within 10 s");
    rx->reader()->consume(r);
    rx->reader()->release(false);
    const uint64_t e = monotonicNs();
    if (i >= warm) h.record((e - s) / 2);
  }
  return engineResult(env, h, monotonicNs() - t0, iters * size);
}

Napi::Value EngineLatPong(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativeSender* tx = senderArg(info[0]);
  NativeReceiver* rx = receiverArg(info[1]);
  uint64_t iters = toU64(info[2], "iters");
  Histogram h;
  RecordView r;
  const uint64_t t0 = monotonicNs();
  for (uint64_t i = 0; i < iters; ++i) {
    if (!engineNext(env, rx, r, monotonicNs() + 10'000'000'000ull)) throwError(env, "ERR_RDMAQ_TIMEOUT", "engine: no ping within 10 s");
    int64_t off = engineClaim(tx, r.len, r.ts);
    std::memcpy(tx->writer()->data() + off, rx->rx()->data() + r.offset, r.len);
    rx->reader()->consume(r);
    rx->reader()->release(false);
    tx->writer()->publish();
  }
  return engineResult(env, h, monotonicNs() - t0, 0);
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
  const uint64_t t0 = monotonicNs();
  uint64_t ts = t0;
  for (uint64_t i = 0; i < iters; ++i) {
    if (i % every == 0) {
      w->publish();
      ts = monotonicNs();
    }
    int64_t off = engineClaim(tx, size, ts);
    std::memcpy(w->data() + off, payload.data(), size);
  }
  w->publish();
  tx->link().counters.records += iters;
  tx->link().counters.bytes += iters * size;
  Histogram h;
  return engineResult(env, h, monotonicNs() - t0, iters * size);
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
    if (!engineNext(env, rx, r, monotonicNs() + 10'000'000'000ull)) throwError(env, "ERR_RDMAQ_TIMEOUT", "engine: stream stalled for 10 s");
    if (i == 0) t0 = monotonicNs();
    if ((i & 63) == 0) {  // queue latency on every 64th record: a clock read per record would cost ~10 %
      const uint64_t now = monotonicNs();
      rx->link().queue.record(now > r.ts ? now - r.ts : 0);
    }
    bytes += r.len;
    rd->consume(r);
    if (rd->head() - rd->releasedHead() >= rd->capacity() / 4 || (i & 63) == 63) rd->release(false);
  }
  rd->release(false);
  const uint64_t e = monotonicNs();
  rx->link().counters.records += iters;
  rx->link().counters.bytes += bytes;
  return engineResult(env, h, e - t0, bytes);
}

}  // namespace rdmaq::bench

namespace rdmaq::fabric::bench {

// ---- fabric engine loops (rdmaq-perf --engine over fabric): the busy-spin loops of src/fabric/perf.ts driven
// from C++ — the same cores and calls, without an N-API crossing per record. Each call runs a bounded chunk and
// returns, so the event loop (the control connection's heartbeats, which are the liveness signal) runs between
// chunks.

static SenderCore& EngineSender(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsObject()) ArgError(info.Env(), "sender must be a FabricSenderNative");
  return FabricSenderNative::Unwrap(info[i].As<Napi::Object>())->core();
}
static ReceiverCore& EngineReceiver(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsObject()) ArgError(info.Env(), "receiver must be a FabricReceiverNative");
  return FabricReceiverNative::Unwrap(info[i].As<Napi::Object>())->core();
}
// Optional Float64Array argument (null/undefined: no samples).
static double* EngineSamples(const Napi::CallbackInfo& info, size_t i, size_t* len) {
  *len = 0;
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ArgError(info.Env(), "samples must be a Float64Array");
  Napi::Float64Array a = info[i].As<Napi::Float64Array>();
  *len = a.ElementLength();
  return a.Data();
}
static void EngineCheck(Napi::Env env, SenderCore& tx) {
  if (tx.failed()) throw toJs(env, tx.error());
}
static void EngineCheck(Napi::Env env, ReceiverCore& rx) {
  if (rx.failed()) throw toJs(env, rx.error());
}
[[noreturn]] static void EngineTimeout(Napi::Env env, const std::string& what) {
  throwError(env, "ERR_RDMAQ_TIMEOUT", "engine: " + what);
}
static constexpr uint64_t kEngineStallNs = 10'000'000'000ull;

// Spins until one record is delivered (DATA returned; other types are consumed on the way) or `wait_ns`
// passes (false). Our own write completions are reaped every 64 spins, as the JS loop does: each CQ read
// drives the provider's progress, i.e. syscalls.
static bool EngineNext(Napi::Env env, SenderCore& tx, ReceiverCore& rx, std::vector<Delivered>& out,
                       uint64_t wait_ns) {
  const uint64_t start = wallNs();
  for (uint64_t k = 1;; ++k) {
    if (rx.Poll(1, out)) {
      if (out[0].type == kData) return true;
      rx.Release(1, out, false);
      continue;
    }
    EngineCheck(env, rx);
    if ((k & 63) == 0) {
      if (!tx.Progress(true)) EngineCheck(env, tx);
      if (wallNs() - start > wait_ns) return false;
    }
  }
}

static void EngineSend(Napi::Env env, SenderCore& tx, const uint8_t* data, uint32_t len) {
  const uint64_t start = wallNs();
  while (!tx.Send(data, len)) {
    if (!tx.Progress(false)) EngineCheck(env, tx);
    if (wallNs() - start > kEngineStallNs) EngineTimeout(env, "no credit from the receiver for 10 s");
  }
}

// fabricEngineLatPing(tx, rx, size, count, samples, offset) → count. Sends `count` records of `size` bytes,
// each after the previous echo; one-way ns (round trip / 2) of round trip i go to samples[offset + i] when
// that index is in range (a negative offset skips warm-up trips).
static Napi::Value FabricEngineLatPingImpl(const Napi::CallbackInfo& info) {
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
    const uint64_t s = wallNs();
    EngineSend(env, tx, payload.data(), uint32_t(size));
    if (!tx.Progress(true)) EngineCheck(env, tx);
    if (!EngineNext(env, tx, rx, out, kEngineStallNs)) EngineTimeout(env, "no echo within 10 s");
    rx.Release(1, out, false);
    const uint64_t e = wallNs();
    const int64_t at = offset + int64_t(i);
    if (samples && at >= 0 && uint64_t(at) < nsamples) samples[at] = double(e - s) / 2;
  }
  return Napi::Number::New(env, double(count));
}

// fabricEngineLatPong(tx, rx, count, waitMs) → echoed. Echoes up to `count` records (same length); returns
// early when nothing arrived for waitMs, so the caller can let the event loop run.
static Napi::Value FabricEngineLatPongImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SenderCore& tx = EngineSender(info, 0);
  ReceiverCore& rx = EngineReceiver(info, 1);
  const uint64_t count = ArgU64(info, 2, "count"), wait_ms = ArgU64(info, 3, "waitMs");
  std::vector<Delivered> out;
  uint64_t done = 0;
  while (done < count && EngineNext(env, tx, rx, out, wait_ms * 1'000'000ull)) {
    // Copy out of the ring before releasing it: credit lets the sender reuse those bytes.
    EngineSend(env, tx, rx.ring() + out[0].offset, out[0].len);
    if (!tx.Progress(true)) EngineCheck(env, tx);
    rx.Release(1, out, false);
    ++done;
  }
  return Napi::Number::New(env, double(done));
}

// fabricEngineBwSend(tx, size, count) → count. Appends `count` records as fast as credit allows, posting
// every 32 records (a write each: one syscall on the IP providers) and once at the end.
static Napi::Value FabricEngineBwSendImpl(const Napi::CallbackInfo& info) {
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
static Napi::Value FabricEngineBwRecvImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReceiverCore& rx = EngineReceiver(info, 0);
  const uint64_t count = ArgU64(info, 1, "count"), wait_ms = ArgU64(info, 2, "waitMs");
  size_t nsamples = 0;
  double* samples = EngineSamples(info, 3, &nsamples);
  const uint64_t first = info.Length() > 4 ? ArgU64(info, 4, "first") : 0;
  std::vector<Delivered> out;
  uint64_t done = 0, idle_since = wallNs();
  while (done < count) {
    size_t n = rx.Poll(std::min<uint64_t>(256, count - done), out);
    if (n == 0) {
      EngineCheck(env, rx);
      if (wallNs() - idle_since > wait_ms * 1'000'000ull) break;
      continue;
    }
    const uint64_t now = wallNs();
    for (size_t j = 0; j < n; ++j) {
      const uint64_t idx = first + done + j;
      if (samples && (idx & 63) == 0 && (idx >> 6) < nsamples)
        samples[idx >> 6] = now > out[j].ts ? double(now - out[j].ts) : 0;
    }
    for (size_t j = 0; j < n; ++j) done += out[j].type == kData;
    rx.Release(n, out, false);
    idle_since = now;
  }
  out.clear();  // Release(k < out.size()) would rewind to out[k]: nothing is held back here
  rx.Release(0, out, true);
  return Napi::Number::New(env, double(done));
}

// A RdmaqError thrown inside (a core method's Fail) reaches JS as an Error with its code.
Napi::Value FabricEngineLatPing(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return FabricEngineLatPingImpl(info); });
}
Napi::Value FabricEngineLatPong(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return FabricEngineLatPongImpl(info); });
}
Napi::Value FabricEngineBwSend(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return FabricEngineBwSendImpl(info); });
}
Napi::Value FabricEngineBwRecv(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return FabricEngineBwRecvImpl(info); });
}

}  // namespace rdmaq::fabric::bench

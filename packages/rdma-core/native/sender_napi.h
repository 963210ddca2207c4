// NativeSender, the JS class `Sender` (declared in src/native.ts): the producer end of an shm link, a
// RingWriter (ring.h) over ShmTx (shm_link.h), its statistics and its wake-up while the ring is full. And
// resend(), which copies what an old ring still holds into the new one after a reconnect.
//
// Threads: none of our own. Every method runs on the Node main thread; sleeping is uv_poll on its loop.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string>

#include "js_args.h"
#include "js_error.h"
#include "link_info.h"
#include "record.h"
#include "ring.h"
#include "shm_link.h"
#include "transport.h"
#include "waker.h"

namespace rdmaq {

class NativeSender;
// Senders of this thread with a statistics slot: the 1 s heartbeat (src/index.ts, one timer per JS thread)
// refreshes their occupancy from the consumer's head, which the data path does not read for the file.
inline thread_local std::set<NativeSender*> tlStatsSenders;

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
    Napi::Object o = link_.begin(info, "Sender", "sender");
    guard(env, [&] {
      auto t = std::make_unique<ShmTx>(getString(o, "ringPath"), getString(o, "rxWakePath"),
                                       getString(o, "txWakePath"), &link_.counters);
      shm_ = t.get();
      tx_ = std::move(t);
      return 0;
    });
    link_.transport = tx_->transport();
    link_.provider = tx_->provider();
    writer_ = std::make_unique<RingWriter>(tx_.get(), &link_.counters);
    writer_->setChecksum(o.Has("checksum") && o.Get("checksum").ToBoolean().Value());
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
    return buffer_.IsEmpty() ? info.Env().Undefined() : buffer_.Value();
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
    const uint64_t now = monotonicNs();
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
    int64_t off = writer_->claim(len, kData, monotonicNs());
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
    const uint64_t ts = monotonicNs();
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
    if (writer_->claim(0, kProbe, monotonicNs()) < 0) {
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

  Napi::Value SetState(const Napi::CallbackInfo& info) { return link_.jsSetState(info); }
  Napi::Value CountError(const Napi::CallbackInfo& info) { return link_.jsCountError(info); }
  Napi::Value CountReconnect(const Napi::CallbackInfo& info) {
    ++link_.counters.reconnects;
    publish(0);
    return info.Env().Undefined();
  }
  Napi::Value SetStatsPeer(const Napi::CallbackInfo& info) { return link_.jsSetStatsPeer(info); }

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

// Resend after a reconnect onto a fresh ring: the unacknowledged records of the old ring (between the head
// its receiver released and the tail we published) with sequence >= fromSeq are copied into the new ring.
// They keep their sequences when the new ring starts at fromSeq (a receiver that keeps its position);
// otherwise they are renumbered in order. Returns {resent, dropped}; dropped = did not fit the new ring.
inline Napi::Value Resend(const Napi::CallbackInfo& info) {
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
    const uint64_t rs = recordSize(h.len, h.flags);
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

}  // namespace rdmaq

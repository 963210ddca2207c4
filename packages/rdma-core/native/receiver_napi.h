// NativeReceiver, the JS class `Receiver` (declared in src/native.ts): the consumer end of an shm link, a
// RingReader (ring.h) over ShmRx (shm_link.h): poll with a handler or into a batch array, parking and its
// wake-up, statistics.
//
// Threads: none of our own. Every method runs on the Node main thread; sleeping is uv_poll on its loop.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cstdio>
#include <memory>
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
    Napi::Object o = link_.begin(info, "Receiver", "receiver");
    guard(env, [&] {
      bool create = o.Get("create").ToBoolean();
      uint64_t cap = o.Has("capacity") && o.Get("capacity").IsNumber() ? toU64(o.Get("capacity"), "capacity") : 0;
      uint64_t resume =
          o.Has("resumeFrom") && o.Get("resumeFrom").IsNumber() ? toU64(o.Get("resumeFrom"), "resumeFrom") : 0;
      auto t = std::make_unique<ShmRx>(getString(o, "ringPath"), getString(o, "rxWakePath"),
                                       getString(o, "txWakePath"), create, cap, &link_.counters, resume);
      shm_ = t.get();
      rx_ = std::move(t);
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
    if (broken_) throwError(env, reader_->errorCode(), reader_->error() + "; the link is broken, close it");
  }

  // Validation failure: the link is broken for good (never hand out data after a bad header or payload).
  [[noreturn]] void fail(Napi::Env env) {
    broken_ = true;
    const bool crc = std::strcmp(reader_->errorCode(), "ERR_RDMAQ_CHECKSUM") == 0;
    ++link_.counters.errors[crc ? "checksum" : "bad_header"];
    link_.state = "down";
    link_.publishMeta();
    throwError(env, reader_->errorCode(), reader_->error() + "; the link is broken, close it");
  }

 private:
  Napi::Value Buffer(const Napi::CallbackInfo& info) {
    return buffer_.IsEmpty() ? info.Env().Undefined() : buffer_.Value();
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
        if (!now || clockPerRecord) now = monotonicNs();
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
    const uint64_t start = monotonicNs();
    for (uint64_t spins = 1;; ++spins) {
      cpuRelax();
      if (reader_->available()) return true;
      if ((spins & 63) == 0 && monotonicNs() - start >= spinNs) return false;
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
  Napi::Value SetState(const Napi::CallbackInfo& info) { return link_.jsSetState(info); }
  Napi::Value CountError(const Napi::CallbackInfo& info) { return link_.jsCountError(info); }
  Napi::Value CountReconnect(const Napi::CallbackInfo& info) {
    ++link_.counters.reconnects;
    publish(0);
    return info.Env().Undefined();
  }
  Napi::Value SetStatsPeer(const Napi::CallbackInfo& info) { return link_.jsSetStatsPeer(info); }

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

}  // namespace rdmaq

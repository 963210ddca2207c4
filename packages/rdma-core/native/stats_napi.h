// The statistics file's JS side: this process's own file (statsSetAppName, statsInfo, statsSetFlags,
// statsHeartbeat) and StatsMap, the JS class that reads another process's file (src/stats-file.ts).
#pragma once

#include <fcntl.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "histogram.h"
#include "js_args.h"
#include "js_error.h"
#include "sender_napi.h"
#include "stats_file.h"

namespace rdmaq {

static_assert(stats::kBuckets == Histogram::kBuckets, "the statistics file carries the histogram layout");

inline Napi::Value StatsSetAppName(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throwError(info.Env(), "ERR_RDMAQ_ARG", "setAppName(name): name must be a string");
  stats::File::instance().setAppName(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}
inline Napi::Value StatsInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  stats::File& f = stats::File::instance();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", f.enabled());
  o.Set("path", f.path());
  o.Set("error", f.error());
  o.Set("app", f.appName());
  return o;
}
inline Napi::Value StatsSetFlags(const Napi::CallbackInfo& info) {
  stats::File::instance().setFlags(static_cast<uint32_t>(toU64(info[0], "flags")));
  return info.Env().Undefined();
}
inline Napi::Value StatsHeartbeat(const Napi::CallbackInfo& info) {
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

}  // namespace rdmaq

// Waker: wakes a sleeping shm link end on the Node event loop (the Sender while its ring is full, the Receiver
// while parked).
//
// Threading: the JS thread only; uv_poll runs on its loop, and the callback goes through MakeCallback.
#pragma once

#include <napi.h>
#include <uv.h>

#include <functional>
#include <string>

#include "js_error.h"

namespace rdmaq {

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

}  // namespace rdmaq

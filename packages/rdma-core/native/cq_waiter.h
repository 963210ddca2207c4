// HubWaiter: fabric consumers that sleep on their shared endpoint's completion queue.
//
// One per FabricHub (so one uv_poll per shared CQ, not one per link), created on the first sleep and owned
// by the hub (FabricHub::sleepers). The sleep protocol, without lost wake-ups (notes/cq-wait-here.md):
//   drain the CQ (fi_cq_read until -FI_EAGAIN) → nothing for this consumer? → fi_trywait → 0: armed, the
//   wait fd turns readable on the next completion; -FI_EAGAIN: something is pending, drain again.
// The wait fd is an epoll fd on the IP providers (it nests in libuv's epoll) and the ibv_comp_channel on
// verbs. A Drain that someone else runs (another link of the hub polling, a sender's progress) can consume
// the completion that was meant to wake a sleeper. On the IP providers the socket's arrival has raised an
// edge anyway, but a provider may consume its own signal inside fi_cq_read, so the wake-up does not rely on
// it: the engine calls ParkedDataRouted() and a uv_idle handle wakes that sleeper on the next loop turn (no
// syscall, unlike a uv_async's eventfd; the loop does not block in poll while it is active).
//
// Edge, not level: the provider's wait fd is watched through an epoll fd of our own with EPOLLET, and that
// one is what libuv polls. On `net` (libfabric 1.17) the wait fd stays readable while nothing is pending —
// an idle link then burned a whole core in level-triggered uv_poll (measured: 100 % of a core idle, 0.3 %
// with the edge). Every new event on any socket behind the wait fd still raises an edge, so no arrival is
// missed: the edge is consumed first and the CQ drained after, so anything later raises a new one.
//
// Threading and lifetimes: everything runs on the JS thread that owns the hub (hubs are thread_local). A
// callback may close links and so destroy the hub, and this object with it: dispatch holds a shared_ptr to
// the hub while it runs and touches no member after the callbacks.
#pragma once

#include <napi.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "fabric_engine.h"

namespace rdmaq::fabric {

class HubWaiter final : public HubSleepers {
 public:
  // The hub's waiter, made on first use. Throws an RdmaqError when the loop cannot watch the fd.
  static HubWaiter& For(napi_env env, FabricHub& hub) {
    if (!hub.sleepers) hub.sleepers.reset(new HubWaiter(env, hub));
    return *static_cast<HubWaiter*>(hub.sleepers.get());
  }

  ~HubWaiter() override {
    for (Sleeper& s : sleepers_) s.core->parked = false;
    sleepers_.clear();
    if (poll_) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      // uv_close stops watching the fd at once (the memory goes in the close callback): close the fd after.
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    }
    if (edge_fd_ >= 0) close(edge_fd_);
    if (idle_) {
      uv_idle_stop(idle_);
      idle_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(idle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
    }
  }

  // Puts `core` to sleep until it has something to do; `cb` is called once then (on the JS thread).
  // Returns 1 asleep, 0 not asleep: it has records (or an error) now — poll again.
  int Sleep(Napi::Env env, ReceiverCore* core, Napi::Function cb) {
    Forget(core);
    for (int attempt = 0; attempt < 8; ++attempt) {
      hub_.Drain();
      if (core->WakeWanted()) return 0;
      core->parked = true;  // from here a Drain that routes its data calls ParkedDataRouted
      const int rc = hub_.ep().TryWait();
      if (rc == 0) {
        sleepers_.push_back({core, Napi::Persistent(cb)});
        ++core->sleeps_;
        if (!watching_) {
          int src = uv_poll_start(poll_, UV_READABLE, &HubWaiter::OnPoll);
          if (src != 0) {
            sleepers_.pop_back();
            core->parked = false;
            Fail("ERR_RDMAQ_WAKE", std::string("uv_poll_start on the CQ wait fd failed: ") + uv_strerror(src));
          }
          watching_ = true;
        }
        uv_ref(reinterpret_cast<uv_handle_t*>(poll_));  // a sleeper keeps the loop alive
        (void)env;
        return 1;
      }
      core->parked = false;
      if (rc != -FI_EAGAIN) Fail("ERR_RDMAQ_FABRIC", "fi_trywait on the completion queue failed", rc);
    }
    return 0;  // completions kept coming: the caller polls and tries again
  }

  void Forget(ReceiverCore* r) override {
    r->parked = false;
    for (auto it = sleepers_.begin(); it != sleepers_.end(); ++it) {
      if (it->core != r) continue;
      sleepers_.erase(it);  // resets the callback reference
      break;
    }
    if (sleepers_.empty()) IdleWatching();
  }

  void ParkedDataRouted() override {
    if (!dispatching_ && idle_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(idle_)))
      uv_idle_start(idle_, &HubWaiter::OnIdle);
  }

  size_t sleeping() const { return sleepers_.size(); }

 private:
  struct Sleeper {
    ReceiverCore* core;
    Napi::FunctionReference cb;
  };

  HubWaiter(napi_env env, FabricHub& hub) : hub_(hub), env_(env) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) Fail("ERR_RDMAQ_WAKE", "no event loop");
    edge_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (edge_fd_ < 0) Fail("ERR_RDMAQ_WAKE", std::string("epoll_create1 failed: ") + strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    if (epoll_ctl(edge_fd_, EPOLL_CTL_ADD, hub.ep().wait_fd(), &ev) != 0) {
      const int e = errno;
      close(edge_fd_);
      edge_fd_ = -1;
      Fail("ERR_RDMAQ_WAKE", std::string("cannot watch the CQ wait fd with epoll: ") + strerror(e));
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, edge_fd_);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      close(edge_fd_);
      edge_fd_ = -1;
      Fail("ERR_RDMAQ_WAKE", std::string("uv_poll_init on the CQ wait fd failed: ") + uv_strerror(rc));
    }
    poll_->data = this;
    idle_ = new uv_idle_t;
    uv_idle_init(loop, idle_);
    idle_->data = this;
  }

  void StopWatching() {
    if (watching_ && poll_) uv_poll_stop(poll_);
    watching_ = false;
  }
  // After a wake-up the consumer usually sleeps again within microseconds: the poll stays started (so no
  // epoll_ctl pair in libuv per wake-up, measured 2 of ~14 syscalls per message) but unreferenced, so an
  // idle process can exit; the first edge that finds nobody asleep stops it (OnPoll).
  void IdleWatching() {
    if (watching_ && poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }

  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* self = static_cast<HubWaiter*>(h->data);
    if (!self) return;
    epoll_event ev[4];
    while (epoll_wait(self->edge_fd_, ev, 4, 0) == 4) {
    }  // consume the edge before draining: a later arrival raises a new one
    if (self->sleepers_.empty()) {
      self->StopWatching();  // nobody asleep: the awake consumers poll for themselves
      return;
    }
    self->Dispatch(status < 0);
  }
  static void OnIdle(uv_idle_t* h) {
    uv_idle_stop(h);  // one turn only
    if (auto* self = static_cast<HubWaiter*>(h->data)) self->Dispatch(false);
  }

  // Drains the CQ, wakes every sleeper with something to do and re-arms the wait for the others. If the
  // wait cannot be re-armed (completions keep coming, or the fd reported an error) everyone is woken: they
  // poll and sleep again, so nothing is ever left waiting on an fd that will not turn readable.
  void Dispatch(bool wake_all) {
    std::shared_ptr<FabricHub> keep = hub_.shared_from_this();  // a callback may drop the last link
    std::vector<Sleeper> wake;
    dispatching_ = true;
    bool armed = false;
    for (int attempt = 0; attempt < 8 && !wake_all; ++attempt) {
      hub_.Drain();
      for (auto it = sleepers_.begin(); it != sleepers_.end();) {
        if (it->core->WakeWanted()) {
          wake.push_back(std::move(*it));
          it = sleepers_.erase(it);
        } else {
          ++it;
        }
      }
      if (sleepers_.empty() || hub_.ep().TryWait() == 0) {
        armed = true;
        break;
      }
    }
    if (!armed)
      for (Sleeper& s : sleepers_) wake.push_back(std::move(s));
    if (!armed) sleepers_.clear();
    if (sleepers_.empty()) IdleWatching();
    dispatching_ = false;
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    for (Sleeper& s : wake) {
      s.core->parked = false;
      if (s.core->WakeWanted() && !s.core->empty()) ++s.core->wakeups_;
    }
    for (Sleeper& s : wake) {
      if (s.cb.IsEmpty()) continue;
      try {
        s.cb.MakeCallback(env.Global(), {});
      } catch (const Napi::Error& e) {
        napi_fatal_exception(env, e.Value());
      }
    }
    // `keep` goes last: if it was the hub's last owner, this object is gone after this line.
  }

  FabricHub& hub_;
  napi_env env_;
  int edge_fd_ = -1;  // epoll fd of ours holding the provider's wait fd with EPOLLET; libuv polls this one
  uv_poll_t* poll_ = nullptr;
  uv_idle_t* idle_ = nullptr;  // active only between ParkedDataRouted and the next loop turn
  bool watching_ = false, dispatching_ = false;
  std::vector<Sleeper> sleepers_;
};

}  // namespace rdmaq::fabric

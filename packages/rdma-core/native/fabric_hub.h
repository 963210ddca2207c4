// The shared endpoint of the fabric transport and the encoding of the remote CQ data that routes through it.
//
// Endpoints are shared: every link end of a thread on one (provider, local address) uses one RDM endpoint, one
// CQ and one AV. A request and its reply then travel on one connection (bench/endpoint-layout: one-way
// latency 0.70-0.75x that of an endpoint per link end; 2.0 TCP segments per round trip instead of 3.0), and a
// host with thousands of links pays for one set of provider buffers, not one per link. The receiver's slot in
// the remote CQ data routes each incoming write to its ring (see kSlotShift).
//
// Threading: hubs are per thread (a thread_local registry), and everything on a hub runs on its thread.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fabric_endpoint.h"
#include "fabric_mapping.h"
#include "record.h"

namespace rdmaq::fabric {

// Remote CQ data (32 bits: verbs carries 4 bytes): bits 0..20 the tail delta (one write moves at most
// kMaxWrite bytes), bits 21..30 the receiver's slot on its hub (1..1023; 0 = a credit write, which needs no
// routing: the word itself carries the value), bit 31 marks the handshake's test write (no records).
constexpr uint64_t kCheckFlag = 1ull << 31;
constexpr uint32_t kSlotShift = 21;
constexpr uint64_t kDeltaMask = (1ull << kSlotShift) - 1;
constexpr uint32_t kSlots = 1024;  // slot 0 is never a receiver's
// A hub takes new receivers while this many slots are still free, so a freed slot is handed out again only
// after at least this many other attaches: a late CQ entry of the old connection cannot reach its successor.
constexpr uint32_t kSlotSlack = 64;
// How long a closed link's remote-access keys (and the memory under them) stay registered: a write or credit
// already on its way must find its key (FABRIC.md, Learnt 9), and by then the peer has long seen `bye` or the
// EOF.
constexpr uint64_t kBuryNs = 30'000'000'000ull;
constexpr uint64_t kMaxWrite = 1ull << 20;

// FabricHub: the endpoint (and CQ, AV) shared by every link end of this thread on one (provider, local address).
// Whoever needs progress calls Drain(); it reads the one CQ and routes each entry:
//   - incoming writes (FI_REMOTE_WRITE) by the slot in their CQ data to the receiver that holds it
//     (slot 0: a credit write — the sender reads the word itself);
//   - our own write completions and errors by their op_context, which encodes (sender index, generation,
//     kind): no pointer, so a completion that arrives after its sender left is recognised and dropped.
// Lifetime: links hold shared_ptrs; the thread's registry holds weak ones, so the endpoint closes with its last
// link. A link that closes for good buries its remote-access keys and the memory under them here for kBuryNs
// (writes and credit may still be on their way, queued writes may still read its mirror).
class SenderCore;
class ReceiverCore;

// The consumers sleeping on a hub's CQ wait fd (cq_waiter.h keeps them; libuv lives there, not here). The
// engine only needs to make a closing receiver forget its sleep.
struct HubSleepers {
  virtual ~HubSleepers() = default;
  virtual void Forget(ReceiverCore* r) = 0;
  // A Drain routed data (or an error) to a parked receiver: the CQ entry that would have made the wait fd
  // readable is consumed, so the sleeper must be woken some other way (cq_waiter.h: a uv_async).
  virtual void ParkedDataRouted() = 0;
};

class FabricHub : public std::enable_shared_from_this<FabricHub> {
 public:
  enum Kind : uintptr_t { kWriteOp = 1, kCheckOp = 2, kRecvOp = 3 };

  // A hub for (provider, node): an existing one of this thread, or a new endpoint. need_slot: the caller is a
  // receiver and needs one of the 1023 slots (a full hub means another endpoint).
  // `current`: the hub the caller is on now, preferred (its registrations stay valid).
  static std::shared_ptr<FabricHub> Acquire(const std::string& provider, const std::string& node, bool need_slot,
                                            const FabricHub* current = nullptr) {
    auto& list = Registry()[provider + "|" + node];
    std::shared_ptr<FabricHub> pick;
    for (auto it = list.begin(); it != list.end();) {
      std::shared_ptr<FabricHub> h = it->lock();
      if (!h) {
        it = list.erase(it);
        continue;
      }
      if (!h->failed_ && !h->abandoned_ && (!need_slot || h->receiver_count_ < kSlots - 1 - kSlotSlack) &&
          (!pick || h.get() == current))
        pick = h;
      ++it;
    }
    if (pick) {
      if (!pick->graveyard_.empty()) pick->Sweep();
      return pick;
    }
    auto h = std::make_shared<FabricHub>();
    h->Open(provider, node);
    list.push_back(h);
    return h;
  }

  FabricHub() : receivers_(kSlots, nullptr) {}
  FabricHub(const FabricHub&) = delete;
  FabricHub& operator=(const FabricHub&) = delete;
  ~FabricHub() {
    sleepers.reset();  // stops watching the wait fd before the CQ (which owns it) closes
    ep_.CloseEp();  // no traffic any more: buried keys and memory can go, then the rest of the endpoint
    for (Buried& b : graveyard_)
      for (fid_mr* mr : b.mrs) fi_close(&mr->fid);
    graveyard_.clear();
    ep_.Close();
  }

  Endpoint& ep() { return ep_; }
  bool failed() const { return failed_; }
  // No new link ends on this endpoint (its links stay until they leave): a link found its provider
  // connection to a peer wedged, and a fresh endpoint is the only way to a fresh connection (fi_av_remove
  // keeps it, FABRIC.md Learnt 9).
  void Abandon() { abandoned_ = true; }
  const RdmaqError& error() const { return error_; }
  size_t links() const { return receiver_count_ + sender_count_; }

  // Slots are handed out round robin, so a reconnecting receiver gets a fresh one: a late entry for its old
  // slot finds nobody (kSlotSlack keeps a freed slot out of use for at least 64 attaches).
  uint32_t AttachReceiver(ReceiverCore* r) {
    for (uint32_t i = 0; i < kSlots - 1; ++i) {
      next_slot_ = next_slot_ % (kSlots - 1) + 1;
      if (!receivers_[next_slot_]) {
        receivers_[next_slot_] = r;
        ++receiver_count_;
        return next_slot_;
      }
    }
    Fail("ERR_RDMAQ_FABRIC", "no free receiver slot on the shared endpoint");
  }
  void DetachReceiver(uint32_t slot) {
    if (slot && slot < kSlots && receivers_[slot]) {
      receivers_[slot] = nullptr;
      --receiver_count_;
    }
  }

  // Returns a token for op contexts (index | generation << 20).
  uint64_t AttachSender(SenderCore* s) {
    uint32_t idx;
    if (!free_senders_.empty()) {
      idx = free_senders_.back();
      free_senders_.pop_back();
    } else {
      idx = uint32_t(senders_.size());
      senders_.push_back({nullptr, 0});
    }
    senders_[idx].core = s;
    ++senders_[idx].gen;
    ++sender_count_;
    return uint64_t(idx) | uint64_t(senders_[idx].gen) << 20;
  }
  void DetachSender(uint64_t token) {
    uint32_t idx = uint32_t(token & 0xfffff);
    if (idx < senders_.size() && senders_[idx].core && senders_[idx].gen == uint32_t(token >> 20)) {
      senders_[idx].core = nullptr;
      free_senders_.push_back(idx);
      --sender_count_;
    }
  }
  static void* Context(uint64_t token, Kind kind) { return reinterpret_cast<void*>(uintptr_t(token << 2 | kind)); }

  // Peers are shared too: one AV entry per peer address, removed with its last link (the providers keep the
  // connection itself unless FI_AV_REMOVE_CLEANUP is set; FABRIC.md Learnt 9).
  fi_addr_t AddPeer(const uint8_t* addr, size_t len) {
    std::string k(reinterpret_cast<const char*>(addr), len);
    auto it = peers_.find(k);
    if (it != peers_.end()) {
      ++it->second.refs;
      return it->second.addr;
    }
    fi_addr_t a = ep_.InsertPeer(addr, len);
    peers_[k] = {a, 1};
    return a;
  }
  // Lets go of *peer (if set) and clears it, so it is never dropped twice (AddPeer after it may throw).
  void DropPeer(fi_addr_t* peer) {
    const fi_addr_t a = *peer;
    *peer = FI_ADDR_NOTAVAIL;
    if (a == FI_ADDR_NOTAVAIL) return;
    for (auto it = peers_.begin(); it != peers_.end(); ++it) {
      if (it->second.addr != a) continue;
      if (--it->second.refs == 0) {
        ep_.RemovePeer(a);
        peers_.erase(it);
      }
      return;
    }
  }

  // Keeps registrations (closed after kBuryNs) and the memory under them (and under writes that may still be
  // queued in the provider) alive after their link let go of them; see kBuryNs.
  void Bury(std::vector<fid_mr*> mrs, std::shared_ptr<Mapping> mem) {
    graveyard_.push_back({wallNs() + kBuryNs, std::move(mrs), std::move(mem)});
  }

  inline void Drain();  // fabric_engine.h: it routes to both cores
  // Set by OnRemoteWrite when it moved a parked receiver's tail; Drain tells `sleepers` once at its end.
  void NoteParkedData() { parked_data_ = true; }

  std::unique_ptr<HubSleepers> sleepers;  // created on the first sleep (cq_waiter.h)

 private:
  struct SenderEntry {
    SenderCore* core;
    uint32_t gen;
  };
  struct PeerEntry {
    fi_addr_t addr;
    size_t refs;
  };
  struct Buried {
    uint64_t deadline_ns;
    std::vector<fid_mr*> mrs;
    std::shared_ptr<Mapping> mem;
  };
  void Sweep() {
    const uint64_t now = wallNs();
    for (auto it = graveyard_.begin(); it != graveyard_.end();) {
      if (it->deadline_ns > now) {
        ++it;
        continue;
      }
      for (fid_mr* mr : it->mrs) fi_close(&mr->fid);
      it = graveyard_.erase(it);
    }
  }
  static std::map<std::string, std::vector<std::weak_ptr<FabricHub>>>& Registry() {
    static thread_local std::map<std::string, std::vector<std::weak_ptr<FabricHub>>> r;
    return r;
  }
  void Open(const std::string& provider, const std::string& node) {
    // One entry per write that can complete between two drains: up to 64 in flight per sender, and on the IP
    // providers a drain is what receives them. The util CQ of the software providers also queues overflow.
    ep_.Open(provider, node, 1 << 16);
    rx_cq_data_ = (ep_.summary().mode & FI_RX_CQ_DATA) != 0;
    if (rx_cq_data_) {
      // FI_RX_CQ_DATA (verbs): every remote write with CQ data consumes a posted receive. Zero-length buffers,
      // reposted as they are consumed.
      size_t n = std::min<size_t>(ep_.summary().rx_size ? ep_.summary().rx_size : 256, 1024);
      for (size_t i = 0; i < n; ++i) PostRecv();
    }
  }
  void PostRecv() { fi_recv(ep_.ep(), nullptr, 0, nullptr, FI_ADDR_UNSPEC, Context(0, kRecvOp)); }
  SenderCore* SenderOf(void* ctx, Kind* kind) {
    uintptr_t v = reinterpret_cast<uintptr_t>(ctx);
    *kind = Kind(v & 3);
    uint64_t token = v >> 2;
    uint32_t idx = uint32_t(token & 0xfffff);
    if (*kind == kRecvOp || idx >= senders_.size() || senders_[idx].gen != uint32_t(token >> 20)) return nullptr;
    return senders_[idx].core;
  }
  void SetFailed(const std::string& what, int rc) {
    if (failed_) return;
    failed_ = true;
    error_ = RdmaqError("ERR_RDMAQ_FABRIC", what + ": " + FiText(rc), rc < 0 ? -rc : rc, true);
  }

  Endpoint ep_;
  std::vector<ReceiverCore*> receivers_;
  uint32_t receiver_count_ = 0, next_slot_ = 0;
  std::vector<SenderEntry> senders_;
  std::vector<uint32_t> free_senders_;
  uint32_t sender_count_ = 0;
  std::map<std::string, PeerEntry> peers_;
  std::vector<Buried> graveyard_;
  uint64_t drains_ = 0;
  bool rx_cq_data_ = false, failed_ = false, draining_ = false, parked_data_ = false, abandoned_ = false;
  RdmaqError error_;
};

}  // namespace rdmaq::fabric

// The fabric receiver's core (no N-API; fabric_receiver_napi.h wraps it): its ring is registered for remote
// write; it reads the shared CQ (fabric_hub.h), hands out the records that landed (fabric_parse.h), and
// returns credit by writing its head into the sender's credit word (fi_inject_writedata, so a sender that
// sleeps on its CQ would also see an event). Progress is manual: it must keep calling Poll().
//
// Threading: one object is used by one thread (the JS thread).
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fabric_hub.h"
#include "fabric_parse.h"
#include "record.h"

namespace rdmaq::fabric {

// Receiver: the ring (registered for remote write). Delivers views: poll() fills a descriptor list (Delivered,
// fabric_parse.h), the caller reads the payloads, then Release() frees the bytes and maybe returns credit.

class ReceiverCore {
 public:
  ReceiverCore(uint64_t capacity) : cap_(capacity), mask_(capacity - 1), ring_(std::make_shared<Mapping>()) {
    if (capacity < 4096 || (capacity & (capacity - 1)) || capacity > (1ull << 30))
      Fail("ERR_RDMAQ_ARG", "ring capacity must be a power of two between 4 KiB and 1 GiB");
    ring_->MapAnon(cap_ + 4096);
    head_word_ = reinterpret_cast<uint64_t*>(ring_->base + cap_);
  }
  ReceiverCore(const ReceiverCore&) = delete;
  ReceiverCore& operator=(const ReceiverCore&) = delete;
  ~ReceiverCore() { CloseFabric(true); }

  // Joins the thread's shared endpoint, takes a slot (a new one every connection: a late CQ entry of the old
  // connection finds its slot empty) and registers the ring under a new key. The previous key is retired, not
  // closed: a write of the old connection that is still on its way would hit a missing key, and the target's
  // provider answers that by shutting the whole connection between the two processes (every link on it).
  // If the new sender is the same peer endpoint, its test write comes after all of those on the same
  // connection (FIFO), so the retired key is closed when it arrives; otherwise it is buried (kBuryNs).
  void OpenFabric(const std::string& provider, const std::string& node) {
    CloseFabric();
    std::shared_ptr<FabricHub> hub = FabricHub::Acquire(provider, node, true, hub_.get());
    if (hub != hub_) {
      CloseFabric(true);
      uint64_t k;
      head_mr_ = hub->ep().Register(head_word_, 8, FI_WRITE, &k);
      hub_ = std::move(hub);
    } else if (ring_mr_) {
      if (retired_mr_) hub_->Bury({retired_mr_}, ring_);  // its successor never proved FIFO: time decides
      retired_mr_ = ring_mr_;
      retired_peer_ = peer_name_;
    }
    ring_mr_ = nullptr;  // moved to retired_mr_ (or gone): a failed Register must not leave it twice
    Endpoint& ep = hub_->ep();
    ring_mr_ = ep.Register(ring_->base, cap_, FI_REMOTE_WRITE, &ring_key_);
    ring_base_ = ep.RemoteBase(ring_->base);
    slot_ = hub_->AttachReceiver(this);
    failed_ = false;
    connected_ = false;
  }
  // Ends the connection (its slot is freed). final: also leave the endpoint; the ring's keys (and the ring's
  // memory) are buried, since the sender may still be writing until it reads `bye` (FABRIC.md, Learnt 9).
  void CloseFabric(bool final = false) {
    if (hub_ && hub_->sleepers) hub_->sleepers->Forget(this);
    parked = false;
    if (hub_ && slot_) hub_->DetachReceiver(slot_);
    slot_ = 0;
    early_.clear();
    check_arrived_ = false;
    if (hub_) hub_->DropPeer(&peer_);
    connected_ = false;
    if (final && hub_) {
      std::vector<fid_mr*> keys;
      for (fid_mr* mr : {ring_mr_, retired_mr_})
        if (mr) keys.push_back(mr);
      if (!keys.empty()) hub_->Bury(std::move(keys), ring_);
      ring_mr_ = retired_mr_ = nullptr;
      if (head_mr_) fi_close(&head_mr_->fid);  // local source of injected credit (copied at once)
      head_mr_ = nullptr;
      hub_.reset();
    }
  }

  // After the handshake: the sender's address, its credit word, and where the stream restarts.
  void Connect(const uint8_t* peer, size_t peerlen, uint64_t credit_addr, uint64_t credit_key, uint64_t start_pos,
               uint64_t start_seq) {
    if (!hub_ || !slot_) Fail("ERR_RDMAQ_STATE", "connect before open");
    hub_->DropPeer(&peer_);
    peer_ = hub_->AddPeer(peer, peerlen);
    peer_name_.assign(reinterpret_cast<const char*>(peer), peerlen);
    credit_addr_ = credit_addr;
    credit_key_ = credit_key;
    // Undelivered bytes of the previous connection are dropped: the sender resends from start_seq.
    head_ = tail_ = consumed_ = credited_ = start_pos;
    expected_ = start_seq;
    have_expected_ = true;
    connected_ = true;
    std::vector<uint64_t> early;
    early.swap(early_);
    for (uint64_t d : early) OnRemoteWrite(d);
  }

  // Handshake test write: 0 = not arrived yet, 1 = arrived intact, 2 = arrived with other bytes.
  // The write may have landed before ExpectCheck (see OnRemoteWrite): what arrived is kept and compared here.
  int PollCheck() {
    if (!failed_) ReadCq();
    if (!check_arrived_) return 0;
    if (check_got_ != check_value_) return 2;
    RetireDone();
    return 1;
  }
  void ExpectCheck(uint64_t v) { check_value_ = v; }

  // Reads the CQ (this is also what makes incoming writes land: progress is manual), then parses up to
  // `limit` records from the ring. Returns how many were delivered into out.
  // The CQ is read only when the ring holds no complete record: records already landed are handed out
  // without a syscall (on the IP providers every CQ read is an epoll_wait and a recv), which is what a
  // consumer just woken from its CQ sleep finds — the wake-up drained the CQ already.
  size_t Poll(size_t limit, std::vector<Delivered>& out) {
    out.clear();
    if (!connected_ || failed_) return 0;
    if (consumed_ != tail_ && Parse(limit, out)) return out.size();
    if (failed_) return 0;
    ReadCq();
    if (failed_) return 0;
    return Parse(limit, out);
  }

  // Parses up to `limit` complete records between consumed_ and tail_ into out (ParseRecords, fabric_record.h).
  size_t Parse(size_t limit, std::vector<Delivered>& out) {
    ParseTally t;
    consumed_ = ParseRecords(ring_->base, cap_, consumed_, tail_, expected_, limit, out, t);
    records_ += t.records;
    bytes_ += t.bytes;
    wraps_ += t.wraps;
    duplicates_ += t.duplicates;
    if (t.fault != ParseTally::kNone) SetFailed(ParseFaultText(t), ParseFaultCode(t));
    return out.size();
  }

  // The caller is done with the views of the last poll: free the bytes; return credit every quarter ring or
  // when the ring ran empty (the sender may be waiting).
  // The first k records of the last poll were consumed; the others are parsed again by the next poll.
  // Credit is batched: every quarter ring, or at once when `flush` (the consumer goes idle, or the sender
  // said it waits for space) — not on every empty poll, which would add a write per record to a ping-pong.
  // resend: write the head even if it was credited already — the sender says it waits, so what it holds is
  // not what we sent (a late credit write of an older connection may have overwritten its word).
  void Release(size_t k, const std::vector<Delivered>& out, bool flush, bool resend = false) {
    if (k < out.size()) {
      consumed_ = out[k].start;
      expected_ = out[k].seq;
    }
    for (size_t i = k; i < out.size(); ++i) {  // handed out again by the next poll: counted then
      if (out[i].type != kData) continue;
      --records_;
      bytes_ -= out[i].len;
    }
    head_ = consumed_;
    if (!connected_ || failed_) return;
    if ((head_ != credited_ && (head_ - credited_ >= cap_ / 4 || flush)) || resend) SendCredit();
  }

  // Going to sleep: credit goes back now only when at least `min_bytes` were consumed since the last credit.
  // Less waits for the next batch, the sender's `need`, or the 1 s safety poll (which flushes): a credit write
  // per record would wake a sleeping peer for nothing after every message of a ping-pong.
  void CreditIfAbove(uint64_t min_bytes) {
    if (connected_ && !failed_ && head_ != credited_ && head_ - credited_ >= min_bytes) SendCredit();
  }

  // Test hook for bad input. Exposed so a test can check the receiver rejects an out-of-range tail delta.
  bool failed() const { return failed_; }
  const RdmaqError& error() const { return error_; }
  uint64_t expected() const { return expected_; }
  bool has_expected() const { return have_expected_; }
  void set_expected(uint64_t e) {
    expected_ = e;
    have_expected_ = true;
  }
  uint64_t head() const { return head_; }
  uint64_t tail() const { return tail_; }
  uint64_t capacity() const { return cap_; }
  uint8_t* ring() const { return ring_->base; }
  uint64_t ring_key() const { return ring_key_; }
  uint64_t ring_base() const { return ring_base_; }
  Endpoint& ep() { return hub_->ep(); }
  uint32_t slot() const { return slot_; }
  size_t endpoint_links() const { return hub_ && slot_ ? hub_->links() : 0; }
  bool empty() const { return consumed_ == tail_; }

  uint64_t records_ = 0, bytes_ = 0, completions_ = 0, credits_ = 0, wraps_ = 0, duplicates_ = 0,
           cq_errors_ = 0;
  // Sleeping on the CQ wait fd (cq_waiter.h): times this receiver went to sleep, and times it was woken with
  // something to deliver (the rest of its wake-ups were for others on the same endpoint or spurious).
  uint64_t sleeps_ = 0, wakeups_ = 0;
  bool parked = false;  // asleep on the hub's wait fd: a write routed to it must wake it
  FabricHub* hub_ptr() const { return hub_.get(); }
  // Something for a sleeping consumer to act on: records, an error, or the connection gone.
  bool WakeWanted() const { return !connected_ || failed_ || consumed_ != tail_ || !hub_ || hub_->failed(); }

 private:
  void SendCredit() {
    *head_word_ = head_;
    // inject: the 8 bytes are copied at once, so head_word_ may change right after. writedata so that a
    // sender sleeping on its CQ would get an event (a plain write raises none).
    ssize_t rc = fi_inject_writedata(hub_->ep().ep(), head_word_, 8, 0, peer_, credit_addr_, credit_key_);
    if (rc == -FI_EAGAIN) return;  // retried on the next Release()
    if (rc != 0) {
      SetFailed("credit write failed: " + FiText(int(rc)), "ERR_RDMAQ_FABRIC");
      return;
    }
    credited_ = head_;
    ++credits_;
    // Progress is manual on the initiator too: an injected write may sit in the provider's queue until we
    // drive it. The consumer may go to sleep right after this, so drive it now.
    ReadCq();
  }
  void ReadCq() {
    if (!hub_) return;
    hub_->Drain();
    if (hub_->failed()) SetFailed(hub_->error().message, "ERR_RDMAQ_FABRIC");
  }
  // This connection's test write arrived: every write of the previous connection that used the same peer
  // endpoint (same connection, FIFO) is past, so its key can go; one from another peer endpoint is buried.
  void RetireDone() {
    if (!retired_mr_) return;
    if (retired_peer_ == peer_name_)
      fi_close(&retired_mr_->fid);
    else
      hub_->Bury({retired_mr_}, ring_);
    retired_mr_ = nullptr;
  }

 public:
  // ---- called by FabricHub::Drain(): an incoming write for this slot; data = its 32 bits of CQ data ----
  void OnRemoteWrite(uint64_t data) {
    if (failed_) return;
    if (!connected_) {
      // The sender posts its test write right after sending `start`; another link's drain (same endpoint)
      // can complete it before this receiver has read `start` and connected. Keep it for Connect().
      if (early_.size() < 64) early_.push_back(data);
      return;
    }
    ++completions_;
    if (data & kCheckFlag) {
      memcpy(&check_got_, ring_->base + (tail_ & mask_), 8);
      check_arrived_ = true;
      return;
    }
    if (parked) hub_->NoteParkedData();  // data or an error below: either way the sleeper must wake
    uint64_t delta = data & kDeltaMask;
    if (!TailDeltaOk(delta, tail_, head_, cap_)) {
      SetFailed("out-of-range remote CQ data: tail delta " + std::to_string(delta) + " with " +
                    std::to_string(cap_ - (tail_ - head_)) + " bytes free in the ring",
                "ERR_RDMAQ_PROTOCOL");
      return;
    }
    tail_ += delta;
  }

 private:
  void SetFailed(const std::string& what, const char* code) {
    if (failed_) return;
    failed_ = true;
    error_ = RdmaqError(code, what, 0, true);
  }

  uint64_t cap_, mask_;
  std::shared_ptr<Mapping> ring_;  // shared with the hub's graveyard after close (see CloseFabric)
  uint64_t* head_word_ = nullptr;
  std::shared_ptr<FabricHub> hub_;
  uint32_t slot_ = 0;
  fid_mr* ring_mr_ = nullptr;     // this connection's key
  fid_mr* retired_mr_ = nullptr;  // the previous connection's, until its last write is past (OpenFabric)
  std::string peer_name_, retired_peer_;  // fabric address of the current / the retired key's sender
  fid_mr* head_mr_ = nullptr;     // source of the credit writes: local access only, kept
  std::vector<uint64_t> early_;   // CQ data for our slot that came before Connect (the test write)
  uint64_t ring_key_ = 0, ring_base_ = 0;
  fi_addr_t peer_ = FI_ADDR_NOTAVAIL;
  uint64_t credit_addr_ = 0, credit_key_ = 0;
  uint64_t head_ = 0, tail_ = 0, consumed_ = 0, credited_ = 0;
  uint64_t expected_ = 0;
  bool have_expected_ = false;
  bool connected_ = false, failed_ = false;
  RdmaqError error_;
  uint64_t check_value_ = 0, check_got_ = 0;
  bool check_arrived_ = false;  // this connection's test write landed (value in check_got_)
};

}  // namespace rdmaq::fabric

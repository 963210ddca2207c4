// The fabric sender's core (no N-API; fabric_sender_napi.h wraps it): keeps a registered mirror of the ring
// at the same offsets and writes each batch of records into the receiver's ring with fi_writedata; the remote
// CQ data is the number of bytes the tail moved (32 bits, so it fits verbs' 4-byte CQ data). The receiver
// returns credit by writing its head into a registered word here. Progress is manual on every provider we
// use: a sender waiting for credit keeps polling its own CQ. With a journal the mirror is a file, so records
// accepted before a crash are resent after a restart.
//
// Threading: one object is used by one thread (the JS thread).
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "crc32c.h"
#include "fabric_hub.h"
#include "record.h"

namespace rdmaq::fabric {

// Sender. Memory: a 4 KiB control page (journal header + credit word) followed by the mirror (capacity).
// Positions (tail, sent, acked) are byte counters that only grow; index = position & (capacity - 1).
struct JournalHeader {
  char magic[8];  // "RDMAQJ01"
  uint64_t capacity;
  uint64_t stream_id;
  uint64_t tail;       // end of the last accepted record (published after the record bytes)
  uint64_t next_seq;   // sequence the next record gets
  uint64_t first_seq;  // sequence of the record at the oldest position the journal may still hold
  uint8_t pad0[64 - 48];
  alignas(64) volatile uint64_t credit;  // receiver's head, written remotely (fi_inject_writedata)
  alignas(64) uint64_t check;            // source of the handshake's test write (not persisted meaning)
};
static_assert(sizeof(JournalHeader) <= 4096, "header fits the control page");

class SenderCore {
 public:
  static constexpr size_t kPage = 4096;

  SenderCore(uint64_t capacity, const std::string& journal)
      : cap_(capacity), mask_(capacity - 1), mem_(std::make_shared<Mapping>()) {
    if (capacity < 4096 || (capacity & (capacity - 1)) || capacity > (1ull << 30))
      Fail("ERR_RDMAQ_ARG", "ring capacity must be a power of two between 4 KiB and 1 GiB");
    if (journal.empty())
      mem_->MapAnon(kPage + cap_);
    else
      mem_->MapFile(journal, kPage + cap_);
    hdr_ = reinterpret_cast<JournalHeader*>(mem_->base);
    mirror_ = mem_->base + kPage;
    if (mem_->existed && memcmp(hdr_->magic, "RDMAQJ01", 8) == 0 && hdr_->capacity == cap_) {
      recovered_ = true;  // a journal from a previous run: its unacknowledged records will be resent
      if (hdr_->credit > hdr_->tail || hdr_->tail - hdr_->credit > cap_)
        Fail("ERR_RDMAQ_JOURNAL", "journal " + journal + " is inconsistent (credit beyond tail); delete it");
    } else {
      if (mem_->existed)
        Fail("ERR_RDMAQ_JOURNAL", "journal " + journal + " was made for another ring capacity or is not a "
                                  "journal; delete it or use the same capacity");
      memset(hdr_, 0, sizeof(JournalHeader));
      std::random_device rd;
      hdr_->capacity = cap_;
      hdr_->stream_id = (uint64_t(rd()) << 32 | rd()) & 0x1fffffffffffffull;  // fits a JS number
      hdr_->first_seq = 0;
      memcpy(hdr_->magic, "RDMAQJ01", 8);
    }
    acked_ = hdr_->credit;
    sent_ = acked_;
  }
  SenderCore(const SenderCore&) = delete;
  SenderCore& operator=(const SenderCore&) = delete;
  ~SenderCore() { CloseFabric(true); }

  // ---- producer side ----
  uint64_t Free() const { return cap_ - (hdr_->tail - acked_); }
  uint64_t MaxPayload() const { return maxPayloadFor(cap_, flags_); }
  // Per-record CRC32C of the payload (record.h kFlagChecksum), sealed at Commit(): set before the first claim.
  void SetChecksum(bool on) { flags_ = on ? kFlagChecksum : 0; }

  // Reserves room for a record of `len` payload bytes; returns the mirror offset of the payload or -1 when
  // the ring is full (back-pressure). Writes PADDING first if the record would straddle the end.
  int64_t Claim(uint32_t len) {
    if (len > MaxPayload())
      Fail("ERR_RDMAQ_TOO_LARGE", "record of " + std::to_string(len) + " bytes exceeds the maximum of " +
                                      std::to_string(MaxPayload()) + " (half the ring minus the header)");
    RefreshCredit();
    uint64_t need = recordSize(len, flags_);
    uint64_t tail = hdr_->tail;
    uint64_t off = tail & mask_;
    uint64_t pad = cap_ - off < need ? cap_ - off : 0;
    if (pad + need > Free()) {
      ++backpressure_;
      return -1;
    }
    if (pad) {
      if (pad >= kHeaderSize) {
        auto* h = reinterpret_cast<RecordHeader*>(mirror_ + off);
        h->len = uint32_t(pad - kHeaderSize);
        h->type = kPadding;
        h->flags = 0;
        h->seq = 0;
        h->ts = 0;
      }  // fewer than 24 bytes left: the receiver skips them implicitly
      tail += pad;
      off = 0;
      ++wraps_;
    }
    claim_pos_ = tail;
    claim_len_ = len;
    return int64_t(off + kHeaderSize);
  }

  // Publishes the claimed record (journal: record bytes first, then tail — a crash in between loses only an
  // unaccepted record).
  uint64_t Commit(uint16_t type = kData) {
    uint64_t off = claim_pos_ & mask_;
    auto* h = reinterpret_cast<RecordHeader*>(mirror_ + off);
    uint64_t seq = hdr_->next_seq;
    h->len = claim_len_;
    h->type = type;
    h->flags = flags_;
    h->seq = seq;
    h->ts = wallNs();
    if (flags_ & kFlagChecksum) {
      const uint32_t crc = crc32c::of(mirror_ + off + kHeaderSize, claim_len_);
      std::memcpy(mirror_ + off + kHeaderSize + claim_len_, &crc, kChecksumSize);
    }
    std::atomic_thread_fence(std::memory_order_release);
    hdr_->next_seq = seq + 1;
    hdr_->tail = claim_pos_ + recordSize(claim_len_, flags_);
    if (type == kData) {  // probes and heartbeats are link traffic, not records (as on shm)
      ++records_;
      bytes_ += claim_len_;
    }
    return seq;
  }

  bool Send(const uint8_t* data, uint32_t len, uint16_t type = kData) {
    int64_t off = Claim(len);
    if (off < 0) return false;
    if (len) memcpy(mirror_ + off, data, len);
    Commit(type);
    return true;
  }

  // ---- connection ----
  // Joins the thread's shared endpoint for (provider, node) and registers mirror (local source) and credit
  // word (remote target) on it. The registrations live as long as this sender stays on that endpoint: a
  // reconnect keeps them. (A write with a key that is gone makes the target's provider shut the whole
  // connection — every link between the two processes — so keys are not rotated under a live peer. A credit
  // write of the previous connection that lands late carries a head at most the new start position: it is
  // ignored, see RefreshCredit.)
  void OpenFabric(const std::string& provider, const std::string& node) {
    CloseFabric();
    std::shared_ptr<FabricHub> hub = FabricHub::Acquire(provider, node, false, hub_.get());
    if (hub != hub_ || mrs_.size() != 3) {
      CloseFabric(true);
      Endpoint& ep = hub->ep();
      std::vector<fid_mr*> mrs;  // all three or none (a registration can fail half way)
      try {
        uint64_t k = 0;
        mrs.push_back(ep.Register(mirror_, cap_, FI_WRITE, &k));
        mrs.push_back(ep.Register(const_cast<uint64_t*>(&hdr_->credit), 8, FI_REMOTE_WRITE, &credit_key_));
        mrs.push_back(ep.Register(&hdr_->check, 8, FI_WRITE, &k));
      } catch (...) {
        for (fid_mr* mr : mrs) fi_close(&mr->fid);
        throw;
      }
      mrs_ = std::move(mrs);
      mirror_desc_ = fi_mr_desc(mrs_[0]);
      check_desc_ = fi_mr_desc(mrs_[2]);
      credit_addr_ = ep.RemoteBase(const_cast<uint64_t*>(&hdr_->credit));
      hub_ = std::move(hub);
    }
    Endpoint& ep = hub_->ep();
    token_ = hub_->AttachSender(this);
    attached_ = true;
    write_ctx_ = FabricHub::Context(token_, FabricHub::kWriteOp);
    check_ctx_ = FabricHub::Context(token_, FabricHub::kCheckOp);
    max_inflight_ = std::max<size_t>(1, std::min<size_t>(ep.summary().tx_size ? ep.summary().tx_size : 64, 64));
    max_chunk_ = std::min<uint64_t>(ep.summary().max_msg_size ? ep.summary().max_msg_size : cap_, kMaxWrite);
    max_chunk_ &= ~uint64_t(7);
    inflight_ = 0;
    failed_ = false;
  }
  // Ends the connection: completions of its writes that come later are dropped by the hub (stale generation).
  // final: also leave the endpoint (closes the registrations; the endpoint closes with its last link).
  void CloseFabric(bool final = false) {
    if (hub_ && attached_) hub_->DetachSender(token_);
    attached_ = false;
    if (hub_) hub_->DropPeer(&peer_);
    if (final && hub_) {
      // Writes of ours may still sit in the provider's queues (reading the mirror) and the receiver's last
      // credit write may be on its way to our key: the hub keeps both for a while (kBuryNs).
      hub_->Bury(std::move(mrs_), mem_);
      mrs_.clear();
      hub_.reset();
    }
    inflight_ = 0;
    connected_ = false;
    check_pending_ = false;
    hold_ = false;
  }

  // Where to resend from, given the receiver's next expected sequence: walks the unacknowledged records.
  // Returns {position, sequence}. want_seq < 0: start at the oldest unacknowledged record.
  std::pair<uint64_t, uint64_t> ResendPoint(int64_t want_seq) {
    RefreshCredit();
    uint64_t pos = acked_;
    uint64_t tail = hdr_->tail;
    while (pos < tail) {
      uint64_t off = pos & mask_;
      if (cap_ - off < kHeaderSize) {
        pos += cap_ - off;
        continue;
      }
      auto* h = reinterpret_cast<RecordHeader*>(mirror_ + off);
      if (h->type == kPadding) {
        pos += cap_ - off;
        continue;
      }
      if (want_seq < 0 || h->seq >= uint64_t(want_seq)) {
        if (want_seq >= 0 && h->seq > uint64_t(want_seq))
          Fail("ERR_RDMAQ_RESEND_GAP", "receiver expects sequence " + std::to_string(want_seq) +
                                           " but the oldest record still held is " + std::to_string(h->seq) +
                                           "; records in between were acknowledged and are gone");
        return {pos, h->seq};
      }
      pos += recordSize(h->len, h->flags);
    }
    uint64_t next = hdr_->next_seq;
    if (want_seq >= 0 && uint64_t(want_seq) != next)
      Fail("ERR_RDMAQ_RESEND_GAP", "receiver expects sequence " + std::to_string(want_seq) +
                                       " but this sender's next sequence is " + std::to_string(next));
    return {tail, next};
  }

  void Connect(const uint8_t* peer, size_t peerlen, uint64_t ring_base, uint64_t ring_key, uint32_t slot,
               uint64_t start_pos) {
    if (!attached_) Fail("ERR_RDMAQ_STATE", "connect before open");
    if (slot == 0 || slot >= kSlots)
      Fail("ERR_RDMAQ_HANDSHAKE", "receiver slot " + std::to_string(slot) + " is out of range 1.." +
                                      std::to_string(kSlots - 1));
    hub_->DropPeer(&peer_);
    peer_ = hub_->AddPeer(peer, peerlen);
    ring_base_ = ring_base;
    ring_key_ = ring_key;
    slot_bits_ = uint64_t(slot) << kSlotShift;
    sent_ = start_pos;
    // Anything before start_pos was delivered: it counts as acknowledged now.
    if (start_pos > acked_) acked_ = start_pos;
    connected_ = true;
  }

  // Reads the CQ and posts unsent bytes. Returns false if the link failed (error() says why).
  // post_first (flush(), the busy-spin path): post pending bytes first — the message leaves before the CQ
  // read's syscalls — and read the CQ only every 16th call, when writes pile up, or when not everything could
  // be posted. The pump keeps the read-first order below.
  bool Progress(bool post_first = false) {
    if (!hub_ || !attached_) return false;
    RefreshCredit();
    if (!connected_ || failed_) {
      ReadCq();
      return !failed_;
    }
    if (post_first) {
      if (!PostPending()) return false;
      if (sent_ == hdr_->tail && inflight_ < max_inflight_ / 2 && (++flushes_ & 15) != 0) return true;
    }
    // Read the CQ (completions, credit; drives the provider's progress), then post. Posting before the read
    // saved ~0.5 µs of one-way latency but left a later tcp;ofi_rxm link in the same process unable to
    // deliver (writes completed, the target's CQ stayed empty) after a net link was dropped for a protocol
    // error — not understood, so not done.
    ReadCq();
    RefreshCredit();
    if (failed_) return false;
    return PostPending();
  }

  bool PostPending() {
    if (check_pending_) {
      ssize_t rc = fi_writedata(hub_->ep().ep(), &hdr_->check, 8, check_desc_, kCheckFlag | slot_bits_, peer_,
                                ring_base_ + (sent_ & mask_), ring_key_, check_ctx_);
      if (rc == -FI_EAGAIN) return true;  // data waits behind the test write
      if (rc != 0) {
        SetFailed("the handshake's test write failed", int(rc));
        return false;
      }
      check_pending_ = false;
    }
    // Until the receiver confirmed the test write ("ready"), no data: it would land on the same bytes.
    if (hold_) return true;
    uint64_t tail = hdr_->tail;
    while (sent_ < tail && inflight_ < max_inflight_) {
      uint64_t off = sent_ & mask_;
      uint64_t len = std::min<uint64_t>({tail - sent_, cap_ - off, max_chunk_});
      ssize_t rc = fi_writedata(hub_->ep().ep(), mirror_ + off, len, mirror_desc_, len | slot_bits_, peer_,
                                ring_base_ + off, ring_key_, write_ctx_);
      if (rc == -FI_EAGAIN) break;  // tx queue full or rxm connection not up yet: retried after progress
      if (rc != 0) {
        SetFailed("fi_writedata failed", int(rc));
        return false;
      }
      ++inflight_;
      ++writes_;
      sent_ += len;
    }
    return !failed_;
  }

  // The handshake's test write: 8 bytes (value) into the free ring space at the start position, CQ data with
  // kCheckFlag. The receiver answers "ready" only when it arrived intact, so a wrong ring key or address
  // (which these providers drop silently) fails the handshake instead of stalling the link.
  void WriteCheck(uint64_t value) {
    hdr_->check = value;
    check_pending_ = true;
    hold_ = true;  // posted by Progress(): rxm answers -FI_EAGAIN until its connection is up
    Progress();
  }

  // The next connection opens a new endpoint (see FabricHub::Abandon); leaves this one.
  void AbandonEndpoint() {
    if (hub_) hub_->Abandon();
    CloseFabric(true);
  }

  // Test hook: the credit word as a late credit write of an older connection would leave it.
  void ForgeCredit(uint64_t value) { hdr_->credit = value; }

  // Test hook: this connection stops posting data, as a wedged provider connection would (records wait,
  // nothing arrives, the control connection stays alive). The next connection posts again.
  void ForgeWedge() { hold_ = true; }

  // Test hook: a write whose remote CQ data lies (out-of-range tail delta).
  void ForgeWrite(uint64_t len, uint64_t data) {
    if (!attached_ || !connected_) Fail("ERR_RDMAQ_STATE", "forgeWrite needs a connected link");
    uint64_t off = sent_ & mask_;
    len = std::min<uint64_t>(len, cap_ - off);
    if (fi_writedata(hub_->ep().ep(), mirror_ + off, len, mirror_desc_, (data & kDeltaMask) | slot_bits_, peer_,
                     ring_base_ + off, ring_key_, write_ctx_) == 0)
      ++inflight_;
  }

  uint64_t tail() const { return hdr_->tail; }
  uint64_t sent() const { return sent_; }
  uint64_t acked() const { return acked_; }
  uint64_t next_seq() const { return hdr_->next_seq; }
  uint64_t stream_id() const { return hdr_->stream_id; }
  uint64_t capacity() const { return cap_; }
  bool recovered() const { return recovered_; }
  size_t inflight() const { return inflight_; }
  bool failed() const { return failed_; }
  const RdmaqError& error() const { return error_; }
  Endpoint& ep() { return hub_->ep(); }
  size_t endpoint_links() const { return hub_ && attached_ ? hub_->links() : 0; }
  uint8_t* mirror() const { return mirror_; }
  uint64_t credit_key() const { return credit_key_; }
  uint64_t credit_addr() const { return credit_addr_; }
  bool idle() const { return sent_ == hdr_->tail && inflight_ == 0 && !check_pending_; }

  uint64_t records_ = 0, bytes_ = 0, writes_ = 0, completions_ = 0, credits_ = 0, backpressure_ = 0,
           wraps_ = 0, cq_errors_ = 0;

 private:
  void RefreshCredit() {
    uint64_t c = hdr_->credit;  // written by the NIC/provider; volatile read
    // Never beyond what exists: a late or forged credit write while not connected would otherwise make
    // Free() underflow (found in review of the fuzzing work).
    if (c > hdr_->tail && !connected_) return;
    if (c > acked_) {
      if (c > sent_ && connected_) {
        SetFailed("receiver returned credit beyond what was sent (" + std::to_string(c) + " > " +
                      std::to_string(sent_) + ")",
                  0, "ERR_RDMAQ_PROTOCOL");
        return;
      }
      acked_ = c;
      ++credits_;
    }
  }
  // Manual progress of the shared endpoint; our own completions come back through the On* calls below.
  void ReadCq() {
    if (!hub_) return;
    hub_->Drain();
    if (hub_->failed()) SetFailed(hub_->error().message, -hub_->error().err);
  }
  void SetFailed(const std::string& what, int rc, const char* code = "ERR_RDMAQ_FABRIC") {
    if (failed_) return;
    failed_ = true;
    error_ = RdmaqError(code, rc ? what + ": " + FiText(rc) : what, rc < 0 ? -rc : rc, true);
  }

  uint64_t cap_, mask_;
  uint16_t flags_ = 0;  // record.h flags of every record this sender writes (kFlagChecksum)
  std::shared_ptr<Mapping> mem_;
  JournalHeader* hdr_ = nullptr;
  uint8_t* mirror_ = nullptr;
  bool recovered_ = false;
  uint64_t acked_ = 0, sent_ = 0;
  uint64_t claim_pos_ = 0;
  uint32_t claim_len_ = 0;
  std::shared_ptr<FabricHub> hub_;
  uint64_t token_ = 0;
  bool attached_ = false;     // a connection is open (token_ valid)
  std::vector<fid_mr*> mrs_;  // registrations on hub_ (mirror, credit word, check word)
  void* mirror_desc_ = nullptr;
  uint64_t credit_key_ = 0, credit_addr_ = 0;
  fi_addr_t peer_ = FI_ADDR_NOTAVAIL;
  uint64_t ring_base_ = 0, ring_key_ = 0, slot_bits_ = 0;
  size_t max_inflight_ = 16, inflight_ = 0;
  uint64_t max_chunk_ = kMaxWrite;
  bool connected_ = false, failed_ = false;
  RdmaqError error_;
  void* write_ctx_ = nullptr;  // op contexts: the hub's encoding of (this sender, generation, kind)
  void* check_ctx_ = nullptr;
  void* check_desc_ = nullptr;
  bool check_pending_ = false;
  bool hold_ = false;
  uint64_t flushes_ = 0;

 public:
  // The receiver confirmed the test write: data may flow.
  void StartData() { hold_ = false; }

  // ---- called by FabricHub::Drain() ----
  void OnWriteDone() {
    if (inflight_) --inflight_;
    ++completions_;
  }
  void OnError(FabricHub::Kind kind, const std::string& provider_text, int err) {
    ++cq_errors_;
    if (kind == FabricHub::kWriteOp && inflight_) --inflight_;
    if (kind == FabricHub::kCheckOp) {
      SetFailed("the handshake's test write failed", -err);
      return;
    }
    SetFailed("write completed with an error (" + provider_text + ")", -err);
  }
};

}  // namespace rdmaq::fabric

// rdmaq fabric transport engine: the ring protocol over libfabric RMA (no N-API here; fabric_napi.h wraps it).
//
// Receiver: registers its ring (FI_REMOTE_WRITE). Sender: keeps a registered mirror of the ring at the same
// offsets and writes each batch with fi_writedata; the remote CQ data is the number of bytes the tail moved
// (32 bits, so it fits verbs' 4-byte CQ data). The receiver reads its CQ, consumes, and returns credit by
// writing its head position into a registered word on the sender (fi_inject_writedata, so a sender that
// sleeps on its CQ would also see an event). Progress is manual on every provider we use: both sides must
// keep calling poll()/progress() — a sender waiting for credit keeps polling its own CQ.
//
// Endpoints are shared (FabricHub): every link end of a thread on one (provider, local address) uses one RDM
// endpoint, one CQ and one AV. A request and its reply then travel on one connection (bench/endpoint-layout:
// one-way latency 0.70-0.75x that of an endpoint per link end; 2.0 TCP segments per round trip instead of
// 3.0), and a host with thousands of links pays for one set of provider buffers, not one per link. The
// receiver's slot in the remote CQ data routes each incoming write to its ring (see kSlotShift).
//
// Threading: one object is used by one thread (the JS thread); FI_THREAD_DOMAIN matches that, and hubs are
// per thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fabric_record.h"

namespace rdmaq_fabric {

// The record format (RecordHeader, kHeader, Align8, Delivered) and the receiver's record parsing live in
// fabric_record.h (pure functions: fuzzed and tested natively without libfabric).
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
// already on its way must find its key (Learnt 9), and by then the peer has long seen `bye` or the EOF.
constexpr uint64_t kBuryNs = 30'000'000'000ull;
constexpr uint64_t kMaxWrite = 1ull << 20;
inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// An error with a stable code; fabric_napi.h turns it into a JS Error {code, errno, fiError}.
struct FabricError {
  std::string code;
  std::string message;
  int err = 0;  // positive libfabric/OS errno, 0 if none
};

inline std::string FiText(int rc) {
  int e = rc < 0 ? -rc : rc;
  return std::string(fi_strerror(e)) + " (" + std::to_string(-e) + ")";
}

[[noreturn]] inline void Fail(const std::string& code, const std::string& what, int rc = 0) {
  FabricError e;
  e.code = code;
  e.err = rc < 0 ? -rc : rc;
  e.message = rc ? what + ": " + FiText(rc) : what;
  throw e;
}

inline std::set<std::string> ProviderNames() {
  std::set<std::string> names;
  fi_info* list = nullptr;
  if (fi_getinfo(FI_VERSION(1, 17), nullptr, nullptr, 0, nullptr, &list) == 0) {
    for (fi_info* p = list; p; p = p->next)
      if (p->fabric_attr && p->fabric_attr->prov_name) names.insert(p->fabric_attr->prov_name);
    fi_freeinfo(list);
  }
  return names;
}

inline bool IsHardwareProvider(const std::string& p) {
  static const char* hw[] = {"verbs", "efa", "psm2", "psm3", "opx", "cxi", "usnic", "ucx"};
  std::string first = p.substr(0, p.find(';'));
  for (const char* h : hw)
    if (first == h) return true;
  return false;
}

// What the fi_info we got says, kept for adaptation and for the JS side (describe()).
struct InfoSummary {
  std::string provider, fabric, domain;
  uint64_t mode = 0, mr_mode = 0, caps = 0, msg_order = 0;
  size_t cq_data_size = 0, inject_size = 0, tx_size = 0, rx_size = 0, max_msg_size = 0, mr_key_size = 0;
  uint32_t addr_format = 0;
  size_t addrlen = 0;
};

// One endpoint with its fabric, domain, CQ and AV. A FabricHub owns it and shares it among link ends; each
// link registers its own memory on it (see FabricHub for when those keys may be closed).
class Endpoint {
 public:
  Endpoint() = default;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;
  ~Endpoint() { Close(); }

  // provider e.g. "net", "tcp;ofi_rxm", "verbs;ofi_rxm"; node: local IP for IP providers ("" → none).
  void Open(const std::string& provider, const std::string& node, size_t cq_size) {
    Close();
    fi_info* hints = fi_allocinfo();
    if (!hints) Fail("ERR_RDMAQ_FABRIC", "fi_allocinfo failed (out of memory)");
    hints->caps = FI_RMA | FI_WRITE | FI_REMOTE_WRITE;
    hints->mode = FI_RX_CQ_DATA;  // we can post receives if the provider needs them (verbs)
    hints->ep_attr->type = FI_EP_RDM;
    hints->domain_attr->threading = FI_THREAD_DOMAIN;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
    hints->fabric_attr->prov_name = strdup(provider.c_str());
    bool shm = provider == "shm";
    uint64_t flags = 0;
    const char* nodep = nullptr;
    if (!node.empty() && !shm) {  // shm + node + FI_SOURCE makes both processes claim the same region name
      nodep = node.c_str();
      flags = FI_SOURCE;
    }
    int rc = fi_getinfo(FI_VERSION(1, 17), nodep, nullptr, flags, hints, &info_);
    if (rc == 0 && (info_->mode & FI_RX_CQ_DATA) && !(info_->caps & FI_MSG)) {
      // The provider keeps FI_RX_CQ_DATA (verbs): remote CQ data consumes posted receives, and fi_recv needs
      // the message capability. Ask again with it.
      fi_freeinfo(info_);
      info_ = nullptr;
      hints->caps |= FI_MSG | FI_RECV;
      rc = fi_getinfo(FI_VERSION(1, 17), nodep, nullptr, flags, hints, &info_);
    }
    fi_freeinfo(hints);
    if (rc != 0) {
      info_ = nullptr;
      std::set<std::string> names = ProviderNames();
      std::string have;
      for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
      std::string first = provider.substr(0, provider.find(';'));
      if (rc == -FI_ENODATA && IsHardwareProvider(provider))
        Fail("ERR_RDMAQ_NO_DEVICE",
             "no RDMA device found (" + first + "): libfabric's " + first +
                 " provider found no usable device on this host (fi_getinfo returned -FI_ENODATA); use an "
                 "Ethernet provider instead (available here: " + have + ")");
      if (rc == -FI_ENODATA && !names.count(first))
        Fail("ERR_RDMAQ_NO_PROVIDER",
             "unknown libfabric provider \"" + provider + "\"; the providers available here are: " + have);
      if (rc == -FI_ENODATA)
        Fail("ERR_RDMAQ_NO_PROVIDER",
             "libfabric provider \"" + provider + "\" cannot serve a reliable-datagram endpoint with RMA write" +
                 (nodep ? " on address " + node : std::string()) +
                 " (fi_getinfo returned -FI_ENODATA); try \"net\" or \"tcp;ofi_rxm\"");
      Fail("ERR_RDMAQ_FABRIC", "fi_getinfo(" + provider + ") failed", rc);
    }
    Summarise();
    if (summary_.cq_data_size < 4)
      Fail("ERR_RDMAQ_NO_PROVIDER", "provider " + provider + " carries only " +
                                        std::to_string(summary_.cq_data_size) +
                                        " bytes of remote CQ data; rdmaq needs at least 4");
    Check(fi_fabric(info_->fabric_attr, &fabric_, nullptr), "fi_fabric");
    Check(fi_domain(fabric_, info_, &domain_, nullptr), "fi_domain");
    OpenCq(cq_size);
    fi_av_attr av_attr{};
    av_attr.type = FI_AV_TABLE;
    av_attr.count = 256;  // a hint: the table grows
    Check(fi_av_open(domain_, &av_attr, &av_, nullptr), "fi_av_open");
    Check(fi_endpoint(domain_, info_, &ep_, nullptr), "fi_endpoint");
    Check(fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)");
    Check(fi_ep_bind(ep_, &av_->fid, 0), "fi_ep_bind(av)");
    Check(fi_enable(ep_), "fi_enable");
    size_t len = sizeof(addr_);
    Check(fi_getname(&ep_->fid, addr_, &len), "fi_getname");
    addrlen_ = len;
  }

  // Registers [buf, buf+len) with the given access; returns the registration (the caller closes it) and its
  // key. Keys are requested (net and tcp;ofi_rxm drop FI_MR_PROV_KEY: mr_mode comes back 0) and must be unique
  // in the domain, which every link of the hub shares: a random one makes a stale or guessed key unlikely to
  // match, and a collision (-FI_ENOKEY) draws another.
  fid_mr* Register(void* buf, size_t len, uint64_t access, uint64_t* key_out) {
    std::random_device rd;
    fid_mr* mr = nullptr;
    int rc = 0;
    for (int attempt = 0; attempt < 16; ++attempt) {
      uint64_t want = (uint64_t(rd()) & 0x7fffffff) | 1;
      if (summary_.mr_key_size && summary_.mr_key_size < 4) want &= (1ull << (8 * summary_.mr_key_size)) - 1;
      rc = fi_mr_reg(domain_, buf, len, access, 0, want, 0, &mr, nullptr);
      if (rc != -FI_ENOKEY && rc != -EEXIST) break;
    }
    Check(rc, "fi_mr_reg");
    if (summary_.mr_mode & FI_MR_ENDPOINT) {
      int brc = fi_mr_bind(mr, &ep_->fid, 0);
      if (brc == 0) brc = fi_mr_enable(mr);
      if (brc != 0) {
        fi_close(&mr->fid);
        Check(brc, "fi_mr_bind/fi_mr_enable");
      }
    }
    *key_out = fi_mr_key(mr);
    return mr;
  }
  // Target addresses: VIRT_ADDR providers want the buffer's virtual address, the others an offset.
  uint64_t RemoteBase(const void* buf) const {
    return (summary_.mr_mode & FI_MR_VIRT_ADDR) ? uint64_t(uintptr_t(buf)) : 0;
  }

  fi_addr_t InsertPeer(const uint8_t* addr, size_t len) {
    if (len != addrlen_)
      Fail("ERR_RDMAQ_HANDSHAKE", "peer fabric address has " + std::to_string(len) + " bytes; provider " +
                                      summary_.provider + " uses " + std::to_string(addrlen_));
    fi_addr_t out = FI_ADDR_NOTAVAIL;
    int rc = fi_av_insert(av_, addr, 1, &out, 0, nullptr);
    if (rc != 1) Fail("ERR_RDMAQ_HANDSHAKE", "fi_av_insert rejected the peer's fabric address", rc < 0 ? rc : 0);
    return out;
  }
  void RemovePeer(fi_addr_t a) { fi_av_remove(av_, &a, 1, 0); }

  // Stops the endpoint's traffic; MRs can then be closed before Close() takes the domain down.
  void CloseEp() {
    if (ep_) fi_close(&ep_->fid);
    ep_ = nullptr;
  }
  void Close() {
    // Order matters: endpoint first (stops traffic), then AV, CQ, domain, fabric. Every MR is closed by then
    // (by its link, or by FabricHub's destructor for buried ones).
    CloseEp();
    if (av_) fi_close(&av_->fid);
    av_ = nullptr;
    if (cq_) fi_close(&cq_->fid);
    cq_ = nullptr;
    wait_fd_ = -1;
    if (domain_) fi_close(&domain_->fid);
    domain_ = nullptr;
    if (fabric_) fi_close(&fabric_->fid);
    fabric_ = nullptr;
    if (info_) fi_freeinfo(info_);
    info_ = nullptr;
  }

  bool open() const { return ep_ != nullptr; }
  // The CQ's pollable wait fd (an epoll fd on the IP providers, the ibv_comp_channel on verbs), or -1 when the
  // provider has none; then wait_note() says why in plain words.
  int wait_fd() const { return wait_fd_; }
  const std::string& wait_note() const { return wait_note_; }
  // The fi_trywait half of the sleep protocol (docs: notes/cq-wait-here.md): 0 = armed, the wait fd will turn
  // readable on the next completion; -FI_EAGAIN = completions (or progress) pending: drain, then try again.
  // Never called without a wait fd: fi_trywait on a FI_WAIT_NONE CQ crashes inside libfabric 1.17.
  int TryWait() {
    if (wait_fd_ < 0 || !cq_) return -FI_ENOSYS;
    fid* f = &cq_->fid;
    return fi_trywait(fabric_, &f, 1);
  }
  fid_ep* ep() const { return ep_; }
  fid_cq* cq() const { return cq_; }
  fi_info* info() const { return info_; }
  const InfoSummary& summary() const { return summary_; }
  const uint8_t* addr() const { return addr_; }
  size_t addrlen() const { return addrlen_; }

  std::string StrAddr(const uint8_t* a, size_t len) const {
    char buf[256];
    size_t n = sizeof(buf);
    (void)len;
    fi_av_straddr(av_, a, buf, &n);
    buf[sizeof(buf) - 1] = 0;
    return buf;
  }

 private:
  void Check(int rc, const char* what) {
    if (rc != 0) Fail("ERR_RDMAQ_FABRIC", std::string(what) + " failed on provider " + summary_.provider, rc);
  }
  // Opens the CQ with a pollable fd where the provider has one, so an idle consumer can sleep on the CQ
  // itself (uv_poll) instead of being woken by its peer. FI_WAIT_FD is asked explicitly: FI_WAIT_UNSPEC gives
  // net's FI_WAIT_POLLFD (a struct, not an int). shm and efa (1.17) have none (-FI_ENOSYS): they are not even
  // asked, and any other refusal falls back to FI_WAIT_NONE with the reason kept for stats and logs.
  void OpenCq(size_t cq_size) {
    fi_cq_attr cq_attr{};
    cq_attr.size = cq_size;
    cq_attr.format = FI_CQ_FORMAT_DATA;
    const std::string first = summary_.provider.substr(0, summary_.provider.find(';'));
    wait_fd_ = -1;
    wait_note_.clear();
    if (first == "shm" || first == "efa" || getenv("RDMAQ_FABRIC_NO_WAIT_FD")) {
      wait_note_ = "provider " + summary_.provider +
                   (first == "shm" || first == "efa" ? " has no completion-queue wait fd in libfabric 1.17"
                                                     : " asked not to use a wait fd (RDMAQ_FABRIC_NO_WAIT_FD)");
    } else {
      cq_attr.wait_obj = FI_WAIT_FD;
      cq_attr.wait_cond = FI_CQ_COND_NONE;
      int rc = fi_cq_open(domain_, &cq_attr, &cq_, nullptr);
      if (rc == 0) {
        enum fi_wait_obj obj = FI_WAIT_NONE;
        int fd = -1;
        // The argument type of FI_GETWAIT depends on the wait object (a wrong one corrupts the stack): ask
        // which object we got first, and take the fd only for FI_WAIT_FD.
        int orc = fi_control(&cq_->fid, FI_GETWAITOBJ, &obj);
        int grc = orc == 0 && obj == FI_WAIT_FD ? fi_control(&cq_->fid, FI_GETWAIT, &fd) : -FI_ENOSYS;
        if (grc == 0 && fd >= 0) {
          wait_fd_ = fd;
          return;
        }
        wait_note_ = "provider " + summary_.provider + " opened its completion queue but gave no wait fd (" +
                     (orc ? FiText(orc) : grc ? FiText(grc) : "wait object " + std::to_string(int(obj))) + ")";
        fi_close(&cq_->fid);
        cq_ = nullptr;
      } else {
        wait_note_ = "provider " + summary_.provider + " has no completion-queue wait fd (fi_cq_open: " +
                     FiText(rc) + ")";
      }
    }
    cq_attr.wait_obj = FI_WAIT_NONE;
    Check(fi_cq_open(domain_, &cq_attr, &cq_, nullptr), "fi_cq_open");
  }
  void Summarise() {
    InfoSummary& s = summary_;
    s.provider = info_->fabric_attr->prov_name ? info_->fabric_attr->prov_name : "";
    s.fabric = info_->fabric_attr->name ? info_->fabric_attr->name : "";
    s.domain = info_->domain_attr->name ? info_->domain_attr->name : "";
    s.mode = info_->mode;
    s.mr_mode = uint64_t(info_->domain_attr->mr_mode);
    s.caps = info_->caps;
    s.cq_data_size = info_->domain_attr->cq_data_size;
    s.mr_key_size = info_->domain_attr->mr_key_size;
    s.inject_size = info_->tx_attr->inject_size;
    s.tx_size = info_->tx_attr->size;
    s.rx_size = info_->rx_attr->size;
    s.msg_order = info_->tx_attr->msg_order;
    s.max_msg_size = info_->ep_attr->max_msg_size;
    s.addr_format = info_->addr_format;
    s.addrlen = info_->src_addrlen;
  }

  fi_info* info_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_av* av_ = nullptr;
  fid_ep* ep_ = nullptr;
  uint8_t addr_[256];
  size_t addrlen_ = 0;
  int wait_fd_ = -1;  // owned by the CQ (closed with it)
  std::string wait_note_;
  InfoSummary summary_;
};

// Memory that is either anonymous or a file mapping (the sender's journal). Page aligned.
struct Mapping {
  uint8_t* base = nullptr;
  size_t len = 0;
  int fd = -1;
  bool existed = false;
  void MapAnon(size_t n) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) Fail("ERR_RDMAQ_NOMEM", "could not map " + std::to_string(n) + " bytes", -errno);
    base = static_cast<uint8_t*>(p);
    len = n;
  }
  void MapFile(const std::string& path, size_t n) {
    struct stat st;
    existed = stat(path.c_str(), &st) == 0 && size_t(st.st_size) == n;
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) Fail("ERR_RDMAQ_JOURNAL", "cannot open journal file " + path + ": " + strerror(errno));
    if (!existed && ftruncate(fd, off_t(n)) != 0)
      Fail("ERR_RDMAQ_JOURNAL", "cannot size journal file " + path + ": " + strerror(errno));
    // MAP_SHARED: stores reach the page cache at once, so a kill -9 of the sender loses nothing accepted.
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) Fail("ERR_RDMAQ_JOURNAL", "cannot map journal file " + path + ": " + strerror(errno));
    base = static_cast<uint8_t*>(p);
    len = n;
  }
  ~Mapping() {
    if (base) munmap(base, len);
    if (fd >= 0) close(fd);
  }
};

// ---------------------------------------------------------------------------------------------------------
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
  // keeps it, Learnt 9).
  void Abandon() { abandoned_ = true; }
  const FabricError& error() const { return error_; }
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
  // connection itself unless FI_AV_REMOVE_CLEANUP is set; Learnt 9).
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
    graveyard_.push_back({NowNs() + kBuryNs, std::move(mrs), std::move(mem)});
  }

  inline void Drain();  // defined after SenderCore and ReceiverCore
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
    const uint64_t now = NowNs();
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
    error_.code = "ERR_RDMAQ_FABRIC";
    error_.err = rc < 0 ? -rc : rc;
    error_.message = what + ": " + FiText(rc);
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
  FabricError error_;
};

// ---------------------------------------------------------------------------------------------------------
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
  uint64_t MaxPayload() const { return cap_ / 2 - kHeader; }

  // Reserves room for a record of `len` payload bytes; returns the mirror offset of the payload or -1 when
  // the ring is full (back-pressure). Writes PADDING first if the record would straddle the end.
  int64_t Claim(uint32_t len) {
    if (len > MaxPayload())
      Fail("ERR_RDMAQ_TOO_LARGE", "record of " + std::to_string(len) + " bytes exceeds the maximum of " +
                                      std::to_string(MaxPayload()) + " (half the ring minus the header)");
    RefreshCredit();
    uint64_t need = Align8(kHeader + len);
    uint64_t tail = hdr_->tail;
    uint64_t off = tail & mask_;
    uint64_t pad = cap_ - off < need ? cap_ - off : 0;
    if (pad + need > Free()) {
      ++backpressure_;
      return -1;
    }
    if (pad) {
      if (pad >= kHeader) {
        auto* h = reinterpret_cast<RecordHeader*>(mirror_ + off);
        h->length = uint32_t(pad - kHeader);
        h->type = kPadding;
        h->flags = 0;
        h->seq = 0;
        h->timestamp_ns = 0;
      }  // fewer than 24 bytes left: the receiver skips them implicitly
      tail += pad;
      off = 0;
      ++wraps_;
    }
    claim_pos_ = tail;
    claim_len_ = len;
    return int64_t(off + kHeader);
  }

  // Publishes the claimed record (journal: record bytes first, then tail — a crash in between loses only an
  // unaccepted record).
  uint64_t Commit(uint16_t type = kData) {
    uint64_t off = claim_pos_ & mask_;
    auto* h = reinterpret_cast<RecordHeader*>(mirror_ + off);
    uint64_t seq = hdr_->next_seq;
    h->length = claim_len_;
    h->type = type;
    h->flags = 0;
    h->seq = seq;
    h->timestamp_ns = NowNs();
    std::atomic_thread_fence(std::memory_order_release);
    hdr_->next_seq = seq + 1;
    hdr_->tail = claim_pos_ + Align8(kHeader + claim_len_);
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
      if (cap_ - off < kHeader) {
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
      pos += Align8(kHeader + h->length);
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
  const FabricError& error() const { return error_; }
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
    error_.code = code;
    error_.err = rc < 0 ? -rc : rc;
    error_.message = rc ? what + ": " + FiText(rc) : what;
  }

  uint64_t cap_, mask_;
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
  FabricError error_;
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

// ---------------------------------------------------------------------------------------------------------
// Receiver: the ring (registered for remote write). Delivers views: poll() fills a descriptor list (Delivered,
// fabric_record.h), the caller reads the payloads, then Release() frees the bytes and maybe returns credit.

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
  // memory) are buried, since the sender may still be writing until it reads `bye` (Learnt 9).
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
    if (t.fault != ParseTally::kNone) SetFailed(ParseFaultText(t), "ERR_RDMAQ_BAD_HEADER");
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
      bytes_ -= out[i].length;
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
  const FabricError& error() const { return error_; }
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
    error_.code = code;
    error_.message = what;
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
  FabricError error_;
  uint64_t check_value_ = 0, check_got_ = 0;
  bool check_arrived_ = false;  // this connection's test write landed (value in check_got_)
};

// Reads the shared CQ until it is empty (this is also what makes incoming writes land: progress is manual) and
// routes every entry; see FabricHub. Not re-entrant: the cores' On* calls do not drain.
inline void FabricHub::Drain() {
  if (failed_ || draining_ || !ep_.open()) return;
  if (!graveyard_.empty() && (++drains_ & 4095) == 0) Sweep();
  draining_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{draining_};
  fi_cq_data_entry e[64];
  for (;;) {
    ssize_t n = fi_cq_read(ep_.cq(), e, 64);
    if (n == -FI_EAGAIN) break;
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(ep_.cq(), &err, 0) != 1) break;
      Kind kind;
      SenderCore* s = SenderOf(err.op_context, &kind);
      if (s) {
        char buf[256];
        const char* pe = fi_cq_strerror(ep_.cq(), err.prov_errno, err.err_data, buf, sizeof(buf));
        s->OnError(kind, pe ? pe : "?", int(err.err));
      } else if (kind == kRecvOp && rx_cq_data_ && err.err != FI_ECANCELED) {
        PostRecv();  // otherwise: a completion of a link that left, nobody to tell
      }
      continue;
    }
    if (n < 0) {
      SetFailed("fi_cq_read failed", int(n));
      break;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (e[i].flags & FI_REMOTE_WRITE) {
        if (rx_cq_data_) PostRecv();  // it consumed one (verbs)
        // verbs carries 4 bytes of CQ data: everything is defined in the low 32 bits.
        uint64_t data = e[i].data & 0xffffffffull;
        uint32_t slot = uint32_t(data >> kSlotShift) & (kSlots - 1);
        if (slot == 0) continue;  // a credit write: the word itself carries the value
        if (ReceiverCore* r = receivers_[slot]) r->OnRemoteWrite(data);  // none: a late write of a closed link
        continue;
      }
      Kind kind;
      SenderCore* s = SenderOf(e[i].op_context, &kind);
      if (s && kind == kWriteOp) s->OnWriteDone();
      // kCheckOp: the test write left; the receiver's "ready" is what counts.
    }
    if (n < 64) break;
  }
  if (parked_data_) {
    parked_data_ = false;
    if (sleepers) sleepers->ParkedDataRouted();
  }
}

// Parses an IP provider's fabric address (sockaddr_in / sockaddr_in6) into "ip" and port; "" if another format.
inline std::string SockaddrIp(const uint8_t* a, size_t len, int* port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  *port = -1;
  if (len >= sizeof(sockaddr_in)) {
    sockaddr_in sin;
    memcpy(&sin, a, sizeof(sin));
    if (sin.sin_family == AF_INET) {
      inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof(buf));
      *port = ntohs(sin.sin_port);
      return buf;
    }
  }
  if (len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 sin6;
    memcpy(&sin6, a, sizeof(sin6));
    if (sin6.sin6_family == AF_INET6) {
      inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof(buf));
      *port = ntohs(sin6.sin6_port);
      return buf;
    }
  }
  return "";
}

}  // namespace rdmaq_fabric

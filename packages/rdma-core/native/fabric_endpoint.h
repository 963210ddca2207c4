// The fabric transport's endpoint: one libfabric fabric, domain, CQ and AV with an RDM endpoint, opened from
// the fi_info a provider offers (and adapted to what it says: posted receives, key sizes, wait fds), plus
// memory registration. A FabricHub (fabric_hub.h) owns one and shares it among the link ends of a thread.
//
// Threading: one object is used by one thread (the JS thread); FI_THREAD_DOMAIN matches that.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "error.h"

namespace rdmaq::fabric {

// libfabric's text for a return code: "Connection refused (-111)".
inline std::string FiText(int rc) {
  int e = rc < 0 ? -rc : rc;
  return std::string(fi_strerror(e)) + " (" + std::to_string(-e) + ")";
}

// Throws the fabric transport's RdmaqError: `what`, with libfabric's text of `rc` when there is one (JS also
// gets `fiError`).
[[noreturn]] inline void Fail(const std::string& code, const std::string& what, int rc = 0) {
  throw RdmaqError(code, rc ? what + ": " + FiText(rc) : what, rc < 0 ? -rc : rc, true);
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

}  // namespace rdmaq::fabric

// The fabric transport's engine (no N-API here; the *_napi.h files wrap it): the ring protocol over libfabric
// RMA, in parts —
//   fabric_endpoint.h  Endpoint: fabric, domain, CQ, AV and RDM endpoint from one provider's fi_info
//   fabric_mapping.h   Mapping: anonymous memory or the sender's journal file
//   fabric_hub.h       FabricHub: one endpoint shared by a thread's link ends; remote CQ data encoding
//   fabric_sender.h    SenderCore: the mirror, fi_writedata of batches, credit, resend point, journal
//   fabric_receiver.h  ReceiverCore: the registered ring, tail from the CQ, parsing, credit writes
//   fabric_parse.h     the receiver's record parsing, libfabric-free (fuzzed and tested natively)
// and here the one function that knows both cores: FabricHub::Drain, which routes every CQ entry to its link.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include "fabric_hub.h"
#include "fabric_receiver.h"
#include "fabric_sender.h"

namespace rdmaq::fabric {

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

}  // namespace rdmaq::fabric

// The seam between the ring protocol (native/ring.h) and the way bytes reach the other side.
//
// The ring protocol (record format, sequence numbers, padding, validation, back-pressure) is the same on every
// transport. What differs is where the ring's bytes and counters live and how the two ends learn about each
// other's progress. The seam's one implementation is shm (native/shm_link.h): one shared file holds the
// control block and the data region; the producer writes the record in place and publishes `tail` with a
// release store; the consumer publishes `head` with a release store. Wake-up through FIFOs, used only when
// the other side is parked.
//
// The fabric transport (native/fabric_engine.h) does not go through this seam: its cores keep the same ring
// layout and record format (record.h) but own their progress — the sender writes records into a registered
// mirror and issues fi_writedata of [oldTail, newTail) with remote CQ data = how far the tail moved; the
// receiver reads its CQ and returns head as credit into a registered word on the sender.
//
// Positions are byte counters that only grow (index = position & (capacity - 1)), exactly as in DESIGN §2.
// A transport never interprets records; the protocol never touches a socket, a CQ or a file.
//
// Threading: every method is called from the one thread that owns the link (the Node main thread, or the
// benchmark engine's thread). Implementations need no locks; memory ordering across processes/hosts is
// their business (documented per method).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace rdmaq {

// Cumulative per-link counters kept in native memory; transports bump the ones they own
// (completions, creditUpdates, errors) and the protocol the rest. Read by stats() in one call.
struct LinkCounters {
  uint64_t records = 0;        // DATA records sent (sender) / delivered (receiver)
  uint64_t bytes = 0;          // payload bytes of those records
  uint64_t completions = 0;    // transport completions (fabric: CQ entries; shm: publications seen by poll)
  uint64_t creditUpdates = 0;  // head publications returned to the producer
  uint64_t backpressure = 0;   // episodes of a full ring (first refused send/claim after a success)
  uint64_t wraps = 0;          // times the position wrapped to offset 0 (PADDING or implicit)
  uint64_t resends = 0;        // records resent after a reconnect
  uint64_t reconnects = 0;     // handshakes after the first
  uint64_t wakeups = 0;        // wake-up signals written to the peer (syscalls on the data path)
  std::map<std::string, uint64_t> errors;  // by kind: bad_header, peer_gone, handshake, wake, ...
};

// Producer end. Owned by the native Sender; exactly one per link.
class TxTransport {
 public:
  virtual ~TxTransport() = default;

  // Name for stats(): "shm" or "fabric", and the provider ("shm" for the shm transport, else fi_info's name).
  virtual const char* transport() const = 0;
  virtual std::string provider() const = 0;

  // Ring data region the producer writes records into, `capacity()` bytes (a power of two).
  // shm: the shared ring itself. fabric: the registered mirror (same offsets as the remote ring).
  virtual uint8_t* data() = 0;
  virtual uint64_t capacity() const = 0;

  // Consumer position as far as the producer knows (credit). Must be an acquire read: bytes below the
  // returned head may be overwritten. shm: acquire load of the shared head. fabric: the credit word.
  virtual uint64_t head() = 0;
  // Producer position at attach time and the sequence the record there will carry (shm: tail and tailSeq
  // from the control block, so a restarted sender continues the sequence; fabric: 0 and 1 on a fresh ring,
  // or what the handshake says after a reconnect).
  virtual uint64_t initialTail() = 0;
  virtual uint64_t initialSeq() = 0;

  // Makes the records in [oldTail, newTail) visible to the consumer. shm: release store of tail, then a
  // full fence and, only if the consumer is parked, one wake-up write. fabric: fi_writedata of those bytes
  // (split at the ring's end) with CQ data = newTail - oldTail. Returns false if the transport cannot take
  // it now (fabric: tx queue full — call again after progress()); the protocol then keeps the bytes
  // unpublished and retries.
  // `nextSeq` is the sequence the record at newTail will carry (shm stores it beside tail).
  virtual bool publish(uint64_t oldTail, uint64_t newTail, uint64_t nextSeq) = 0;

  // Drives the transport (fabric: read the tx CQ, reap credit). shm: nothing to do.
  virtual void progress() {}

  // Writer-side sleeping while the ring is full. arm(need) asks to be woken once head() >= need;
  // it returns false if that is already true (re-check after arming, no lost wake-up). fd() is pollable
  // (uv_poll) and becomes readable on a wake-up; drain() consumes the signal. fd() may be -1 when the
  // transport cannot sleep (then the caller polls progress() on a timer).
  virtual bool armWritable(uint64_t needHead) = 0;
  virtual void disarmWritable() = 0;
  virtual int writableFd() = 0;
  virtual void drainWritable() = 0;
};

// Consumer end. Owned by the native Receiver; exactly one per link.
class RxTransport {
 public:
  virtual ~RxTransport() = default;

  virtual const char* transport() const = 0;
  virtual std::string provider() const = 0;

  // Ring data region (read-only for the protocol), `capacity()` bytes.
  virtual const uint8_t* data() = 0;
  virtual uint64_t capacity() const = 0;

  // Position and sequence to resume from at attach time (shm: the shared head + headSeq, so a restarted
  // receiver continues where the previous one released; fabric: 0 / 1 on a fresh ring).
  virtual uint64_t initialHead() = 0;
  virtual uint64_t initialSeq() = 0;

  // Producer position: bytes below it are complete records. Acquire semantics. shm: acquire load of the
  // shared tail. fabric: reads the CQ (FI_REMOTE_CQ_DATA entries) and adds up how far the tail moved.
  virtual uint64_t tail() = 0;

  // Returns credit: the consumer released everything below `head`; `nextSeq` is the sequence of the record
  // at head. `idle` says the consumer is about to sleep (fabric: flush batched credit now, with
  // fi_inject_writedata so a sleeping sender wakes). shm: release store, then wake a waiting writer.
  virtual void release(uint64_t head, uint64_t nextSeq, bool idle) = 0;

  // Parking for the event / backoff idle strategies. park() sets the parked flag, issues a full fence and
  // re-checks tail: it returns false (and unparks) if data arrived meanwhile, so no wake-up is ever lost.
  // fd() becomes readable when the producer published while parked; drain() consumes the signal.
  virtual bool park(uint64_t head) = 0;
  virtual void unpark() = 0;
  virtual int readableFd() = 0;
  virtual void drainReadable() = 0;
};

}  // namespace rdmaq

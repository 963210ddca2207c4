/**
 * Public types of @rdmaq/rdma-core. The field names of LinkStats match `LinkSample` of @rdmaq/shared's wire
 * protocol (counters, gauges, latency), so the agent forwards them without renaming.
 */

/** Where the ring's bytes travel: `shm` (same host, shared file) or `fabric` (libfabric, across hosts). */
export type Transport = 'shm' | 'fabric';

/**
 * How a receiver waits for records (as in Aeron):
 * - `busy-spin`: keep polling (lowest latency, burns a core while started);
 * - `backoff`: spin a little, then yield, then park on the wake-up fd through the event loop;
 * - `event`: park at once; the producer wakes the consumer through a pollable fd (uv_poll) only while it is
 *   parked, so a busy link makes no syscalls and an idle one uses no CPU.
 */
export type IdleStrategy = 'busy-spin' | 'backoff' | 'event';

/**
 * `connecting` until the first handshake, `up` while the peer is attached, `down` when it is gone or closed;
 * `degraded`: a fabric sender that lost its receiver and reconnects; `stalled`: attached, but records wait
 * and none have moved for a while (the consumer does not consume, or the fabric path is blocked).
 */
export type LinkState = 'connecting' | 'up' | 'degraded' | 'stalled' | 'down';

export type Role = 'sender' | 'receiver';

/** Payload of the `state` event of Sender and Receiver. */
export interface StateChange {
  state: LinkState;
  /** Plain words: why the state changed (e.g. "peer process exited (control socket EOF)"). */
  reason: string;
  /** Stable ERR_RDMAQ_* code when the change comes from an error. */
  code?: string;
}

/** Sparse log-linear histogram buckets, `[bucket index, count]`, index ascending; layout of @rdmaq/shared. */
export type SparseBuckets = Array<[number, number]>;

/** Everything known about one link end, read from native memory in one call. */
export interface LinkStats {
  linkId: string;
  role: Role;
  transport: Transport;
  /** libfabric provider name; `shm` for the shm transport. */
  provider: string;
  state: LinkState;
  /** Bumped on every (re)connect of the sender; 0 before the first one. */
  epoch: number;
  counters: {
    /** DATA records sent (sender) or delivered to the application (receiver). */
    records: number;
    /** Payload bytes of those records. */
    bytes: number;
    /** Transport completions: publications observed by the receiver (shm) / CQ entries (fabric). */
    completions: number;
    /** Head (credit) publications by the receiver. */
    creditUpdates: number;
    /** Back-pressure episodes: times the ring turned full for the sender (refused send/claim after a success). */
    backpressure: number;
    /** Wraps of the ring position to offset 0. */
    wraps: number;
    /** Records resent after a reconnect. */
    resends: number;
    /** Handshakes after the first one. */
    reconnects: number;
    /** Errors by kind: bad_header, peer_gone, handshake, resume_gap, wake, ... */
    errors: Record<string, number>;
  };
  gauges: {
    /** tail − head now. */
    occupancyBytes: number;
    /** Highest occupancy seen since the previous stats() call (reset by reading). */
    peakOccupancyBytes: number;
    capacityBytes: number;
  };
  /** Cumulative since the link object was created. Queue: send timestamp → delivery (receiver); rtt: probe round trips (sender). */
  latency: { queue: SparseBuckets; rtt: SparseBuckets };
  /** How an idle consumer is woken (fabric receivers): see WakeupStats. */
  wakeup?: WakeupStats;
}

/**
 * How an idle fabric consumer learns of new records. `cq`: it sleeps on the completion queue's own wait fd
 * (the design's path); `peer`: the provider has no wait fd, so it tells its sender over the control
 * connection and is woken by a reply (slower: one TCP round trip); `none`: not asleep yet / busy-spin.
 */
export interface WakeupStats {
  mode: 'cq' | 'peer' | 'none';
  /** Why the fallback is used (plain words), when mode is `peer`. */
  note?: string;
  /** Times the consumer went to sleep on the CQ, and times it woke with records to deliver. */
  sleeps: number;
  wakeups: number;
  /** Records that waited for the 1 s safety poll (a lost wake-up: should stay 0). */
  safetyRescues: number;
}

/**
 * Called once per record by `Receiver.poll`. `buffer` is the one Buffer that covers the ring (the same object
 * on every call); the payload is `buffer[offset, offset + length)`, valid until the handler returns.
 * Throwing leaves the record undelivered (it is handed out again by the next poll) and rethrows from poll.
 */
export type RecordHandler = (buffer: Buffer, offset: number, length: number, seq: number) => void;

/** Options of `listen()`. */
export interface ListenOptions {
  /** Unix socket path the shm handshake listens on (a stale socket of a dead listener is replaced). */
  socketPath: string;
  /** Where ring files go; default `/dev/shm`. Files are named `rdmaq-<link>-<hash>.ring` (+ `.rxw`/`.txw` FIFOs). */
  shmDir?: string;
  /** Default ring capacity for accepted links (power of two, 64 KiB … 1 GiB; default 4 MiB). */
  capacity?: number;
  /**
   * Accept senders for link ids that were not registered with `accept()`: the listener creates a Receiver
   * with default options and emits `receiver`. Default false (unknown links are refused with ERR_RDMAQ_UNKNOWN_LINK).
   */
  acceptUnknown?: boolean;
  /**
   * Idle strategy of the Receivers this listener creates without one (`acceptUnknown`, or `accept()` with no
   * `idle`); default `backoff`. A host with many mostly idle links wants `event`: backoff spins a while first.
   */
  idle?: IdleStrategy;
  /**
   * Also accept fabric senders on a TCP port, authenticated with an HMAC-SHA256 challenge on `secret`
   * (implemented by the fabric transport, src/fabric).
   */
  tcp?: { host?: string; port: number; secret: string | Buffer; provider?: string };
}

/** Options of `Listener.accept()` for one receiving link. */
export interface ReceiverOptions {
  /** Ring capacity in bytes (power of two). The ring lives in receiver memory, so the receiver decides. */
  capacity?: number;
  /** Idle strategy of `start()`; default `backoff`. */
  idle?: IdleStrategy;
  /**
   * Next sequence the application wants (it keeps its position, e.g. last delivered + 1). Records below it
   * that are still in the ring are released without delivery; asking for records the ring no longer holds
   * throws ERR_RDMAQ_RESUME_GAP. Default: continue where the ring's head is.
   */
  resumeFrom?: number;
  /** Records per native poll call in `start()`; default 256. */
  batch?: number;
  /**
   * Which acceptor the sender arrives on: `shm` (default, the unix socket) or `fabric` (the TCP port of
   * `ListenOptions.tcp`; the Receiver is then a FabricReceiver with the same surface).
   */
  transport?: Transport;
  /** fabric: accept only this provider (default: whatever the sender asks for). */
  provider?: string;
}

/** Options of `connect()`, opening the sending end of a link to a peer's listener. */
export interface SenderOptions {
  linkId: string;
  /** Default `shm`. */
  transport?: Transport;
  /** shm: the peer listener's unix socket path. */
  socketPath?: string;
  /** fabric: the peer listener's address and the cluster secret. */
  host?: string;
  port?: number;
  secret?: string | Buffer;
  provider?: string;
  /** fabric: ring capacity, must equal the receiver's (default 4 MiB). shm takes the receiver's. */
  capacity?: number;
  /** fabric: journal file backing the sender's mirror, so accepted records survive a sender crash (FABRIC.md). */
  journal?: string;
  /** Reconnect after the peer dies or restarts (default true), retrying with backoff up to 1 s. */
  reconnect?: boolean;
  /** How long connect() waits for the first handshake; default 10 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Seal every record with a CRC32C of its payload (4 bytes after it; SSE4.2 where the CPU has it), checked by
   * the receiver before the record is handed out. For memory or paths that may corrupt data: on shm a mismatch
   * breaks the link (ERR_RDMAQ_CHECKSUM, never data); on fabric the receiver drops the connection and the
   * sender resends from that record (its own copy is intact). Default false. Cost: README (rdmaq-perf
   * --checksum).
   */
  checksum?: boolean;
}

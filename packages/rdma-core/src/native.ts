/**
 * Hand-written declarations of the native addon (native/addon.cc). Keep in step with the C++ side:
 * one interface per C++ class, same names. Everything here is internal; the public API is src/index.ts.
 */
import { createRequire } from 'node:module';
import './addon-env.js'; // before the addon loads (libfabric reads its variables once)
import type { LinkState, LinkStats, RecordHandler, Role } from './types.js';

/** Record types of the ring protocol (u16 in the record header). */
export const RecordType = { DATA: 1, PADDING: 2, PROBE: 3, PROBE_REPLY: 4, HEARTBEAT: 5 } as const;

/** Options of the native Sender/Receiver constructors for the shm transport. */
export interface NativeShmOptions {
  transport: 'shm';
  linkId: string;
  /** Ring file (/dev/shm/rdmaq-….ring). */
  ringPath: string;
  /** FIFO the receiver parks on (sender writes one byte when the receiver is parked). */
  rxWakePath: string;
  /** FIFO the sender waits on while the ring is full. */
  txWakePath: string;
  /** Receiver only: create the ring file (with FIFOs) if absent, with this capacity. */
  create?: boolean;
  capacity?: number;
  /** Receiver only: next sequence the application wants (see ReceiverOptions.resumeFrom); 0 = ring head. */
  resumeFrom?: number;
  /** Sender only: seal every record with a CRC32C of its payload (SenderOptions.checksum). */
  checksum?: boolean;
}

/** Refused by these classes (ERR_RDMAQ_NO_TRANSPORT): fabric links are FabricSenderNative / FabricReceiverNative (src/fabric/native.ts). */
export interface NativeFabricOptions {
  transport: 'fabric';
  linkId: string;
  [key: string]: unknown;
}

export type NativeLinkOptions = NativeShmOptions | NativeFabricOptions;

/** Shared by both native link ends. */
interface NativeLinkEnd {
  /** The Buffer covering the ring data region (sender: the region it writes; fabric: the mirror). Created once. */
  readonly buffer: Buffer;
  readonly capacity: number;
  /** Largest payload one record may carry (header + payload ≤ capacity / 2). */
  readonly maxPayload: number;
  /** Stats in one native call; role/state/epoch as last set by setState. */
  stats(): LinkStats;
  /** Mirrors the TS-side state machine into native memory so stats() stays one call. */
  setState(state: LinkState, epoch: number): void;
  /** Counts an error detected outside the native code (handshake, peer_gone…). */
  countError(kind: string): void;
  countReconnect(): void;
  /** The peer this link end names in the statistics file (default "localhost"). */
  setStatsPeer(peer: string): void;
  /**
   * Starts/stops a uv_poll watcher on the wake-up fd; cb runs on the event loop after the signal was drained
   * (receiver: and after it was unparked).
   */
  watch(cb: () => void): void;
  unwatch(): void;
  /** Unmaps, closes fds; `unlink` also removes the ring file and FIFOs (receiver on close). Idempotent. */
  close(unlink: boolean): void;
  readonly role: Role;
}

export interface NativeSender extends NativeLinkEnd {
  /** Copies payload into one record and publishes it. false = ring full (back-pressure counted). */
  send(payload: Uint8Array, type?: number): boolean;
  /** Reserves a record of `length` payload bytes; returns the payload offset in `buffer`, or -1 if full. */
  claim(length: number): number;
  /** Reserves up to `count` records of `size` bytes; offsets land in the array given to setBatchArray. */
  claimBatch(count: number, size: number): number;
  setBatchArray(offsets: Uint32Array): void;
  /** Publishes every claimed record. `length` (single claim only) may shrink the last claim. */
  commit(length?: number): void;
  /** Bytes a new record of `payload` bytes needs are free now? (does not count back-pressure). */
  writable(payload: number): boolean;
  /** Arms the writer wake-up for `payload` bytes; false if already writable (no need to wait). */
  armWritable(payload: number): boolean;
  disarmWritable(): void;
  /** Writes a PROBE record; returns its timestamp (ns, CLOCK_MONOTONIC) or -1 when the ring is full. */
  probe(): number;
  recordRtt(ns: number): void;
  /** Next sequence the sender will write. */
  readonly nextSeq: number;
  /** Re-reads the control block after the receiver reattached (a restarted receiver may have moved head). */
  resync(): void;
}

export interface NativeReceiver extends NativeLinkEnd {
  /** Delivers up to `limit` records to handler; releases them (credit) when the call returns. */
  poll(handler: RecordHandler, limit: number): number;
  /** As poll, but spins up to `spinNs` for the first record (busy-spin / backoff strategies). */
  spinPoll(handler: RecordHandler, limit: number, spinNs: number): number;
  /**
   * Batched poll without a JS call per record: fills `out` with [offset, length, seq] triples and returns the
   * count. The views stay valid until the next poll/pollBatch/release call, which releases them.
   */
  pollBatch(out: Float64Array, limit: number, spinNs?: number): number;
  release(): void;
  /** Event strategy in one call: poll; if the ring ran dry, release and park. Returns n, or -(n + 1) if parked. */
  pollOrPark(handler: RecordHandler, limit: number): number;
  /** Sets parked, fences, re-checks tail: true = parked (sleep on watch), false = data arrived. */
  park(): boolean;
  unpark(): void;
  /** Called with the sequence of every PROBE record met while polling. */
  setProbeHandler(fn: (seq: number) => void): void;
  /** Signals a sender waiting for space (after a reattach, or on close). */
  wakeWriter(): void;
  /** Sequence of the next record expected. */
  readonly nextSeq: number;
  /** Identity of the shm ring (random, from its header): a sender compares it to know a reattach from a new ring. */
  readonly ringId: string;
  /** True once a header or a sealed payload failed validation; every later poll throws (ERR_RDMAQ_BAD_HEADER or ERR_RDMAQ_CHECKSUM). */
  readonly broken: boolean;
}

export interface NativeSenderCtor {
  new (opts: NativeLinkOptions): NativeSender;
}
export interface NativeReceiverCtor {
  new (opts: NativeLinkOptions): NativeReceiver;
}

/** Result of the in-C++ benchmark loops (`rdmaq-perf --engine`). */
export interface EngineResult {
  /** Sparse histogram of one-way latencies (ns). */
  buckets: Array<[number, number]>;
  count: number;
  minNs: number;
  maxNs: number;
  elapsedNs: number;
  bytes: number;
}

export interface NativeAddon {
  /** libfabric providers fi_getinfo offers on this host (deduplicated, sorted). */
  providers(): string[];
  /** libfabric runtime version, e.g. "1.17". */
  fabricVersion(): string;
  Sender: NativeSenderCtor;
  Receiver: NativeReceiverCtor;
  /** C++ twin of @rdmaq/shared bucketOf (pinned by a test). */
  bucketOf(valueNs: number): number;
  /** CLOCK_MONOTONIC in ns (the clock record timestamps use). */
  nowNs(): number;
  /** 64-bit hash (xxh64 style) of buffer[offset, offset+length), top 53 bits as a number. */
  checksum(buffer: Uint8Array, offset: number, length: number): number;
  /** Low 32 bits of the same hash. */
  checksum32(buffer: Uint8Array, offset: number, length: number): number;
  /** Test payloads: writes a pattern from `seed` with its checksum in the first 8 bytes. */
  testSeal(buffer: Uint8Array, offset: number, length: number, seed: number): void;
  /** Verifies a payload written by testSeal with the same seed. */
  testCheck(buffer: Uint8Array, offset: number, length: number, seed: number): boolean;
  /** memcpy bandwidth (GB/s) of `size`-byte copies into destinations rotating over `span` bytes for ~`ms` ms. */
  memcpyBandwidth(size: number, ms: number, span?: number): number;
  /**
   * After a reconnect onto a fresh ring: copies the unacknowledged DATA records of `from` (old ring) with
   * sequence ≥ fromSeq into `to` and publishes them. dropped = records that did not fit the new ring.
   */
  resend(from: NativeSender, to: NativeSender, fromSeq: number): { resent: number; dropped: number };
  /** Removes ring files in `dir` whose receiver and sender processes are both dead; returns removed paths. */
  sweepStale(dir: string): string[];
  /** Reads the header of a ring file (for diagnostics and tests); throws ERR_RDMAQ_RING_* if invalid. */
  inspectRing(path: string): {
    version: number;
    capacity: number;
    ringId: string;
    head: number;
    tail: number;
    rxPid: number;
    txPid: number;
  };
  /** Engine ping-pong: sends `iters` records of `size` on tx, waits for each echo on rx; returns RTT/2 stats. */
  engineLatPing(
    tx: NativeSender,
    rx: NativeReceiver,
    size: number,
    iters: number,
    warmup: number,
  ): EngineResult;
  /** Engine echo side: returns every record received on rx on tx, `iters + warmup` times. */
  engineLatPong(tx: NativeSender, rx: NativeReceiver, iters: number): EngineResult;
  /** Engine streaming: sends `iters` records of `size` as fast as credit allows. */
  engineBwSend(tx: NativeSender, size: number, iters: number): EngineResult;
  /** Engine streaming: consumes `iters` records; elapsed from first to last. */
  engineBwRecv(rx: NativeReceiver, iters: number): EngineResult;
  /** Application name in this process's statistics file (native/stats_file.h). */
  statsSetAppName(name: string): void;
  /** This process's statistics file: path ("" until the first link opens, or when off) and why not. */
  statsInfo(): { enabled: boolean; path: string; error: string; app: string };
  /** Header flags of this process's statistics file (bit 0: an rdmaq agent). */
  statsSetFlags(flags: number): void;
  /** Stores the wall-clock time in the file header's heartbeat. */
  statsHeartbeat(): void;
  /** Read-only mapping of a statistics file (the agent, rdmaq-stat). */
  StatsMap: new (
    path: string,
  ) => NativeStatsMap;
}

export interface NativeStatsMap {
  /** Consistent compact copy (see stats_file.h snapshot()); throws ERR_RDMAQ_STATS_FILE with the reason. */
  snapshot(): Buffer;
  /**
   * Incremental copy: per slot a tag (0 unchanged since the previous snapshotDelta(), 1 busy, 2 changed, then
   * as snapshot()) and flags (bit 0: identity changed). See stats_file.h snapshotDelta().
   */
  snapshotDelta(): Buffer;
  /** snapshotDelta() into `buf`: its length, or -length if `buf` is too small (then pendingInto(bigger)). */
  snapshotDeltaInto(buf: Buffer): number;
  pendingInto(buf: Buffer): number;
  /** Slot `slot`'s next delta is sent whole (the reader could not use the last one). */
  forget(slot: number): void;
  close(): void;
  readonly size: number;
  readonly ino: number;
}

const require = createRequire(import.meta.url);

/** The loaded addon; built by `pnpm build:native` (node-gyp) into build/Release. */
export const native: NativeAddon = require(process.env.RDMAQ_ADDON ?? '../build/Release/rdmaq.node');

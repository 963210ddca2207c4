/**
 * Declarations of the fabric transport's native classes (native/fabric_*_napi.h, exported by native/addon.cc).
 * Internal to src/fabric.
 */
import { createRequire } from 'node:module';
import '../addon-env.js'; // before the addon loads (libfabric reads its variables once)

/** What the fi_info an endpoint got says (read to adapt: CQ data size, inject size, tx depth, mr_mode …). */
export interface FabricInfo {
  provider: string;
  fabric: string;
  domain: string;
  rxCqData: boolean;
  mrVirtAddr: boolean;
  mrLocal: boolean;
  mrEndpoint: boolean;
  mrMode: number;
  cqDataSize: number;
  injectSize: number;
  txSize: number;
  rxSize: number;
  maxMsgSize: number;
  mrKeySize: number;
  addrFormat: number;
  /** The shared completion queue has a pollable wait fd: idle consumers sleep on it (see cq_waiter.h). */
  waitFd: boolean;
  /** Without a wait fd: why, in plain words (empty otherwise). */
  waitNote: string;
  /** This endpoint's fabric address (fi_getname). */
  address: Buffer;
  addressText: string;
}

export interface FabricSenderState {
  tail: number;
  sent: number;
  acked: number;
  nextSeq: number;
  free: number;
  capacity: number;
  maxPayload: number;
  inflight: number;
  idle: boolean;
  streamId: number;
  recovered: boolean;
  records: number;
  bytes: number;
  writes: number;
  completions: number;
  credits: number;
  backpressure: number;
  wraps: number;
  cqErrors: number;
  /** Link ends of this thread on the same shared endpoint (this one included; 0 when not open). */
  endpointLinks: number;
}

export interface FabricReceiverState {
  head: number;
  tail: number;
  expected: number;
  hasExpected: boolean;
  capacity: number;
  empty: boolean;
  records: number;
  bytes: number;
  completions: number;
  credits: number;
  wraps: number;
  duplicates: number;
  cqErrors: number;
  /** Times this consumer went to sleep on the CQ wait fd, and was woken with records to deliver. */
  sleeps: number;
  wakeups: number;
  /** Asleep on the CQ wait fd now. */
  parked: boolean;
  /** Link ends of this thread on the same shared endpoint (this one included; 0 when not open). */
  endpointLinks: number;
}

export interface NativeFabricSender {
  open(provider: string, node: string): FabricInfo & { creditAddr: bigint; creditKey: bigint };
  /** [position, sequence] to resend from; wantSeq < 0: the oldest unacknowledged record. */
  resendPoint(wantSeq: number): [number, number];
  /** slot: the receiver's slot on its shared endpoint (from the handshake), carried in every write's CQ data. */
  connect(peer: Uint8Array, ringAddr: bigint, ringKey: bigint, startPos: number, slot: number): void;
  /**
   * type: 1 DATA (default), 3 PROBE, 5 HEARTBEAT. post: also progress(true) in the same call (even when the
   * ring is full; a failure shows in the next progress()).
   */
  send(payload: Uint8Array, type?: number, post?: boolean): boolean;
  claim(length: number): number;
  commit(): number;
  mirror(): ArrayBuffer;
  /** Reads the CQ, posts unsent bytes: -1 failed (see error()), 0 idle, 1 busy (nothing moved), 2 busy (moved). */
  progress(postFirst?: boolean): -1 | 0 | 1 | 2;
  state(): FabricSenderState;
  error(): (Error & { code: string }) | null;
  /**
   * Ends the connection; final: also leaves the shared endpoint. abandon: and no later link end of this
   * thread joins that endpoint (its provider connection to a peer is wedged; the next open makes a new one).
   */
  closeFabric(final?: boolean, abandon?: boolean): void;
  /** The handshake's test write of `value` into the ring's free space (see receiver.expectCheck). */
  writeCheck(value: number): void;
  /** The receiver confirmed the test write ("ready"): data may be posted. */
  startData(): void;
  /** Test hook: overwrite the credit word (as a late credit write of an older connection would). */
  forgeCredit(credit: number): void;
  /** Test hook: this connection posts no more data (a wedged provider connection); the next one does. */
  forgeWedge(): void;
  /** Test hook: one write whose remote CQ data is `data` instead of its length. */
  forgeWrite(length: number, data: number): void;
  /** Statistics file slot (native/stats_file.h): opened once the link id is known. */
  statsOpen(linkId: string, peer: string, provider: string): void;
  /** What only JS knows: state, epoch, reconnects, resends, errors by kind, provider. */
  statsMeta(
    state: string,
    epoch: number,
    reconnects: number,
    resends: number,
    errors: Record<string, number>,
    provider: string,
  ): void;
  statsClose(): void;
  statsRtt(ns: number): void;
}

export interface NativeFabricReceiver {
  /** Joins this thread's shared endpoint for (provider, node), takes a slot, registers the ring. */
  open(provider: string, node: string): FabricInfo & { ringAddr: bigint; ringKey: bigint; slot: number };
  connect(peer: Uint8Array, creditAddr: bigint, creditKey: bigint, startPos: number, startSeq: number): void;
  /**
   * Fills descriptors() rows [offset, length, type, seq, queueLatencyNs]; returns the count, -1 if the link
   * failed. spinNs > 0: keeps polling (CQ reads) inside the call until a record arrives or spinNs pass.
   * Views of the previous poll that were not released are released first (all consumed, no flush).
   */
  poll(limit: number, spinNs?: number): number;
  /**
   * The first `count` views of the last poll are no longer used (default: all): free them; the others are
   * handed out again. Credit goes back every quarter ring, or now when `flush` (going idle, or the sender
   * asked). resend: write the head even if it was sent already (the sender says it waits for space).
   */
  release(count?: number, flush?: boolean, resend?: boolean): void;
  ring(): ArrayBuffer;
  descriptors(): Float64Array;
  state(): FabricReceiverState;
  error(): (Error & { code: string }) | null;
  /** Ends the connection; final: also leaves the shared endpoint (it closes with its last link end). */
  closeFabric(final?: boolean): void;
  expectCheck(value: number): void;
  /** 0: the test write has not arrived, 1: arrived intact, 2: arrived with other bytes. */
  pollCheck(): 0 | 1 | 2;
  /**
   * Sleeps on the shared CQ's wait fd (drain → fi_trywait → uv_poll): 1 asleep, `wake` is called once when
   * there is something to do; 0 records or an error are there now (poll); -1 no wait fd on this endpoint.
   */
  sleep(wake: () => void): -1 | 0 | 1;
  /** Cancels a sleep (no callback follows). */
  unsleep(): void;
  /** Statistics file slot (native/stats_file.h): opened once the link id is known. */
  statsOpen(linkId: string, peer: string, provider: string): void;
  /** What only JS knows: state, epoch, reconnects, resends, errors by kind, provider. */
  statsMeta(
    state: string,
    epoch: number,
    reconnects: number,
    resends: number,
    errors: Record<string, number>,
    provider: string,
  ): void;
  statsClose(): void;
}

export interface FabricAddon {
  /** checksum: seal every record with a CRC32C of its payload (SenderOptions.checksum). */
  FabricSenderNative: new (
    capacity: number,
    journalPath: string,
    checksum?: boolean,
  ) => NativeFabricSender;
  FabricReceiverNative: new (capacity: number, maxBatch: number) => NativeFabricReceiver;
  /** {ip, port} of an IP provider's fabric address; null for other address formats. */
  fabricAddressIp(address: Uint8Array): { ip: string; port: number } | null;
  /** Opens (and closes) an endpoint: what fi_info this provider gives here; throws the plain-words errors. */
  fabricProbe(provider: string, node: string): FabricInfo;
  // rdmaq-perf --engine: the busy-spin benchmark loops in C++, one bounded chunk per call (the event loop runs
  // between chunks). Errors: ERR_RDMAQ_TIMEOUT after 10 s without progress, or the link's own error.
  /** `count` round trips of `size` bytes; one-way ns of trip i into samples[offset + i] when in range. */
  fabricEngineLatPing(
    tx: NativeFabricSender,
    rx: NativeFabricReceiver,
    size: number,
    count: number,
    samples: Float64Array | null,
    offset: number,
  ): number;
  /** Echoes up to `count` records; returns how many, early when nothing arrived for waitMs. */
  fabricEngineLatPong(
    tx: NativeFabricSender,
    rx: NativeFabricReceiver,
    count: number,
    waitMs: number,
  ): number;
  /** Appends `count` records of `size` bytes as credit allows, posting every 32 and at the end. */
  fabricEngineBwSend(tx: NativeFabricSender, size: number, count: number): number;
  /**
   * Consumes up to `count` DATA records (early when idle for waitMs, credit flushed); queue latency ns of
   * stream index first + i, when a multiple of 64, into samples[(first + i) / 64].
   */
  fabricEngineBwRecv(
    rx: NativeFabricReceiver,
    count: number,
    waitMs: number,
    samples: Float64Array | null,
    first: number,
  ): number;
}

const require = createRequire(import.meta.url);
export const fabricNative: FabricAddon = require(process.env.RDMAQ_ADDON ?? '../../build/Release/rdmaq.node');

/** Columns of one descriptors() row. */
export const DESC_FIELDS = 5;

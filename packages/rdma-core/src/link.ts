/**
 * One stack over two transports: what every link end is, whichever transport carries its ring.
 *
 * `LinkTx` (sending end), `LinkRx` (receiving end) and `LinkListener` are the interfaces the application and
 * the agent program against; `shm` (Sender / Receiver / Listener) and `fabric` (FabricSender /
 * FabricReceiver / FabricListener) implement them. `LinkEndBase` holds what both transports' ends share (state,
 * epoch, close flag, the `state` event, errors), `WriteWaiters` the whenWritable() bookkeeping of both senders,
 * `ProbeTracker` their probe round trips and `reconnectBackoff()` their reconnect delays. Only what really
 * differs (the ring's memory, the control connection, progress) stays in the transports' classes.
 */
import { EventEmitter } from 'node:events';
import { Backoff } from '@rdmaq/shared/backoff';
import { RdmaqError } from './errors.js';
import type {
  IdleStrategy,
  LinkState,
  LinkStats,
  ReceiverOptions,
  RecordHandler,
  Role,
  StateChange,
} from './types.js';

/** Both ends of a link, either transport. */
export interface LinkEnd {
  readonly linkId: string;
  /** `connecting` until the first handshake, then `up` / `degraded` / `stalled` / `down`. */
  readonly state: LinkState;
  /** Bumped on every (re)connect; 0 before the first. */
  readonly epoch: number;
  readonly closed: boolean;
  /** Ring capacity in bytes. */
  readonly capacity: number;
  /** Largest payload one record can carry (header + payload ≤ capacity / 2). */
  readonly maxPayload: number;
  /** The one Buffer over the ring (receiver) or the memory claimed records are written to (sender). */
  readonly buffer: Buffer;
  /** Counters, gauges and histograms, in one call. */
  stats(): LinkStats;
  /** Says goodbye to the peer and releases the ring. Idempotent. */
  close(): Promise<void>;
  on(event: 'state', listener: (change: StateChange) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'state', listener: (change: StateChange) => void): this;
  off(event: 'state', listener: (change: StateChange) => void): this;
}

/** The sending end of a link (from `connect()`), either transport. */
export interface LinkTx extends LinkEnd {
  /** Sequence the next record will carry. */
  readonly nextSeq: number;
  /** Copies `payload` into one record. false = ring full (back-pressure): await whenWritable(). */
  send(payload: Uint8Array): boolean;
  /** Zero copy: reserves a record of `length` bytes at `buffer[offset…]` and returns offset, or -1 when full. */
  claim(length: number): number;
  /** Publishes the claimed record. */
  commit(): void;
  /** True if a record of `payload` bytes fits now. */
  writable(payload?: number): boolean;
  /** Resolves once a record of `payload` bytes fits; rejects with ERR_RDMAQ_CLOSED when the end closes. */
  whenWritable(payload?: number): Promise<void>;
  /** A PROBE record's round trip in ns (also recorded in stats().latency.rtt). */
  probe(timeoutMs?: number): Promise<number>;
}

/** The receiving end of a link (from `LinkListener.accept()` or its `receiver` event), either transport. */
export interface LinkRx extends LinkEnd {
  /** Idle strategy of start(). */
  readonly idle: IdleStrategy;
  /** True while a sender is attached. */
  readonly attached: boolean;
  /** Sequence of the next record this end will deliver (fabric: undefined before its first sender). */
  readonly nextSeq: number | undefined;
  /** Delivers up to `limit` records synchronously, in order; returns how many. */
  poll(handler: RecordHandler, limit?: number, spinNs?: number): number;
  /** Consumes on the event loop following the idle strategy until stop() or close(). */
  start(handler: RecordHandler): void;
  stop(): void;
  on(event: 'state', listener: (change: StateChange) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'probe', listener: (seq: number) => void): this;
}

/** Accepts incoming senders by link id and hands out their receiving ends, either transport. */
export interface LinkListener {
  /** TCP port of the fabric acceptor, if there is one. */
  readonly port: number | undefined;
  /**
   * Registers the receiving end of `linkId` (state `connecting` until a sender attaches). `opts.transport`
   * picks the acceptor the sender arrives on; a listener without it throws ERR_RDMAQ_NO_TRANSPORT.
   */
  accept(linkId: string, opts?: ReceiverOptions): LinkRx;
  /** The receiving end of a link accepted here, if any. */
  receiver(linkId: string): LinkRx | undefined;
  /** Stops accepting and closes every receiving end. */
  close(): Promise<void>;
  on(event: 'receiver', listener: (rx: LinkRx) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

/** What a link end's state publication does besides the `state` event (e.g. tell the statistics file). */
export abstract class LinkEndBase extends EventEmitter {
  readonly linkId: string;
  protected stateNow: LinkState = 'connecting';
  protected epochNow = 0;
  protected closedFlag = false;

  protected constructor(
    linkId: string,
    private readonly role: Role,
  ) {
    super();
    this.linkId = linkId;
  }

  get state(): LinkState {
    return this.stateNow;
  }
  get epoch(): number {
    return this.epochNow;
  }
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Hands the new state to whatever else keeps it (native end, statistics file). */
  protected abstract publishState(state: LinkState): void;

  protected setState(state: LinkState, reason: string, code?: string): void {
    this.stateNow = state;
    this.publishState(state);
    const ev: StateChange = code ? { state, reason, code } : { state, reason };
    this.emit('state', ev);
  }

  /** `error` only to those who listen: an unhandled `error` event would crash the process. */
  protected emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** ERR_RDMAQ_CLOSED for a call on this end after close(). */
  protected closedError(): RdmaqError {
    return new RdmaqError('ERR_RDMAQ_CLOSED', `${this.role} ${this.linkId} is closed`);
  }

  protected throwIfClosed(): void {
    if (this.closedFlag) throw this.closedError();
  }
}

/** Pending whenWritable() calls of a sender: each waits until a record of `need` bytes fits. */
export class WriteWaiters {
  private list: Array<{ need: number; resolve: () => void; reject: (e: Error) => void }> = [];

  get length(): number {
    return this.list.length;
  }

  /** The smallest need of those waiting (Infinity when none). */
  get smallest(): number {
    let m = Number.POSITIVE_INFINITY;
    for (const w of this.list) if (w.need < m) m = w.need;
    return m;
  }

  add(need: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.list.push({ need, resolve, reject });
    });
  }

  /** Resolves every waiter whose record fits (`fits(need)`); returns how many. */
  resolveFitting(fits: (need: number) => boolean): number {
    const before = this.list.length;
    this.list = this.list.filter((w) => {
      if (!fits(w.need)) return true;
      w.resolve();
      return false;
    });
    return before - this.list.length;
  }

  rejectAll(err: Error): void {
    for (const w of this.list.splice(0)) w.reject(err);
  }
}

/** Probes in flight: each resolves with its round trip when the receiver answers, or rejects on timeout. */
export class ProbeTracker {
  private readonly pending = new Map<
    number,
    { sentNs: number; resolve: (ns: number) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();

  constructor(private readonly nowNs: () => number) {}

  /** Waits for the reply to the probe of sequence `seq`, sent now. */
  add(seq: number, timeoutMs: number, timeoutError: () => Error): Promise<number> {
    const sentNs = this.nowNs();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(timeoutError());
      }, timeoutMs);
      this.pending.set(seq, { sentNs, resolve, reject, timer });
    });
  }

  /** The reply to `seq` arrived: its round trip in ns (resolved to the caller), undefined if none waits. */
  answer(seq: number): number | undefined {
    const p = this.pending.get(seq);
    if (!p) return undefined;
    this.pending.delete(seq);
    clearTimeout(p.timer);
    const rtt = Math.max(0, this.nowNs() - p.sentNs);
    p.resolve(rtt);
    return rtt;
  }

  /** Stops waiting: every pending probe rejects with `err` (close()). */
  rejectAll(err: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

/**
 * The reconnect delays of a sender that lost its receiver: doubling from `initialMs` up to 1 s, half of each
 * drawn at random so the senders of a restarted receiver do not come back in lockstep.
 */
export function reconnectBackoff(initialMs: number): Backoff {
  return new Backoff({ initialMs, maxMs: 1000 });
}

/** Link ids both transports accept (ring file names and handshake messages carry them). */
export const LINK_ID_RE = /^[A-Za-z0-9._:@/>-]{1,128}$/;

/** Throws ERR_RDMAQ_ARG unless `linkId` is a valid link id. */
export function checkLinkId(linkId: string): void {
  if (typeof linkId !== 'string' || !LINK_ID_RE.test(linkId)) {
    throw new RdmaqError(
      'ERR_RDMAQ_ARG',
      `bad link id ${JSON.stringify(linkId)}: 1-128 of A-Z a-z 0-9 . _ : @ / > -`,
    );
  }
}

/** How long each step of a handshake may take (either transport). */
export const HANDSHAKE_TIMEOUT_MS = 5000;

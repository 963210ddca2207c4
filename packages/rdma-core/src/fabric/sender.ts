/**
 * The sending end of a fabric link. Records are accepted into the registered mirror (optionally a journal
 * file) and written to the receiver's ring with fi_writedata; the control connection (TCP, HMAC-authenticated)
 * carries the handshake, heartbeats (the liveness signal) and park/wake. On any loss the sender reconnects
 * with backoff and resends from the receiver's next expected sequence.
 *
 * Progress is manual on these providers: while anything is unsent, in flight or a writer waits for space, a
 * pump polls the CQ — on setImmediate while it makes progress, then on a 1 ms timer; idle, nothing runs.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { RdmaqError } from '../errors.js';
import {
  checkLinkId,
  HANDSHAKE_TIMEOUT_MS,
  LinkEndBase,
  type LinkTx,
  ProbeTracker,
  reconnectBackoff,
  WriteWaiters,
} from '../link.js';
import { cancelTimer, type LoopTimer } from '../loop.js';
import type { LinkStats } from '../types.js';
import {
  addrField,
  ControlConn,
  type ControlMsg,
  FABRIC_CONTROL_VERSION,
  handshakeError,
  intField,
  PROVIDER_RE,
  plainIp,
  remoteError,
  secretBuffer,
  u64Field,
} from './handshake.js';
import { type FabricInfo, fabricNative, type NativeFabricSender } from './native.js';
import { type Beat, readBeat, StallWatch } from './stall.js';
import { ErrorCounts, errorKind, fabricLinkStats, SparseHistogram } from './stats.js';

export const FABRIC_DEFAULT_CAPACITY = 4 * 1024 * 1024;
/** First reconnect delay (doubling up to 1 s). */
const RECONNECT_MIN_MS = 100;
/** Empty pump turns on setImmediate before falling back to the 1 ms timer. */
const SPIN_TURNS = 32;
const RECORD_DATA = 1;
const RECORD_PROBE = 3;

export interface FabricSenderOptions {
  linkId: string;
  host: string;
  port: number;
  secret: string | Buffer;
  /** libfabric provider, e.g. `net` (default) or `tcp;ofi_rxm`; `verbs;ofi_rxm` / `efa` where devices exist. */
  provider?: string;
  /** Ring capacity; must equal the receiver's (default 4 MiB). */
  capacity?: number;
  /** Journal file: the mirror is backed by it, so accepted records survive a sender crash and are resent. */
  journal?: string;
  /** Reconnect after losing the peer (default true). */
  reconnect?: boolean;
  /** How long the first connect may take (default 10 s). */
  connectTimeoutMs?: number;
  heartbeatMs?: number;
  /** The peer is declared dead after this much silence on the control connection (default 2500 ms). */
  deadAfterMs?: number;
  /**
   * Records wait and the receiver's position has not moved for this long: state `stalled` (default 5000 ms;
   * checked at each heartbeat).
   */
  stallAfterMs?: number;
  /**
   * Stalled for this much longer with nothing waiting in the receiver's ring (so the records are not reaching
   * it: the fabric path is wedged, not the consumer slow): the connection is dropped and the link reconnects
   * on a fresh endpoint, then resends (default 10000 ms).
   */
  recoverAfterMs?: number;
  /** Seal every record with a CRC32C of its payload (SenderOptions.checksum): a mismatch on arrival makes the
   * receiver drop the connection, and this sender resends from that record. */
  checksum?: boolean;
}

export class FabricSender extends LinkEndBase implements LinkTx {
  readonly provider: string;
  readonly capacity: number;
  /** Buffer over the registered mirror; claim() offsets index into it. */
  readonly buffer: Buffer;
  readonly maxPayload: number;
  private readonly native: NativeFabricSender;
  private readonly opts: FabricSenderOptions;
  private readonly secret: Buffer;
  private conn: ControlConn | undefined;
  /** The control connection of a handshake in progress (close() shuts it). */
  private handshaking: ControlConn | undefined;
  private ready = false;
  private pumpTimer: LoopTimer | undefined;
  private pumping = false;
  private emptyTurns = 0;
  private peerParkedTail = -1;
  private readonly waiters = new WriteWaiters();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly retryDelays = reconnectBackoff(RECONNECT_MIN_MS);
  private readonly errors = new ErrorCounts(() => this.syncStats());
  private readonly rtt = new SparseHistogram();
  private resends = 0;
  private reconnects = 0;
  private readonly peak = { last: 0 };
  private readonly probes = new ProbeTracker(() => Number(process.hrtime.bigint()));
  private readonly stall: StallWatch;
  /** What the receiver's last heartbeat said (its next sequence, what waits in its ring). */
  private peerBeat: Beat = {};
  /** Set by checkStall just before it drops the connection: onLost leaves the endpoint for good. */
  private freshEndpoint = false;
  /** What the fi_info of the current endpoint said (null before the first connect). */
  info: FabricInfo | null = null;

  constructor(opts: FabricSenderOptions) {
    super(opts.linkId, 'sender');
    checkLinkId(opts.linkId);
    this.provider = opts.provider ?? 'net';
    if (!PROVIDER_RE.test(this.provider)) {
      throw new RdmaqError('ERR_RDMAQ_ARG', `bad provider name ${JSON.stringify(this.provider)}`);
    }
    this.opts = opts;
    this.secret = secretBuffer(opts.secret);
    this.native = new fabricNative.FabricSenderNative(
      opts.capacity ?? FABRIC_DEFAULT_CAPACITY,
      opts.journal ?? '',
      opts.checksum === true,
    );
    this.stall = new StallWatch(opts.stallAfterMs ?? 5000);
    this.buffer = Buffer.from(this.native.mirror());
    const st = this.native.state();
    this.capacity = st.capacity;
    this.maxPayload = st.maxPayload;
    this.native.statsOpen(this.linkId, `${opts.host}:${opts.port}`, this.provider);
  }

  /** The statistics file's copy of what only this object knows (state, epoch, reconnects, errors). */
  private syncStats(): void {
    this.native?.statsMeta(
      this.stateNow,
      this.epochNow,
      this.reconnects,
      this.resends,
      this.errors.snapshot(),
      this.info?.provider ?? this.provider,
    );
  }

  protected publishState(): void {
    this.syncStats();
  }

  /** @internal The native end (rdmaq-perf --engine loops). */
  get nativeHandle(): NativeFabricSender {
    return this.native;
  }
  /** Sequence the next accepted record gets. */
  get nextSeq(): number {
    return this.native.state().nextSeq;
  }
  /** True when this sender reopened a journal that held records of a previous run. */
  get recovered(): boolean {
    return this.native.state().recovered;
  }

  /**
   * Copies `payload` into one record. false = ring full (back-pressure): await whenWritable().
   * flush: also flush() in the same native call (busy-spin writers: the record leaves now, and a full ring
   * reads the CQ for credit).
   */
  send(payload: Uint8Array, flush = false): boolean {
    this.throwIfClosed();
    if (flush && this.ready) {
      const ok = this.native.send(payload, RECORD_DATA, true);
      // A parked receiver to wake or a writer waiting for space: the full turn (rare, not the hot path).
      if ((this.peerParkedTail >= 0 || this.waiters.length) && this.turn(true) < 0) return ok;
      // The pump takes over what could not be posted yet, and reports a failure of that progress call.
      if (!this.pumping) this.schedulePump();
      return ok;
    }
    if (!this.native.send(payload)) return false;
    this.kick();
    return true;
  }

  /** Zero copy: reserves a record of `length` bytes; write the payload at `buffer[offset…]`, then commit(). -1 = full. */
  claim(length: number): number {
    this.throwIfClosed();
    return this.native.claim(length);
  }

  /** Publishes the claimed record; returns its sequence. */
  commit(): number {
    const seq = this.native.commit();
    this.kick();
    return seq;
  }

  /**
   * Drives the link synchronously once: reads the CQ (manual progress, credit) and posts what is pending.
   * For busy-spin loops that never yield to the event loop; otherwise the pump does this on its own.
   */
  flush(): void {
    if (!this.ready || this.closedFlag) return;
    this.turn(true);
  }

  /** Is there room for a record of `payload` bytes now? */
  writable(payload = 0): boolean {
    return this.native.state().free >= this.need(payload);
  }

  /** Resolves once a record of `payload` bytes fits (rejects if the sender is closed). */
  whenWritable(payload = 0): Promise<void> {
    if (this.closedFlag) return Promise.reject(this.closedError());
    if (this.writable(payload)) return Promise.resolve();
    const p = this.waiters.add(this.need(payload));
    // Credit is batched by the receiver; tell it we are waiting so it flushes what it consumed.
    this.conn?.send({ t: 'need' });
    this.kick();
    return p;
  }

  /**
   * Round trip through the ring: a PROBE record goes to the receiver, which answers on the control connection.
   * Resolves with the RTT in ns (also recorded in stats().latency.rtt).
   */
  probe(timeoutMs = 5000): Promise<number> {
    const seq = this.nextSeq;
    if (!this.native.send(new Uint8Array(0), RECORD_PROBE)) {
      return Promise.reject(new RdmaqError('ERR_RDMAQ_RING_FULL', 'probe: the ring is full'));
    }
    const reply = this.probes.add(
      seq,
      timeoutMs,
      () => new RdmaqError('ERR_RDMAQ_TIMEOUT', `probe ${seq} not answered within ${timeoutMs} ms`),
    );
    this.kick();
    return reply;
  }

  stats(): LinkStats {
    const s = this.native.state();
    const who = { linkId: this.linkId, role: 'sender', state: this.stateNow, epoch: this.epochNow } as const;
    return fabricLinkStats({ ...who, provider: this.info?.provider ?? this.provider }, s, {
      occupancy: s.tail - s.acked,
      peak: this.peak,
      backpressure: s.backpressure,
      resends: this.resends,
      reconnects: this.reconnects,
      errors: this.errors,
      latency: { queue: [], rtt: this.rtt.toSparse() },
    });
  }

  /** Waits (bounded) until every accepted record was acknowledged by the receiver. */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    let asked = 0;
    while (Date.now() < end) {
      const s = this.native.state();
      if (s.acked === s.tail) return true;
      // Credit is batched by the receiver: ask for it (again every 100 ms, e.g. across a reconnect).
      if (this.conn && s.sent === s.tail && Date.now() - asked > 100) {
        this.conn.send({ t: 'need' });
        asked = Date.now();
      }
      this.kick();
      if (this.ready) this.turn();
      await new Promise((r) => setTimeout(r, 2));
    }
    return false;
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.ready = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopPump();
    this.handshaking?.shut('sender closed');
    const c = this.conn;
    this.conn = undefined;
    if (c) {
      c.send({ t: 'bye' });
      c.shut('sender closed');
    }
    this.native.closeFabric(true);
    const err = new RdmaqError('ERR_RDMAQ_CLOSED', `sender ${this.linkId} closed`);
    this.waiters.rejectAll(err);
    this.probes.rejectAll(err);
    this.setState('down', 'sender closed');
    this.native.statsClose();
  }

  // ---- connection ----

  /** First connect: resolves after the first handshake, rejects with its error (no retry). */
  async start(): Promise<void> {
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.connectOnce(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new RdmaqError(
                  'ERR_RDMAQ_CONNECT',
                  `no fabric handshake with ${this.opts.host}:${this.opts.port} within ${timeout} ms`,
                ),
              ),
            timeout,
          );
        }),
      ]);
    } catch (err) {
      this.conn?.shut('connect failed');
      this.native.closeFabric(true);
      this.closedFlag = true;
      this.setState('down', (err as Error).message, (err as RdmaqError).code);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async connectOnce(): Promise<void> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: this.opts.host, port: this.opts.port });
      // A cut network path would leave the SYN retrying for minutes: bound each attempt.
      s.setTimeout(HANDSHAKE_TIMEOUT_MS, () =>
        s.destroy(new Error(`no TCP connection within ${HANDSHAKE_TIMEOUT_MS} ms`)),
      );
      s.once('connect', () => {
        s.setTimeout(0);
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new RdmaqError(
            'ERR_RDMAQ_CONNECT',
            `cannot reach the listener at ${this.opts.host}:${this.opts.port}: ${e.message}`,
            {
              cause: e,
            },
          ),
        ),
      );
    });
    const conn = new ControlConn(sock, 'client');
    this.handshaking = conn;
    // close() during a handshake: stop at the next step instead of bringing a closed link up.
    const stillWanted = () => {
      if (this.closedFlag)
        throw new RdmaqError('ERR_RDMAQ_CLOSED', `sender ${this.linkId} closed during the handshake`);
    };
    try {
      await conn.authenticateClient(this.secret, HANDSHAKE_TIMEOUT_MS);
      stillWanted();
      // Only now (peer proved the secret) is anything about the fabric shared.
      this.native.closeFabric();
      const info = this.native.open(this.provider, plainIp(sock.localAddress));
      this.info = info;
      const epoch = this.epochNow + 1;
      const st = this.native.state();
      conn.send({
        t: 'link',
        v: FABRIC_CONTROL_VERSION,
        linkId: this.linkId,
        epoch,
        provider: this.provider,
        streamId: st.streamId,
        address: info.address.toString('base64'),
        creditAddr: info.creditAddr.toString(),
        creditKey: info.creditKey.toString(),
        capacity: this.capacity,
        nextSeq: st.nextSeq,
      });
      const ring = await conn.next(HANDSHAKE_TIMEOUT_MS);
      stillWanted();
      if (ring.t === 'error') throw remoteError(ring);
      if (ring.t !== 'ring') throw handshakeError(`expected ring parameters, got ${ring.t}`);
      if (ring.linkId !== this.linkId)
        throw handshakeError(`the listener answered for link ${String(ring.linkId)}`);
      const cap = intField(ring, 'capacity', 4096, 2 ** 30);
      if (cap !== this.capacity) {
        throw handshakeError(
          `ring capacity mismatch: receiver ${cap}, sender ${this.capacity}; configure both the same`,
        );
      }
      const peerAddr = addrField(ring, 'address');
      checkPeerIp(peerAddr, sock.remoteAddress, 'receiver');
      const ringAddr = u64Field(ring, 'ringAddr');
      const ringKey = u64Field(ring, 'ringKey');
      const slot = intField(ring, 'slot', 1, 1023);
      const want = ring.nextSeq === null ? -1 : intField(ring, 'nextSeq');
      let point: [number, number];
      try {
        point = this.native.resendPoint(want);
      } catch (err) {
        conn.send({ t: 'error', code: (err as RdmaqError).code, message: (err as Error).message });
        throw err;
      }
      const [pos, seq] = point;
      const check = intField(ring, 'check', 1);
      this.native.connect(peerAddr, ringAddr, ringKey, pos, slot);
      conn.send({ t: 'start', pos, seq });
      this.native.writeCheck(check);
      // Progress is manual: keep polling our CQ while the receiver looks for the test write.
      const spin = setInterval(() => this.native.progress(), 1);
      let ready: ControlMsg;
      try {
        ready = await conn.next(HANDSHAKE_TIMEOUT_MS + 1000);
      } finally {
        clearInterval(spin);
      }
      stillWanted();
      if (ready.t === 'error') throw remoteError(ready);
      if (ready.t !== 'ready') throw handshakeError(`expected ready, got ${ready.t}`);
      this.native.startData();
      const resent = st.nextSeq - seq;
      if (this.epochNow > 0) {
        this.reconnects += 1;
        this.resends += resent;
      }
      this.epochNow = epoch;
      this.conn = conn;
      this.ready = true;
      this.retryDelays.reset();
      this.peerParkedTail = -1;
      conn.on('message', (m: ControlMsg) => this.onMessage(m));
      conn.once('close', (reason: string) => this.onLost(conn, reason));
      this.peerBeat = {};
      this.stall.reset(Date.now());
      conn.on('heartbeat', (m: ControlMsg) => {
        this.peerBeat = readBeat(m);
      });
      conn.on('beat', () => this.checkStall(conn, Date.now()));
      conn.startStreaming(this.opts.heartbeatMs ?? 500, this.opts.deadAfterMs ?? 2500, () => ({
        next: this.native.state().nextSeq,
      }));
      this.setState('up', resent > 0 ? `connected; resending ${resent} records from ${seq}` : 'connected');
      this.kick();
    } catch (err) {
      conn.shut('handshake failed');
      this.native.closeFabric(this.closedFlag);
      this.errors.add(errorKind((err as RdmaqError).code));
      throw err;
    } finally {
      if (this.handshaking === conn) this.handshaking = undefined;
    }
  }

  private onMessage(m: ControlMsg): void {
    if (m.t === 'park') {
      // The receiver is going to sleep with `tail` bytes seen: wake it at once if we posted more, else on the
      // next post.
      const tail = typeof m.tail === 'number' ? m.tail : 0;
      this.peerParkedTail = tail;
      this.kick();
    } else if (m.t === 'probe_reply' && typeof m.seq === 'number') {
      const ns = this.probes.answer(m.seq);
      if (ns !== undefined) {
        this.rtt.record(ns);
        this.native.statsRtt(ns);
      }
    } else if (m.t === 'bye') {
      this.conn?.shut('receiver closed the link');
    }
  }

  /**
   * At each heartbeat: records wait (the receiver's next sequence is behind ours) and it has not moved for
   * stallAfterMs → `stalled`. Receivers of before this check say nothing about their position: never stalled.
   */
  private checkStall(conn: ControlConn, now: number): void {
    if (this.conn !== conn || !this.ready) return;
    const peerNext = this.peerBeat.next;
    const next = this.native.state().nextSeq;
    const waiting = peerNext !== undefined && next > peerNext;
    const change = this.stall.update(now, waiting, peerNext ?? -1);
    const queued = this.peerBeat.queued ?? 0;
    if (change === 'stalled') {
      this.setState(
        'stalled',
        queued > 0
          ? `records ${peerNext}..${next - 1} wait: the receiver holds ${queued} bytes it does not consume`
          : `records ${peerNext}..${next - 1} wait: none reached the receiver for ${Math.round(this.stall.afterMs / 1000)} s (fabric path blocked)`,
        'ERR_RDMAQ_STALLED',
      );
    } else if (change === 'moving') {
      this.setState('up', 'records move again');
    } else if (
      this.stall.stalled &&
      queued === 0 &&
      this.stall.stalledFor(now) >= (this.opts.recoverAfterMs ?? 10_000)
    ) {
      // The records are not reaching the receiver although both ends are alive: the provider's connection
      // between the two endpoints is wedged (a long cut leaves TCP retransmissions backed off for minutes,
      // or one side shut it). Reconnecting on the same endpoint would use the same connection: take a new one.
      this.freshEndpoint = true;
      conn.shut(
        `stalled for ${Math.round((this.stall.afterMs + this.stall.stalledFor(now)) / 1000)} s with the receiver's ring empty: reconnecting on a fresh endpoint`,
      );
    }
  }

  private onLost(conn: ControlConn, reason: string): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.ready = false;
    // End the connection: completions of its writes that come later are dropped (FabricHub).
    // A wedged path (checkStall): leave the endpoint for good, so the reconnect opens a new one.
    const fresh = this.freshEndpoint;
    this.freshEndpoint = false;
    this.native.closeFabric(fresh, fresh);
    if (this.closedFlag) return;
    this.errors.add(fresh ? 'stalled' : 'peer_gone');
    this.setState('degraded', `lost the receiver: ${reason}`, 'ERR_RDMAQ_PEER_GONE');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closedFlag || this.opts.reconnect === false) {
      if (!this.closedFlag) this.setState('down', 'not reconnecting (reconnect: false)');
      return;
    }
    const delay = this.retryDelays.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closedFlag) return;
      this.connectOnce().catch((err: Error & { code?: string }) => {
        if (this.closedFlag) return;
        this.setState('degraded', `reconnect failed: ${err.message}`, err.code);
        this.scheduleReconnect();
      });
    }, delay);
  }

  // ---- pump (manual progress) ----

  private need(payload: number): number {
    // Worst case: padding up to the end of the ring before the record.
    return Math.min(this.capacity, 2 * (Math.ceil((24 + payload) / 8) * 8));
  }

  /**
   * Something to do: post at once when idle (latency: the write leaves before the CQ read's syscalls), then
   * let the pump finish the job on the next turn; if the pump is running, it batches this record with others.
   */
  private kick(): void {
    if (!this.ready) return;
    if (this.pumping) {
      if (this.emptyTurns >= SPIN_TURNS) {
        // The pump waits on its 1 ms timer (a write of ours still in flight): post now rather than when it
        // fires — a consumer that answers from its handler would otherwise wait up to 1 ms for its reply.
        this.stopPump();
        if (this.turn(true) < 0) return;
        this.schedulePump();
      }
      return;
    }
    if (this.turn(true) < 0) return;
    this.schedulePump();
  }

  private schedulePump(): void {
    this.pumping = true;
    this.emptyTurns = 0;
    this.pumpTimer = setImmediate(() => this.pump());
  }

  private stopPump(): void {
    cancelTimer(this.pumpTimer);
    this.pumpTimer = undefined;
    this.pumping = false;
  }

  /** One progress call: -1 failed (handled), 0 idle, 1 busy, 2 busy and something moved. */
  private turn(postFirst = false): number {
    const r = this.native.progress(postFirst);
    if (r < 0) {
      const e = this.native.error();
      const err = e ?? new RdmaqError('ERR_RDMAQ_FABRIC', 'fabric progress failed');
      this.errors.add(errorKind(err.code));
      this.emitError(err);
      this.conn?.shut(`fabric error: ${err.message}`);
      return -1;
    }
    let progressed = r === 2;
    if (this.peerParkedTail >= 0 || this.waiters.length) {
      const s = this.native.state();
      if (this.peerParkedTail >= 0 && s.sent > this.peerParkedTail) {
        this.peerParkedTail = -1;
        this.conn?.send({ t: 'wake' });
      }
      if (this.waiters.resolveFitting((need) => s.free >= need) > 0) progressed = true;
    }
    return r === 0 ? 0 : progressed ? 2 : 1;
  }

  private pump(): void {
    this.pumpTimer = undefined;
    if (!this.ready || this.closedFlag) {
      this.pumping = false;
      return;
    }
    const r = this.turn();
    if (r < 0 || (r === 0 && !this.waiters.length)) {
      this.pumping = false; // idle (or failed): no timer, no CPU
      return;
    }
    this.pumping = true;
    if (r === 2) this.emptyTurns = 0;
    else this.emptyTurns += 1;
    if (this.emptyTurns < SPIN_TURNS) this.pumpTimer = setImmediate(() => this.pump());
    else this.pumpTimer = setTimeout(() => this.pump(), 1);
  }
}

/** For IP providers: the fabric address must be on the host the control connection comes from (anti-forgery). */
export function checkPeerIp(addr: Buffer, controlIp: string | undefined, who: string): void {
  const parsed = fabricNative.fabricAddressIp(addr);
  if (!parsed) return; // not a sockaddr (verbs/efa): nothing to compare
  const want = plainIp(controlIp);
  const got = plainIp(parsed.ip);
  if (got !== want) {
    throw handshakeError(
      `the ${who}'s fabric address ${got}:${parsed.port} is not the host of its control connection (${want}): forged or misconfigured address`,
    );
  }
  if (parsed.port <= 0) throw handshakeError(`the ${who}'s fabric address has no port`);
}

/** Opens the sending end of a fabric link (resolves after the first handshake). */
export async function connectFabric(opts: FabricSenderOptions): Promise<FabricSender> {
  const s = new FabricSender(opts);
  await s.start();
  return s;
}

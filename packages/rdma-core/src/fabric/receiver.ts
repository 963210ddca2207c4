/**
 * The receiving end of a fabric link: owns the ring (registered for remote write, in this process's memory).
 * A sender attaches through the FabricListener's authenticated handshake, possibly many times (reconnects,
 * restarts); each attach rebuilds the endpoint and restarts the stream at the sender's resend point, the
 * receiver dropping what it already delivered.
 *
 * Idle strategies: progress is manual (incoming writes land only while we read the CQ). `busy-spin` polls on
 * every event-loop turn; `backoff` polls on setImmediate, then on a 1 ms timer, then sleeps; `event` sleeps
 * at once. Sleeping = on the shared completion queue's own wait fd (native/cq_waiter.h: drain → fi_trywait →
 * uv_poll, one watcher per shared CQ), so the sender is not involved and the wake-up costs what the provider's
 * fd costs (net: ~1.2x busy poll). Providers without a wait fd (shm, efa in libfabric 1.17) fall back to
 * telling the sender over the control connection ("park", with the tail seen); it answers "wake" as soon as it
 * posted beyond that tail — a TCP round trip more, said plainly in stats().wakeup and a `notice` event. Either
 * way an idle link costs no CPU and no wake-up is lost; a 1 s safety poll bounds the damage of anything
 * unforeseen and counts what it rescued (stats().wakeup.safetyRescues; tests expect 0).
 */
import { RdmaqError } from '../errors.js';
import { LinkEndBase, type LinkRx } from '../link.js';
import { cancelTimer, type LoopTimer } from '../loop.js';
import type { IdleStrategy, LinkStats, RecordHandler } from '../types.js';
import { type ControlConn, type ControlMsg, handshakeError } from './handshake.js';
import { DESC_FIELDS, type FabricInfo, fabricNative, type NativeFabricReceiver } from './native.js';
import { type Beat, readBeat, StallWatch } from './stall.js';
import { ErrorCounts, errorKind, fabricLinkStats, SparseHistogram } from './stats.js';

const BACKOFF_SPIN_TURNS = 64;
/**
 * busy-spin: spin this long inside one native poll, then give the event loop a turn. Shorter than shm's
 * 200 µs: progress is manual, so a sender in this process is driven only between polls.
 */
const BUSY_SPIN_NS = 50_000;
const BACKOFF_TIMER_TURNS = 20;
const SAFETY_POLL_MS = 1000;
const RECORD_PROBE = 3;
const RECORD_DATA = 1;

export interface FabricReceiverOptions {
  capacity?: number;
  idle?: IdleStrategy;
  /** Next sequence the application wants after a restart (its last delivered + 1). */
  resumeFrom?: number;
  /** Records per native poll in start(); default 256. */
  batch?: number;
  /** Accept only this provider (default: whatever the sender asks for). */
  provider?: string;
  /**
   * The sender's heartbeat says records wait and our position has not moved for this long: state `stalled`
   * (default 5000 ms; checked at each heartbeat).
   */
  stallAfterMs?: number;
}

export class FabricReceiver extends LinkEndBase implements LinkRx {
  /** The one Buffer covering the ring; handler offsets index into it. */
  readonly buffer: Buffer;
  readonly capacity: number;
  readonly maxPayload: number;
  readonly idle: IdleStrategy;
  readonly provider: string | undefined;
  private readonly native: NativeFabricReceiver;
  private readonly desc: Float64Array;
  private readonly batch: number;
  private conn: ControlConn | undefined;
  private connected = false;
  private resumeFrom: number | undefined;
  /** Stream id of the sender we last served (a different one is a new stream: start at its oldest record). */
  streamId: number | undefined;
  private running:
    | {
        handler: RecordHandler;
        timer: LoopTimer | undefined;
        rounds: number;
        parked: boolean;
      }
    | undefined;
  private safety: NodeJS.Timeout | undefined;
  private safetyRescueCount = 0;
  /** How this consumer sleeps: on the CQ's wait fd, or (no fd) woken by its peer. Decided at the first sleep. */
  private wakeMode: 'cq' | 'peer' | 'none' = 'none';
  private wakeNote: string | undefined;
  /** Called by the native CQ waiter (once per sleep). */
  private readonly onCqWake = (): void => {
    const r = this.running;
    if (!r?.parked) return;
    r.parked = false;
    r.rounds = 0;
    this.step(); // now, not on the next turn: this is the latency path
  };
  private readonly onClose: () => void;
  private readonly errors = new ErrorCounts(() => this.syncStats());
  private readonly queueLat = new SparseHistogram();
  private reconnects = 0;
  private readonly peak = { last: 0 };
  private failure: Error | undefined;
  /** The sender waits for space (or we go idle): return credit at the next release. */
  private creditWanted = false;
  /** The sender said it waits (`need`): write the head even if it was sent already. */
  private resendWanted = false;
  /** Inside poll()'s handler loop: the views are not released yet (release happens when the loop ends). */
  private inPoll = false;
  private readonly stall: StallWatch;
  /** What the sender's last heartbeat said (the sequence its next record gets). */
  private peerBeat: Beat = {};
  info: FabricInfo | null = null;

  /** @internal — use FabricListener.accept(). */
  constructor(linkId: string, opts: FabricReceiverOptions, onClose: () => void) {
    super(linkId, 'receiver');
    this.idle = opts.idle ?? 'backoff';
    this.batch = opts.batch ?? 256;
    this.provider = opts.provider;
    this.resumeFrom = opts.resumeFrom;
    this.native = new fabricNative.FabricReceiverNative(
      opts.capacity ?? 4 * 1024 * 1024,
      Math.max(this.batch, 1024),
    );
    this.stall = new StallWatch(opts.stallAfterMs ?? 5000);
    this.buffer = Buffer.from(this.native.ring());
    this.desc = this.native.descriptors();
    this.capacity = this.buffer.length;
    this.maxPayload = this.capacity / 2 - 24;
    this.onClose = onClose;
    this.native.statsOpen(linkId, 'remote', this.provider ?? '');
  }

  /** The statistics file's copy of what only this object knows (state, epoch, reconnects, errors). */
  private syncStats(): void {
    this.native?.statsMeta(
      this.stateNow,
      this.epochNow,
      this.reconnects,
      0,
      this.errors.snapshot(),
      this.info?.provider ?? this.provider ?? '',
    );
  }

  protected publishState(): void {
    this.syncStats();
  }

  /** @internal Times the 1 s safety poll delivered records a lost wake-up left waiting (tests expect 0). */
  get safetyRescues(): number {
    return this.safetyRescueCount;
  }
  /** @internal The native end (rdmaq-perf --engine loops). */
  get nativeHandle(): NativeFabricReceiver {
    return this.native;
  }
  get attached(): boolean {
    return this.conn !== undefined;
  }
  /** Sequence of the next record this receiver will deliver (undefined before the first sender). */
  get nextSeq(): number | undefined {
    if (this.connected || this.epochNow > 0) return this.native.state().expected;
    return this.resumeFrom;
  }

  /**
   * Delivers up to `limit` records synchronously, in order, to `handler`, then releases them (credit).
   * If the handler throws, the records from that one on are handed out again by the next poll.
   */
  poll(handler: RecordHandler, limit = 256, spinNs = 0): number {
    if (this.failure) throw this.failure;
    // spinNs > 0: the native side keeps reading the CQ until a record arrives or spinNs pass.
    const n = this.native.poll(limit, spinNs);
    if (n <= 0) {
      // Hot path of every spinning strategy: one native call when nothing arrived.
      if (n < 0) this.checkNative();
      if (this.creditWanted) this.releaseViews(undefined);
      return 0;
    }
    const d = this.desc;
    let i = 0;
    let delivered = 0;
    this.inPoll = true;
    let threw = true;
    try {
      for (; i < n; i++) {
        const o = i * DESC_FIELDS;
        const type = d[o + 2]!;
        if (type === RECORD_DATA) {
          handler(this.buffer, d[o]!, d[o + 1]!, d[o + 3]!);
          this.queueLat.record(d[o + 4]!);
          delivered++;
        } else if (type === RECORD_PROBE) {
          this.conn?.send({ t: 'probe_reply', seq: d[o + 3]! });
          this.emit('probe', d[o + 3]!);
        }
      }
      threw = false;
    } finally {
      this.inPoll = false;
      // All handlers returned: the next native poll releases these views (one N-API crossing per poll, not
      // two), unless credit must go back now. A handler threw: the records from it on are handed out again.
      if (threw || this.creditWanted) this.releaseViews(i);
    }
    return delivered;
  }

  /** Consumes on the event loop following the idle strategy until stop() or close(). */
  start(handler: RecordHandler): void {
    this.throwIfClosed();
    if (this.running) throw new RdmaqError('ERR_RDMAQ_STATE', `receiver ${this.linkId} is already started`);
    this.running = { handler, timer: undefined, rounds: 0, parked: false };
    this.schedule(0);
  }

  stop(): void {
    const r = this.running;
    if (!r) return;
    this.clearTimer(r);
    if (r.parked) this.native.unsleep();
    this.running = undefined;
    // What was consumed goes back as credit now (or when poll() releases, if stop() came from a handler).
    if (this.inPoll) this.creditWanted = true;
    else if (this.connected && !this.failure) this.native.release(undefined, true);
    if (this.safety) clearTimeout(this.safety);
    this.safety = undefined;
  }

  stats(): LinkStats {
    const s = this.native.state();
    const who = {
      linkId: this.linkId,
      role: 'receiver',
      state: this.stateNow,
      epoch: this.epochNow,
    } as const;
    const stats = fabricLinkStats({ ...who, provider: this.info?.provider ?? this.provider ?? '' }, s, {
      occupancy: s.tail - s.head,
      peak: this.peak,
      backpressure: 0,
      resends: s.duplicates,
      reconnects: this.reconnects,
      errors: this.errors,
      latency: { queue: this.queueLat.toSparse(), rtt: [] },
    });
    return {
      ...stats,
      wakeup: {
        mode: this.wakeMode,
        ...(this.wakeNote ? { note: this.wakeNote } : {}),
        sleeps: s.sleeps,
        wakeups: s.wakeups,
        safetyRescues: this.safetyRescueCount,
      },
    };
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.stop();
    this.closedFlag = true;
    const c = this.conn;
    this.detach();
    if (c) {
      c.send({ t: 'bye' });
      c.shut('receiver closed');
    }
    this.native.closeFabric(true);
    this.setState('down', 'receiver closed');
    this.native.statsClose();
    this.onClose();
  }

  // ---- used by the listener ----

  /** @internal Next sequence to ask the sender for, or null: start at its oldest unacknowledged record. */
  resumePoint(senderStream: number): number | null {
    if (this.epochNow > 0 && this.streamId === senderStream) return this.native.state().expected;
    if (this.epochNow === 0 && this.resumeFrom !== undefined) return this.resumeFrom;
    return null;
  }

  /** @internal A new sender connection: a new slot and ring key on the shared endpoint (FabricHub). */
  openFabric(
    provider: string,
    node: string,
  ): FabricInfo & { ringAddr: bigint; ringKey: bigint; slot: number } {
    // A sender reconnecting before its old connection timed out: the new one wins, the old one is shut.
    const old = this.conn;
    this.detach();
    old?.shut('replaced by a new connection of the sender');
    this.native.closeFabric();
    const info = this.native.open(provider, node);
    this.info = info;
    if (info.waitFd && this.wakeMode === 'peer') this.wakeMode = 'none'; // decided again at the next sleep
    if (info.waitFd) this.wakeNote = undefined;
    return info;
  }

  /**
   * @internal Points the endpoint at the sender and waits for its test write (`check`) to land in the ring:
   * these providers drop writes with a wrong key or address silently, so this is where a forged or stale
   * key/address is caught (ERR_RDMAQ_HANDSHAKE) instead of a link that stalls.
   */
  async verifyPath(
    p: { address: Buffer; creditAddr: bigint; creditKey: bigint; pos: number; seq: number },
    check: number,
    timeoutMs: number,
    isClosed: () => boolean,
  ): Promise<void> {
    this.native.connect(p.address, p.creditAddr, p.creditKey, p.pos, p.seq);
    this.native.expectCheck(check);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const st = this.native.pollCheck();
      if (st === 1) return;
      if (st === 2)
        throw handshakeError("the sender's test write arrived with other bytes: wrong ring address");
      const e = this.native.error();
      if (e) throw e;
      if (isClosed()) throw handshakeError('control connection closed during the test write');
      if (Date.now() > end) {
        throw handshakeError(
          `the sender's test write did not arrive within ${timeoutMs} ms: wrong ring key/address in the handshake, or the fabric path is blocked`,
        );
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** @internal The handshake finished: follow the control connection. */
  attach(conn: ControlConn, p: { epoch: number; streamId: number }): void {
    if (this.epochNow > 0) this.reconnects += 1;
    this.epochNow = p.epoch;
    this.streamId = p.streamId;
    this.conn = conn;
    this.connected = true;
    this.failure = undefined;
    conn.on('message', (m: ControlMsg) => this.onMessage(conn, m));
    this.peerBeat = {};
    this.stall.reset(Date.now());
    conn.on('heartbeat', (m: ControlMsg) => {
      this.peerBeat = readBeat(m);
    });
    conn.on('beat', () => this.checkStall(conn, Date.now()));
    let graceful = false;
    conn.on('message', (m: ControlMsg) => {
      if (m.t === 'bye') graceful = true;
    });
    conn.once('close', (reason: string) => {
      if (this.conn !== conn) return;
      this.detach();
      this.native.closeFabric();
      if (this.closedFlag) return;
      if (graceful) {
        this.setState('down', 'sender closed the link');
        return;
      }
      this.errors.add('peer_gone');
      this.setState('down', `sender gone: ${reason}`, 'ERR_RDMAQ_PEER_GONE');
    });
    this.setState('up', `sender attached (epoch ${p.epoch})`);
    const r = this.running;
    if (r) {
      r.parked = false;
      r.rounds = 0;
      this.schedule(0);
    }
  }

  /** @internal What our heartbeats tell the sender: where we are, and what waits in the ring unconsumed. */
  beat(): Record<string, number> {
    const s = this.native.state();
    return { next: s.expected, queued: s.tail - s.head };
  }

  /**
   * At each heartbeat: the sender holds records beyond our next sequence and it has not moved for
   * stallAfterMs → `stalled`, saying whether the records sit in our ring (the consumer does not consume) or
   * never arrived (the fabric path is blocked; the sender reconnects on a fresh endpoint after a while).
   */
  private checkStall(conn: ControlConn, now: number): void {
    if (this.conn !== conn || !this.connected) return;
    const s = this.native.state();
    const senderNext = this.peerBeat.next;
    const waiting = senderNext !== undefined && senderNext > s.expected;
    const change = this.stall.update(now, waiting, s.expected);
    if (change === 'stalled') {
      const queued = s.tail - s.head;
      const secs = Math.round(this.stall.afterMs / 1000);
      this.setState(
        'stalled',
        queued > 0
          ? `records ${s.expected}..${(senderNext ?? 0) - 1} wait: ${queued} bytes in the ring, not consumed for ${secs} s${this.running ? '' : ' (the consumer is stopped)'}`
          : `records ${s.expected}..${(senderNext ?? 0) - 1} wait at the sender: none arrived for ${secs} s (fabric path blocked)`,
        'ERR_RDMAQ_STALLED',
      );
    } else if (change === 'moving') {
      this.setState('up', 'records move again');
    }
  }

  /** @internal */
  countError(code: string | undefined): void {
    this.errors.add(errorKind(code));
  }

  private detach(): void {
    this.conn = undefined;
    this.connected = false;
  }

  private onMessage(conn: ControlConn, m: ControlMsg): void {
    if (conn !== this.conn) return;
    if (m.t === 'wake') {
      const r = this.running;
      if (r?.parked) {
        r.parked = false;
        r.rounds = 0;
        this.schedule(0);
      }
    } else if (m.t === 'need') {
      // The sender waits for space: credit now (also when nobody is polling: a parked or stopped consumer),
      // even a head already sent — the sender's word may hold an older one.
      this.creditWanted = true;
      this.resendWanted = true;
      if (!this.running || this.running.parked) this.releaseViews(undefined);
    } else if (m.t === 'bye') {
      conn.shut('sender closed the link');
    }
  }

  /** Releases the first `count` views of the last poll (all: undefined), with the credit that is wanted. */
  private releaseViews(count: number | undefined): void {
    const flush = this.creditWanted;
    const resend = this.resendWanted;
    this.creditWanted = false;
    this.resendWanted = false;
    this.native.release(count, flush, resend);
  }

  private checkNative(): void {
    const e = this.native.error();
    if (!e) return;
    this.failure = e;
    this.errors.add(errorKind(e.code));
    this.setState('down', e.message, e.code);
    // The stream is broken: drop the connection; the sender reconnects and resends from our next sequence.
    const c = this.conn;
    this.detach();
    c?.send({ t: 'error', code: e.code, message: e.message });
    c?.shut(e.message);
    this.native.closeFabric();
    throw e;
  }

  private clearTimer(r: NonNullable<typeof this.running>): void {
    cancelTimer(r.timer);
    r.timer = undefined;
  }

  private schedule(delayMs: number): void {
    const r = this.running;
    if (!r) return;
    this.clearTimer(r);
    r.timer = delayMs === 0 ? setImmediate(() => this.step()) : setTimeout(() => this.step(), delayMs);
  }

  private park(): void {
    const r = this.running!;
    if (this.wakeMode !== 'peer') {
      // One native call: release the views, credit if much was consumed, drain the CQ, fi_trywait, watch.
      const slept = this.native.sleep(this.onCqWake);
      if (slept === 1) {
        this.wakeMode = 'cq';
        r.parked = true;
        this.armSafety();
        return;
      }
      if (slept === 0) {
        // Records (or an error) arrived while it drained for the sleep: deliver them first.
        r.rounds = 0;
        this.schedule(0);
        return;
      }
      this.wakeMode = 'peer';
      this.wakeNote = `${this.info?.waitNote || 'no completion-queue wait fd'}; an idle consumer is woken by its sender over the control connection instead (one TCP round trip more per wake-up)`;
      this.emit('notice', this.wakeNote);
    }
    this.native.release(undefined, true); // going idle: whatever was consumed goes back as credit now
    // Returning credit reads the CQ (manual progress), which may land a write that no poll has parsed yet.
    // Parking now would report that write's tail as seen, the sender would not wake us, and the record would
    // wait for the safety poll: poll again instead.
    const st = this.native.state();
    if (!st.empty) {
      r.rounds = 0;
      this.schedule(0);
      return;
    }
    r.parked = true;
    this.conn!.send({ t: 'park', tail: st.tail });
    this.armSafety();
  }

  private armSafety(): void {
    if (this.safety) clearTimeout(this.safety);
    this.safety = setTimeout(() => {
      this.safety = undefined;
      const r = this.running;
      if (r?.parked) {
        r.parked = false;
        this.native.unsleep();
        // A CQ sleep keeps small amounts of credit back (see park): the safety poll returns them, so an
        // idle sender's ring shows empty within a second.
        if (this.connected && !this.failure) this.native.release(undefined, true);
        const before = this.native.state().records;
        this.step();
        // Records found by the safety poll waited for it: a wake-up was lost somewhere (should stay 0).
        if (this.native.state().records > before) this.safetyRescueCount += 1;
      }
    }, SAFETY_POLL_MS);
  }

  private step(): void {
    const r = this.running;
    if (!r) return;
    r.timer = undefined;
    let n = 0;
    try {
      if (this.connected) {
        for (let i = 0; i < 16 && this.running; i++) {
          const k = this.poll(r.handler, this.batch, this.idle === 'busy-spin' ? BUSY_SPIN_NS : 0);
          n += k;
          if (k === 0) break;
        }
      }
    } catch (err) {
      this.stop();
      this.emitError(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (!this.running) return;
    if (!this.connected) {
      r.parked = true; // attach() resumes us
      this.armSafety();
      return;
    }
    if (n > 0 || this.idle === 'busy-spin') {
      r.rounds = 0;
      this.schedule(0);
      return;
    }
    r.rounds += 1;
    if (this.idle === 'event' || r.rounds > BACKOFF_SPIN_TURNS + BACKOFF_TIMER_TURNS) {
      this.park();
      return;
    }
    this.schedule(r.rounds > BACKOFF_SPIN_TURNS ? 1 : 0);
  }
}

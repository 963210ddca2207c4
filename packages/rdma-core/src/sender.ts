import { connect as netConnect } from 'node:net';
import { CONTROL_VERSION, ControlChannel, type ControlMessage } from './control.js';
import { RdmaqError } from './errors.js';
import { LinkEndBase, type LinkTx, ProbeTracker, reconnectBackoff, WriteWaiters } from './link.js';
import { type NativeSender, native, RecordType } from './native.js';
import type { LinkState, LinkStats, SenderOptions, StateChange } from './types.js';

/** First reconnect delay (doubling up to 1 s): a restarted receiver on this host is back within ms. */
const RECONNECT_MIN_MS = 10;

type Welcome = Extract<ControlMessage, { t: 'welcome' }>;

/**
 * The sending end of one link (shm). Obtain it with `connect()`. While the receiver is away (restarting),
 * records still go into the ring until it is full — they are delivered when it reattaches — and the
 * sender reconnects with backoff.
 *
 * Events: `state` (StateChange).
 */
export class Sender extends LinkEndBase implements LinkTx {
  private nativeEnd: NativeSender | undefined;
  private ringId = '';
  private ringPath = '';
  private channel: ControlChannel | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly reconnectDelays = reconnectBackoff(RECONNECT_MIN_MS);
  private readonly writeWaiters = new WriteWaiters();
  private watching = false;
  private readonly probes = new ProbeTracker(() => native.nowNs());
  private readonly opts: SenderOptions;
  /** Offsets written by claimBatch (payload offsets into `buffer`). */
  readonly batchOffsets = new Uint32Array(4096);

  /** @internal — use connect(). */
  constructor(opts: SenderOptions) {
    super(opts.linkId, 'sender');
    this.opts = opts;
  }

  protected publishState(state: LinkState): void {
    this.nativeEnd?.setState(state, this.epochNow);
  }

  private get n(): NativeSender {
    if (!this.nativeEnd)
      throw new RdmaqError('ERR_RDMAQ_STATE', `sender ${this.linkId} is not connected yet`);
    return this.nativeEnd;
  }

  /** @internal The native end (benchmark engine loops). */
  get nativeHandle(): NativeSender {
    return this.n;
  }

  /** The Buffer covering the ring (shm) where claimed payloads are written; created once. */
  get buffer(): Buffer {
    return this.n.buffer;
  }
  get capacity(): number {
    return this.n.capacity;
  }
  /** Largest payload one record can carry (header + payload ≤ capacity / 2). */
  get maxPayload(): number {
    return this.n.maxPayload;
  }
  /** Sequence the next record will carry. */
  get nextSeq(): number {
    return this.n.nextSeq;
  }

  /** Copies `payload` into one record. false = ring full (back-pressure): wait for whenWritable(). */
  send(payload: Uint8Array): boolean {
    return this.n.send(payload, RecordType.DATA);
  }

  /**
   * Zero-copy: reserves a record of `length` payload bytes and returns its offset in `buffer`, or -1 when
   * the ring is full. Write the payload there, then commit(). Throws ERR_RDMAQ_TOO_LARGE beyond maxPayload.
   */
  claim(length: number): number {
    return this.n.claim(length);
  }

  /**
   * Batched zero-copy: reserves up to `count` records of `size` bytes each (at most batchOffsets.length) and
   * returns how many it got; their payload offsets are in `batchOffsets[0..n)`. One commit() publishes all.
   */
  claimBatch(count: number, size: number): number {
    return this.n.claimBatch(Math.min(count, this.batchOffsets.length), size);
  }

  /** Publishes every claimed record (one release store). `length` may shrink a single claim. */
  commit(length?: number): void {
    if (length === undefined) this.n.commit();
    else this.n.commit(length);
  }

  /** True if a record of `payload` bytes fits now. */
  writable(payload = 0): boolean {
    return this.n.writable(payload);
  }

  /**
   * Resolves once a record of `payload` bytes (default: the largest) fits. Never blocks the event loop: the
   * receiver wakes this sender through a FIFO only when the sender asked for it.
   */
  whenWritable(payload?: number): Promise<void> {
    if (this.closedFlag) return Promise.reject(this.closedError());
    const bytes = Math.min(payload ?? this.n.maxPayload, this.n.maxPayload);
    if (this.n.writable(bytes)) return Promise.resolve();
    const p = this.writeWaiters.add(bytes);
    this.armWaiters();
    return p;
  }

  /**
   * Measures a round trip: a PROBE record travels through the ring, the receiver answers over the control
   * connection when its poll meets it. Resolves with the RTT in ns (also recorded in stats().latency.rtt).
   */
  async probe(timeoutMs = 5000): Promise<number> {
    let seq = this.n.probe();
    while (seq < 0) {
      await this.whenWritable(0);
      seq = this.n.probe();
    }
    return this.probes.add(
      seq,
      timeoutMs,
      () =>
        new RdmaqError(
          'ERR_RDMAQ_PROBE_TIMEOUT',
          `probe ${seq} on link ${this.linkId} got no reply within ${timeoutMs} ms (is the receiver polling?)`,
        ),
    );
  }

  stats(): LinkStats {
    return this.n.stats();
  }

  /** Says goodbye to the receiver and unmaps the ring. Pending whenWritable/probe calls reject. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const err = new RdmaqError('ERR_RDMAQ_CLOSED', `sender ${this.linkId} was closed`);
    this.writeWaiters.rejectAll(err);
    this.probes.rejectAll(err);
    if (this.watching) this.nativeEnd?.unwatch();
    this.watching = false;
    const peerAlive = this.channel !== undefined;
    this.channel?.end({ t: 'bye', reason: 'sender closed' });
    this.channel = undefined;
    this.setState('down', 'sender closed');
    // Nobody will ever read a ring whose receiver is gone: remove it with us (else a listener sweeps it) —
    // but only if the file at that path is still our ring, not a newer one of a restarted receiver.
    let ours = false;
    if (!peerAlive && this.nativeEnd && this.ringPath) {
      try {
        ours = native.inspectRing(this.ringPath).ringId === this.ringId;
      } catch {
        ours = false;
      }
    }
    this.nativeEnd?.close(ours);
  }

  // ---- connection handling ----

  /** @internal Connects and performs the handshake; resolves on the first welcome. */
  async start(): Promise<void> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    let lastErr: Error | undefined;
    while (Date.now() < deadline) {
      try {
        await this.handshake();
        return;
      } catch (err) {
        lastErr = err as Error;
        const code = (err as { code?: string }).code;
        // Retry only while the listener is not there yet; a refusal by a live listener is final.
        if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    throw new RdmaqError(
      'ERR_RDMAQ_CONNECT',
      `no rdmaq listener answered on ${this.opts.socketPath} within ${timeoutMs} ms (${lastErr?.message ?? 'timeout'}); start the receiving agent or check the path`,
      { cause: lastErr },
    );
  }

  private handshake(): Promise<void> {
    const path = this.opts.socketPath!;
    return new Promise((resolve, reject) => {
      const sock = netConnect(path);
      let settled = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        sock.destroy();
        reject(e);
      };
      sock.once('error', fail);
      sock.once('connect', () => {
        sock.off('error', fail);
        const ch = new ControlChannel(sock);
        const onFirst = (msg: ControlMessage): void => {
          if (settled) return;
          if (msg.t === 'error') {
            settled = true;
            ch.destroy();
            reject(new RdmaqError(msg.code, `listener refused link ${this.linkId}: ${msg.message}`));
            return;
          }
          if (msg.t !== 'welcome') {
            fail(new RdmaqError('ERR_RDMAQ_HANDSHAKE', `unexpected ${msg.t} before welcome`));
            return;
          }
          try {
            this.onWelcome(ch, msg);
            settled = true;
            resolve();
          } catch (err) {
            settled = true;
            ch.end({ t: 'bye', reason: (err as Error).message });
            reject(err);
          }
        };
        ch.once('message', onFirst);
        ch.once('close', () =>
          fail(
            new RdmaqError(
              'ERR_RDMAQ_HANDSHAKE',
              `listener on ${path} closed the connection during the handshake`,
            ),
          ),
        );
        ch.send({
          t: 'hello',
          v: CONTROL_VERSION,
          linkId: this.linkId,
          pid: process.pid,
          ringId: this.ringId,
        });
      });
    });
  }

  private onWelcome(ch: ControlChannel, w: Welcome): void {
    if (this.closedFlag) {
      // close() ran while this (re)connect was in flight.
      ch.end({ t: 'bye', reason: 'sender closed' });
      return;
    }
    if (w.v !== CONTROL_VERSION) {
      throw new RdmaqError(
        'ERR_RDMAQ_HANDSHAKE',
        `listener speaks control version ${w.v}, this side ${CONTROL_VERSION}`,
      );
    }
    if (this.nativeEnd && w.ringId === this.ringId) {
      // Same ring (the receiver process restarted and reattached): continue where the control block says.
      this.nativeEnd.resync();
      this.nativeEnd.countReconnect();
    } else {
      const old = this.nativeEnd;
      const fresh = new native.Sender({
        transport: 'shm',
        linkId: this.linkId,
        ringPath: w.ringPath,
        rxWakePath: w.rxWakePath,
        txWakePath: w.txWakePath,
        checksum: this.opts.checksum === true,
      });
      if (old) {
        // The receiver made a fresh ring (its old one was closed and removed): resend what it had not
        // released, from the sequence it expects. Counters carry over in the old end's place.
        const r = native.resend(old, fresh, w.nextSeq);
        if (r.dropped > 0) {
          this.emit('state', {
            state: this.stateNow,
            reason: `${r.dropped} unacknowledged records did not fit the receiver's new, smaller ring`,
            code: 'ERR_RDMAQ_RESEND_OVERFLOW',
          } satisfies StateChange);
        }
        fresh.countReconnect();
        // Never unlink here: the new ring lives at the same path.
        old.close(false);
      }
      this.nativeEnd = fresh;
      this.nativeEnd.setBatchArray(this.batchOffsets);
      this.ringId = w.ringId;
      this.ringPath = w.ringPath;
      if (this.watching) {
        this.watching = false;
        this.armWaiters();
      }
    }
    this.channel = ch;
    this.epochNow = w.epoch;
    this.reconnectDelays.reset();
    ch.on('message', (msg: ControlMessage) => this.onControl(msg));
    ch.on('close', () => this.onPeerGone(ch));
    this.setState('up', `attached to ring ${w.ringPath}`);
    this.armWaiters();
  }

  private onControl(msg: ControlMessage): void {
    if (msg.t === 'probe_reply') {
      const rtt = this.probes.answer(msg.seq);
      if (rtt !== undefined) this.n.recordRtt(rtt);
    } else if (msg.t === 'bye') {
      this.byeReason = msg.reason;
    }
  }
  private byeReason: string | undefined;

  private onPeerGone(ch: ControlChannel): void {
    if (this.channel !== ch || this.closedFlag) return;
    this.channel = undefined;
    const graceful = this.byeReason !== undefined;
    if (!graceful) this.nativeEnd?.countError('peer_gone');
    this.setState(
      'down',
      graceful
        ? `receiver closed the link (${this.byeReason})`
        : 'receiver process is gone (control socket closed)',
      graceful ? undefined : 'ERR_RDMAQ_PEER_GONE',
    );
    this.byeReason = undefined;
    if (this.opts.reconnect === false) return;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closedFlag || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closedFlag) return;
      this.handshake().catch(() => this.scheduleReconnect());
    }, this.reconnectDelays.next());
    // Reconnecting alone must not keep a process alive that has nothing else to do.
    this.reconnectTimer.unref();
  }

  /** Arms the FIFO wake-up for the smallest pending waiter; resolves those that fit. */
  private armWaiters(): void {
    const n = this.nativeEnd;
    if (!n) return;
    this.writeWaiters.resolveFitting((bytes) => n.writable(bytes));
    if (this.writeWaiters.length === 0) {
      if (this.watching) {
        n.disarmWritable();
        n.unwatch();
        this.watching = false;
      }
      return;
    }
    const need = this.writeWaiters.smallest;
    if (!this.watching) {
      n.watch(() => this.armWaiters());
      this.watching = true;
    }
    // armWritable re-checks after arming: false means space appeared meanwhile.
    if (!n.armWritable(need)) setImmediate(() => this.armWaiters());
  }
}

/** Opens the sending end of link `linkId` to the listener at `socketPath` (shm). */
export async function connectShm(opts: SenderOptions): Promise<Sender> {
  if (!opts.socketPath) {
    throw new RdmaqError(
      'ERR_RDMAQ_ARG',
      'connect: the shm transport needs socketPath (the peer listener socket)',
    );
  }
  const s = new Sender(opts);
  await s.start();
  return s;
}

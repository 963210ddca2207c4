import type { ControlChannel, ControlMessage } from './control.js';
import { RdmaqError } from './errors.js';
import { LinkEndBase, type LinkRx } from './link.js';
import type { NativeReceiver } from './native.js';
import type { IdleStrategy, LinkState, LinkStats, RecordHandler } from './types.js';

/** Backoff: spin this long inside one native call before giving the event loop a turn. */
const BACKOFF_SPIN_NS = 20_000;
/** Backoff: empty spins (each BACKOFF_SPIN_NS) before parking on the wake-up fd. */
const BACKOFF_ROUNDS = 16;
/** busy-spin: spin this long per native call, then yield one event-loop turn (timers, sockets keep working). */
const BUSY_SPIN_NS = 200_000;
/** busy-spin / backoff: most of one event-loop turn spent spinning and delivering (timers still run). */
const TURN_BUDGET_NS = 200_000;

/**
 * The receiving end of one link. Created by `Listener.accept()`; the ring (in this process's memory) exists
 * from then on, and a sender attaches to it through the listener's handshake, possibly several times (restarts).
 *
 * Events: `state` (StateChange), `error` (Error, only while started: consumption stops), `probe` (seq).
 */
export class Receiver extends LinkEndBase implements LinkRx {
  /** The one Buffer covering the ring data region; handler offsets index into it. */
  readonly buffer: Buffer;
  readonly capacity: number;
  /** Largest payload a record can carry on this ring. */
  readonly maxPayload: number;
  private readonly native: NativeReceiver;
  /** Idle strategy of start() (fixed at accept time). */
  readonly idle: IdleStrategy;
  private readonly batch: number;
  private channel: ControlChannel | undefined;
  private running:
    | { handler: RecordHandler; timer: NodeJS.Immediate | undefined; rounds: number }
    | undefined;
  private watching = false;
  private readonly onClose: () => void;

  /** @internal — use Listener.accept(). */
  constructor(
    linkId: string,
    native: NativeReceiver,
    opts: { idle?: IdleStrategy; batch?: number },
    onClose: () => void,
  ) {
    super(linkId, 'receiver');
    this.native = native;
    this.buffer = native.buffer;
    this.capacity = native.capacity;
    this.maxPayload = native.maxPayload;
    this.idle = opts.idle ?? 'backoff';
    this.batch = opts.batch ?? 256;
    this.onClose = onClose;
    native.setState('connecting', 0);
    native.setProbeHandler((seq) => {
      // PROBE records travel through the ring; the reply goes back over the control connection.
      this.channel?.send({ t: 'probe_reply', seq });
      this.emit('probe', seq);
    });
  }

  /** @internal The native end (benchmark engine loops). */
  get nativeHandle(): NativeReceiver {
    return this.native;
  }

  protected publishState(state: LinkState): void {
    if (!this.closedFlag || state === 'down') this.native.setState(state, this.epochNow);
  }

  /** @internal Identity of the ring (shm), sent in the handshake. */
  get ringId(): string {
    return this.native.ringId;
  }

  /** Sequence of the next record this receiver will deliver. */
  get nextSeq(): number {
    return this.native.nextSeq;
  }
  /** True while a sender is attached (its control connection is open). */
  get attached(): boolean {
    return this.channel !== undefined;
  }

  /**
   * Delivers up to `limit` records synchronously, in order, to `handler` (one native call) and returns how
   * many were delivered. Records are released to the sender (credit) when poll returns. Throws
   * ERR_RDMAQ_BAD_HEADER if the ring holds a corrupt header, ERR_RDMAQ_CHECKSUM if a sealed payload does not
   * match its CRC32C (the link is then broken: never data).
   */
  poll(handler: RecordHandler, limit = 256, spinNs = 0): number {
    // spinNs: wait for the first record inside one native call (a spinning caller's loop without N-API churn).
    return spinNs > 0 ? this.native.spinPoll(handler, limit, spinNs) : this.native.poll(handler, limit);
  }

  /**
   * Batched poll without one JS call per record: fills `out` with `[offset, length, seq]` triples (so `out`
   * needs 3 × limit entries) and returns the count. The views stay valid until the next poll/pollBatch/release.
   */
  pollBatch(out: Float64Array, limit = Math.floor(out.length / 3), spinNs = 0): number {
    if (limit * 3 > out.length) {
      throw new RdmaqError(
        'ERR_RDMAQ_ARG',
        `pollBatch: out holds ${out.length / 3} triples, limit is ${limit}`,
      );
    }
    // spinNs > 0: wait for the first record inside the native call (after releasing the previous batch).
    return this.native.pollBatch(out, limit, spinNs);
  }

  /** Releases the records of the last pollBatch (returns their space to the sender). */
  release(): void {
    this.native.release();
  }

  /**
   * Consumes records on the event loop following the idle strategy until stop() or close(). Handler errors
   * and link errors stop consumption and are emitted as `error`.
   */
  start(handler: RecordHandler): void {
    this.throwIfClosed();
    if (this.running) throw new RdmaqError('ERR_RDMAQ_STATE', `receiver ${this.linkId} is already started`);
    this.running = { handler, timer: undefined, rounds: 0 };
    if (this.idle !== 'busy-spin') {
      this.native.watch(() => this.onWake());
      this.watching = true;
    }
    this.schedule();
  }

  /** Stops start()-driven consumption (records stay in the ring for a later poll or start). */
  stop(): void {
    if (!this.running) return;
    if (this.running.timer) clearImmediate(this.running.timer);
    this.running = undefined;
    if (this.watching) {
      this.native.unwatch();
      this.watching = false;
    }
    this.native.unpark();
  }

  /** Counters, gauges and histograms in one native call. */
  stats(): LinkStats {
    return this.native.stats();
  }

  /** Detaches the sender, removes the ring file and FIFOs. Records still in the ring are discarded. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.stop();
    this.closedFlag = true;
    const ch = this.channel;
    this.channel = undefined;
    ch?.end({ t: 'bye', reason: 'receiver closed' });
    this.native.wakeWriter();
    this.setState('down', 'receiver closed');
    this.native.close(true);
    this.onClose();
  }

  // ---- internals used by the listener ----

  /** @internal A sender passed the handshake: reply welcome and follow its control connection. */
  attachSender(channel: ControlChannel, welcome: (epoch: number) => ControlMessage): void {
    this.channel = channel;
    this.epochNow += 1;
    if (this.epochNow > 1) this.native.countReconnect();
    channel.send(welcome(this.epochNow));
    // A restarted receiver: the sender may be waiting for space that the previous receiver freed.
    this.native.wakeWriter();
    let graceful = false;
    channel.on('message', (msg: ControlMessage) => {
      if (msg.t === 'bye') graceful = true;
    });
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      if (this.closedFlag) return;
      if (!graceful) this.native.countError('peer_gone');
      this.setState(
        'down',
        graceful ? 'sender closed the link' : 'sender process is gone (control socket closed)',
        graceful ? undefined : 'ERR_RDMAQ_PEER_GONE',
      );
    });
    this.setState('up', 'sender attached');
  }

  private schedule(): void {
    const r = this.running;
    if (!r || r.timer) return;
    r.timer = setImmediate(() => {
      r.timer = undefined;
      this.step();
    });
  }

  private onWake(): void {
    // The fd was drained and the parked flag cleared natively.
    if (this.running) {
      this.running.rounds = 0;
      this.step();
    }
  }

  private fail(err: unknown): void {
    this.stop();
    const e = err instanceof Error ? err : new Error(String(err));
    const code = (e as { code?: string }).code;
    if (code === 'ERR_RDMAQ_BAD_HEADER' || code === 'ERR_RDMAQ_CHECKSUM')
      this.setState('down', e.message, code);
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else
      queueMicrotask(() => {
        throw e;
      });
  }

  /**
   * Spins and delivers for up to TURN_BUDGET_NS of this event-loop turn: after a batch, wait up to `spinNs`
   * for the next one here rather than going round the event loop (a turn costs ~1–2 µs here, which a
   * ping-pong pays on every hop). Returns the records delivered; an empty spin of `spinNs` ends the turn.
   */
  private spinTurn(r: { handler: RecordHandler }, spinNs: number): number {
    const end = performance.now() + TURN_BUDGET_NS / 1e6;
    let total = 0;
    for (;;) {
      const n = this.native.spinPoll(r.handler, this.batch, spinNs);
      total += n;
      if (n === 0 || this.running !== r || performance.now() >= end) return total;
    }
  }

  /** One turn of the consumption loop. */
  private step(): void {
    const r = this.running;
    if (!r) return;
    try {
      if (this.idle === 'busy-spin') {
        this.spinTurn(r, BUSY_SPIN_NS);
        this.schedule();
        return;
      }
      if (this.idle === 'event') {
        // Drain what is there, then park at once.
        // Drain what is there, park as soon as the ring runs dry (one native call per batch).
        for (let i = 0; i < 64 && this.running; i++) {
          if (this.native.pollOrPark(r.handler, this.batch) < 0) {
            if (!this.running && !this.closedFlag) this.native.unpark(); // the handler stopped us meanwhile
            return; // parked: onWake resumes
          }
        }
        if (this.running) this.schedule(); // a long burst: give the event loop a turn
        return;
      }
      // backoff: spin briefly per turn; after BACKOFF_ROUNDS empty turns, park.
      const n = this.spinTurn(r, BACKOFF_SPIN_NS);
      if (!this.running) return;
      if (n > 0) r.rounds = 0;
      else r.rounds += 1;
      if (r.rounds >= BACKOFF_ROUNDS && this.native.park()) return;
      this.schedule();
    } catch (err) {
      this.fail(err);
    }
  }
}

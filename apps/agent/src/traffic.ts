/**
 * Traffic generator for one sending link (demo and load tests): `rate` messages per second with sizes from a
 * distribution, optionally in on/off bursts. Real records through the real ring: the generator only calls
 * Sender.send(); everything the agent reports comes from rdma-core's native counters.
 *
 * Pacing: a timer wakes every `tickMs`, computes how many messages are due since the start of the current
 * "on" period, and sends them in one go. When the ring is full it waits for credit (whenWritable) instead of
 * spinning; a backlog of more than one second is forgotten (counted as `skipped`) so a stalled peer does not
 * cause a storm when it comes back.
 */
import { randomBytes } from 'node:crypto';
import type { SizeDist, TrafficConfig } from './config.js';

/**
 * Every generated record of 16 bytes or more starts with a stamp the receiving agent checks (SequenceChecker):
 * u32 magic 'RQTG', u32 stream (random per generator: a restarted sender is a new stream), u64 counter (1, 2,
 * … per record the ring accepted). Smaller records carry none and are not checked.
 */
export const STAMP_MAGIC = 0x47545152;
export const STAMP_BYTES = 16;

/** What the receiving side found in the stamps of one link (cumulative). */
export interface SequenceStats {
  /** Stamped records seen. */
  checked: number;
  /** Records missing between two stamps of the same stream (a counter that jumped ahead). */
  lost: number;
  /** Records whose counter was not above the last one seen of their stream (delivered twice). */
  duplicated: number;
}

/**
 * Per-link check of the generator's stamps: within a stream the counters must follow 1, 2, 3… — a jump is
 * records lost, a repeat is records delivered twice. A new stream (the sender restarted) starts a new run:
 * what was lost with a sender that died unjournaled cannot be told from here, and a receiver that restarts
 * starts with no memory (so a redelivery across its own restart is not seen).
 */
export class SequenceChecker {
  readonly stats: SequenceStats = { checked: 0, lost: 0, duplicated: 0 };
  private stream = -1;
  private last = 0;

  /** One delivered record (the consumer's view: valid only during the call). */
  record(buf: Uint8Array, off: number, len: number): void {
    if (len < STAMP_BYTES) return;
    const u32 = (o: number) =>
      (buf[off + o]! | (buf[off + o + 1]! << 8) | (buf[off + o + 2]! << 16) | (buf[off + o + 3]! << 24)) >>>
      0;
    if (u32(0) !== STAMP_MAGIC) return;
    const stream = u32(4);
    const counter = u32(8) + u32(12) * 4294967296;
    this.stats.checked++;
    if (stream !== this.stream) {
      this.stream = stream;
      this.last = counter;
      return;
    }
    if (counter > this.last + 1) this.stats.lost += counter - this.last - 1;
    if (counter <= this.last) this.stats.duplicated++;
    else this.last = counter;
  }
}

/** The part of rdma-core's Sender the generator uses. */
export interface TrafficSink {
  readonly state: string;
  readonly closed: boolean;
  readonly maxPayload: number;
  send(payload: Uint8Array): boolean;
  whenWritable(payload?: number): Promise<void>;
}

export interface TrafficStats {
  sent: number;
  bytes: number;
  /** Messages not sent because the backlog exceeded one second (ring full for long, peer away). */
  skipped: number;
  /** Times the generator had to wait for ring space. */
  waits: number;
}

/** Picks message sizes; `random` is injectable for reproducible tests. */
export function sizePicker(
  dist: SizeDist,
  maxPayload: number,
  random: () => number = Math.random,
): () => number {
  const clamp = (n: number) => Math.max(0, Math.min(n, maxPayload));
  if (typeof dist === 'number') {
    const n = clamp(dist);
    return () => n;
  }
  switch (dist.dist) {
    case 'fixed': {
      const n = clamp(dist.bytes);
      return () => n;
    }
    case 'uniform': {
      const lo = clamp(dist.min);
      const hi = clamp(dist.max);
      return () => lo + Math.floor(random() * (hi - lo + 1));
    }
    case 'choice': {
      const total = dist.choices.reduce((a, c) => a + c.weight, 0);
      const cum: Array<[number, number]> = [];
      let acc = 0;
      for (const c of dist.choices) {
        acc += c.weight / total;
        cum.push([acc, clamp(c.bytes)]);
      }
      return () => {
        const r = random();
        for (const [p, n] of cum) if (r < p) return n;
        return cum[cum.length - 1]![1];
      };
    }
  }
}

/** The largest message a distribution can produce. */
export function largestSize(dist: SizeDist): number {
  if (typeof dist === 'number') return dist;
  switch (dist.dist) {
    case 'fixed':
      return dist.bytes;
    case 'uniform':
      return dist.max;
    case 'choice':
      return Math.max(...dist.choices.map((c) => c.bytes));
  }
}

export class TrafficGenerator {
  readonly stats: TrafficStats = { sent: 0, bytes: 0, skipped: 0, waits: 0 };
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private waiting = false;
  private periodStart = 0;
  private dueBase = 0;
  private readonly payload: Buffer;
  private readonly pick: () => number;
  private readonly tickMs: number;
  /** Counter of the next stamped record (SequenceChecker). */
  private nextStamp = 1;

  constructor(
    private readonly sink: TrafficSink,
    private readonly cfg: TrafficConfig,
    random: () => number = Math.random,
  ) {
    this.pick = sizePicker(cfg.size, sink.maxPayload, random);
    // Filled once with a recognisable pattern; each message is a prefix of it (send copies it into the ring).
    // Only as large as the largest message: maxPayload is half the ring (MiBs per link otherwise).
    this.payload = Buffer.alloc(Math.min(sink.maxPayload, largestSize(cfg.size)));
    for (let i = 0; i < this.payload.length; i++) this.payload[i] = i & 0xff;
    if (this.payload.length >= STAMP_BYTES) {
      this.payload.writeUInt32LE(STAMP_MAGIC, 0);
      this.payload.writeUInt32LE(randomBytes(4).readUInt32LE(0), 4);
    }
    // Fast rates tick every ms; slow ones tick once per message (but at least every 100 ms).
    this.tickMs = Math.max(1, Math.min(100, Math.floor(1000 / cfg.rate)));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.periodStart = performance.now();
    this.dueBase = this.stats.sent + this.stats.skipped;
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => this.tick(), ms);
  }

  /** Messages that should have been sent by now in the current schedule. */
  private due(now: number): number {
    const burst = this.cfg.burst;
    const elapsed = now - this.periodStart;
    if (!burst) return this.dueBase + Math.floor((elapsed * this.cfg.rate) / 1000);
    const period = burst.onMs + burst.offMs;
    const full = Math.floor(elapsed / period);
    const inPeriod = Math.min(elapsed - full * period, burst.onMs);
    const onMs = full * burst.onMs + inPeriod;
    return this.dueBase + Math.floor((onMs * this.cfg.rate) / 1000);
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running || this.waiting) return;
    if (this.sink.closed) {
      this.stop();
      return;
    }
    if (this.sink.state !== 'up' && this.sink.state !== 'degraded' && this.sink.state !== 'stalled') {
      // The peer is away: keep the schedule moving, do not pile up a backlog.
      this.forgetBacklog(performance.now());
      this.schedule(this.tickMs);
      return;
    }
    const now = performance.now();
    let todo = this.due(now) - this.stats.sent - this.stats.skipped;
    const cap = Math.ceil(this.cfg.rate);
    if (todo > cap) {
      this.stats.skipped += todo - cap;
      todo = cap;
    }
    while (todo > 0) {
      const size = this.pick();
      const stamped = size >= STAMP_BYTES;
      if (stamped) {
        this.payload.writeUInt32LE(this.nextStamp % 4294967296, 8);
        this.payload.writeUInt32LE(Math.floor(this.nextStamp / 4294967296), 12);
      }
      let ok: boolean;
      try {
        ok = this.sink.send(this.payload.subarray(0, size));
      } catch {
        // Not connected (yet/again): try next tick.
        break;
      }
      if (!ok) {
        this.stats.waits++;
        this.waiting = true;
        this.sink.whenWritable(size).then(
          () => {
            this.waiting = false;
            this.tick();
          },
          () => {
            this.waiting = false;
            this.schedule(this.tickMs);
          },
        );
        return;
      }
      this.stats.sent++;
      this.stats.bytes += size;
      if (stamped) this.nextStamp++;
      todo--;
    }
    this.schedule(this.tickMs);
  }

  private forgetBacklog(now: number): void {
    const todo = this.due(now) - this.stats.sent - this.stats.skipped;
    if (todo > 0) this.stats.skipped += todo;
  }
}

/**
 * Streams samples and events to the hub over one WebSocket (`/ws/agent`, bearer token).
 *
 *   connect → hello → welcome{lastSeq} → replay buffered samples with seq > lastSeq, in order → live
 *
 * Every sample goes into a bounded ring first (count = bufferSeconds / interval, and a byte cap); the pump
 * sends from the ring, so live sending and replay are one code path and order is kept by construction.
 * Acks from the hub free memory early. While the hub is away the links keep running; whatever happens on
 * the socket (refused, 4xx, close codes, bad frames, silence) is logged with its reason and retried with
 * exponential backoff and jitter.
 */
import type { IncomingMessage } from 'node:http';
import {
  type AgentEvent,
  Backoff,
  CloseCode,
  decodeFrame,
  type Hello,
  HubFrameSchema,
  MAX_FRAME_BYTES,
  type Sample,
} from '@rdmaq/shared';
import WebSocket from 'ws';
import type { Clock, TimerHandle } from './clock.js';
import type { Logger } from './logger.js';

export interface HubClientOptions {
  url: string;
  token: string;
  /** Built fresh for every connection (providers may change). */
  hello: () => Hello;
  logger: Logger;
  clock: Clock;
  /** Most samples kept while the hub is away (bufferSeconds / interval). */
  maxSamples: number;
  maxBytes: number;
  backoff: { initialMs: number; maxMs: number };
  /** How long to wait for `welcome` after `hello`. */
  welcomeTimeoutMs?: number;
  /** WebSocket ping period; a hub that does not answer two pings in a row is dropped. */
  pingIntervalMs?: number;
  /** Events kept while the hub is away. */
  maxEvents?: number;
  random?: () => number;
}

export type HubState = 'idle' | 'connecting' | 'hello-sent' | 'live' | 'waiting' | 'stopped';

interface Entry {
  seq: number;
  text: string;
  sent: boolean;
}

/** Stop pushing frames into the socket above this many queued bytes; resume when it drains. */
const HIGH_WATER = 1024 * 1024;

export interface HubClientStats {
  state: HubState;
  connects: number;
  bufferedSamples: number;
  bufferedBytes: number;
  /** Samples evicted before the hub had them: holes in the hub's history. */
  droppedSamples: number;
  lastError: string | undefined;
  /** Highest seq the hub confirmed (welcome.lastSeq or ack). */
  ackedSeq: number;
}

export class HubClient {
  private readonly opts: Required<Omit<HubClientOptions, 'random'>> & { random?: () => number };
  private readonly ring: Entry[] = [];
  private ringBytes = 0;
  private readonly events: string[] = [];
  private ws: WebSocket | undefined;
  private state: HubState = 'idle';
  private nextToSend = 1;
  private ackedSeq = 0;
  private lastPushed = 0;
  private dropped = 0;
  private droppedThisOutage = 0;
  private connects = 0;
  private lastError: string | undefined;
  private readonly backoff: Backoff;
  private retryTimer: TimerHandle | undefined;
  private welcomeTimer: TimerHandle | undefined;
  private pingTimer: TimerHandle | undefined;
  private pumpTimer: TimerHandle | undefined;
  private stableTimer: TimerHandle | undefined;
  private missedPongs = 0;
  private readonly log: Logger;

  constructor(opts: HubClientOptions) {
    this.opts = { welcomeTimeoutMs: 10_000, pingIntervalMs: 15_000, maxEvents: 1000, ...opts };
    this.backoff = new Backoff({
      initialMs: opts.backoff.initialMs,
      maxMs: opts.backoff.maxMs,
      random: opts.random,
    });
    this.log = opts.logger.child({ component: 'hub' });
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.connect();
  }

  get stats(): HubClientStats {
    return {
      state: this.state,
      connects: this.connects,
      bufferedSamples: this.ring.length,
      bufferedBytes: this.ringBytes,
      droppedSamples: this.dropped,
      lastError: this.lastError,
      ackedSeq: this.ackedSeq,
    };
  }

  /** Queues a sample (seq must be the previous one + 1) and sends it when the hub is live. */
  pushSample(sample: Sample): void {
    if (sample.seq !== this.lastPushed + 1) {
      throw new RangeError(`sample seq ${sample.seq} does not follow ${this.lastPushed}`);
    }
    this.lastPushed = sample.seq;
    const text = JSON.stringify(sample);
    if (Buffer.byteLength(text) > MAX_FRAME_BYTES) {
      // Cannot happen with the schema's link limit unless histograms explode; never send what the hub refuses.
      this.log.error({ seq: sample.seq, bytes: text.length }, 'sample exceeds the frame limit; not sent');
      this.dropped++;
      if (this.nextToSend === sample.seq) this.nextToSend++;
      return;
    }
    this.ring.push({ seq: sample.seq, text, sent: false });
    this.ringBytes += text.length;
    this.evict();
    this.pump();
  }

  pushEvent(event: AgentEvent): void {
    const text = JSON.stringify(event);
    // Events are small and rare: while live they go straight out (the socket queues them behind samples).
    if (this.state === 'live' && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(text);
      return;
    }
    this.events.push(text);
    if (this.events.length > this.opts.maxEvents) this.events.shift();
  }

  /** Resolves once every pushed sample was handed to a live socket and written out, or after timeoutMs. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const ws = this.ws;
      if (this.state === 'live' && ws && this.nextToSend > this.lastPushed && ws.bufferedAmount === 0)
        return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  /** Closes the connection (1000) and stops reconnecting. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const t of [this.retryTimer, this.welcomeTimer, this.pingTimer, this.pumpTimer, this.stableTimer]) {
      t?.cancel();
    }
    const ws = this.ws;
    this.ws = undefined;
    if (!ws) return;
    if (ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000);
      ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      if (ws.readyState === WebSocket.OPEN) ws.close(CloseCode.Normal, 'agent shutting down');
      else ws.terminate();
    });
  }

  private connect(): void {
    if (this.state === 'stopped') return;
    this.state = 'connecting';
    this.connects++;
    const ws = new WebSocket(this.opts.url, {
      headers: { authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: 10_000,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
    });
    this.ws = ws;
    let failure: string | undefined;

    ws.on('unexpected-response', (req, res: IncomingMessage) => {
      // The hub refused the upgrade (401 bad token, 403, 404 wrong path, 5xx…): read a little of the body for
      // the log, then drop the request; the close handler below schedules the retry.
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 1024) chunks.push(c);
        size += c.length;
      });
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        const body = Buffer.concat(chunks).toString('utf8').slice(0, 512).trim();
        failure = `hub answered HTTP ${res.statusCode ?? '?'} ${res.statusMessage ?? ''}${body ? `: ${body}` : ''}`;
        const hint =
          res.statusCode === 401 || res.statusCode === 403
            ? 'check hub.token (RDMAQ_HUB_TOKEN) against the tokens the hub accepts'
            : res.statusCode === 404
              ? 'check the path of hub.url (the hub serves /ws/agent)'
              : undefined;
        this.log.warn({ status: res.statusCode, body, hint }, `hub refused the connection: ${failure}`);
        req.destroy();
        this.onGone(ws, failure);
      };
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
      setTimeout(() => res.destroy(), 2000).unref();
    });

    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.state = 'hello-sent';
      this.log.debug({ url: this.opts.url }, 'connected; sending hello');
      ws.send(JSON.stringify(this.opts.hello()));
      this.welcomeTimer = this.opts.clock.setTimeout(() => {
        this.log.warn({ timeoutMs: this.opts.welcomeTimeoutMs }, 'hub sent no welcome in time; reconnecting');
        this.closeWith(ws, CloseCode.BadFrame, 'no welcome');
      }, this.opts.welcomeTimeoutMs);
    });

    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws) return;
      const raw = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        this.badFrame(ws, 'binary frame (the protocol is JSON text)');
        return;
      }
      const decoded = decodeFrame(HubFrameSchema, raw);
      if (!decoded.ok) {
        this.badFrame(ws, decoded.reason, decoded.closeCode);
        return;
      }
      const frame = decoded.frame;
      switch (frame.type) {
        case 'welcome':
          this.onWelcome(ws, frame.lastSeq, frame.hubVersion);
          break;
        case 'ack':
          this.onAck(frame.seq);
          break;
        case 'error':
          this.lastError = `${frame.code}: ${frame.message}`;
          this.log.warn({ code: frame.code }, `hub reported an error: ${frame.message}`);
          break;
      }
    });

    ws.on('pong', () => {
      this.missedPongs = 0;
    });

    ws.on('error', (err: Error & { code?: string }) => {
      failure ??= err.code ? `${err.code}: ${err.message}` : err.message;
    });

    ws.on('close', (code, reasonBuf) => {
      const reason = reasonBuf.toString('utf8');
      this.onGone(ws, failure ?? `closed with code ${code}${reason ? ` (${reason})` : ''}`, code);
    });
  }

  private onWelcome(ws: WebSocket, lastSeq: number, hubVersion: string): void {
    if (this.state !== 'hello-sent') {
      this.badFrame(ws, 'welcome received twice');
      return;
    }
    this.welcomeTimer?.cancel();
    this.state = 'live';
    this.lastError = undefined;
    if (lastSeq > this.ackedSeq) this.ackedSeq = lastSeq;
    // The hub already stores these: free them now.
    while (this.ring.length > 0 && this.ring[0]!.seq <= lastSeq)
      this.ringBytes -= this.ring.shift()!.text.length;
    const oldest = this.ring[0]?.seq ?? this.lastPushed + 1;
    this.nextToSend = lastSeq + 1;
    if (this.nextToSend < oldest) {
      const missing = oldest - this.nextToSend;
      this.log.warn(
        { hubLastSeq: lastSeq, oldestBuffered: oldest, missing },
        `${missing} samples are no longer buffered (the hub was away longer than hub.bufferSeconds); history has a hole`,
      );
      this.nextToSend = oldest;
    }
    if (this.nextToSend > this.lastPushed + 1) this.nextToSend = this.lastPushed + 1;
    const replay = this.lastPushed + 1 - this.nextToSend;
    this.log.info(
      { hubVersion, lastSeq, replay, droppedThisOutage: this.droppedThisOutage },
      'hub welcomed us',
    );
    this.droppedThisOutage = 0;
    // Trust the connection (reset the backoff) only once it stayed up a while: a hub that welcomes and then
    // drops us at once must not be hammered at the initial delay.
    this.stableTimer = this.opts.clock.setTimeout(
      () => this.backoff.reset(),
      Math.max(10_000, this.opts.backoff.initialMs * 4),
    );
    for (const e of this.events.splice(0)) ws.send(e);
    this.schedulePing(ws);
    this.pump();
  }

  private onAck(seq: number): void {
    if (seq > this.ackedSeq) this.ackedSeq = seq;
    // Free what the hub has stored; never beyond what was sent on this connection.
    while (this.ring.length > 0 && this.ring[0]!.seq <= seq && this.ring[0]!.sent) {
      this.ringBytes -= this.ring.shift()!.text.length;
    }
  }

  /** Sends ring entries from nextToSend on, while the socket is live and not backed up. */
  private pump(): void {
    const ws = this.ws;
    if (this.state !== 'live' || !ws || ws.readyState !== WebSocket.OPEN) return;
    if (this.ring.length === 0) return;
    const base = this.ring[0]!.seq;
    while (this.nextToSend <= this.lastPushed) {
      if (ws.bufferedAmount >= HIGH_WATER) {
        this.pumpTimer?.cancel();
        this.pumpTimer = this.opts.clock.setTimeout(() => this.pump(), 10);
        return;
      }
      const entry = this.ring[this.nextToSend - base];
      if (!entry) break;
      ws.send(entry.text);
      entry.sent = true;
      this.nextToSend++;
    }
  }

  private evict(): void {
    while (
      this.ring.length > this.opts.maxSamples ||
      (this.ringBytes > this.opts.maxBytes && this.ring.length > 1)
    ) {
      const e = this.ring.shift()!;
      this.ringBytes -= e.text.length;
      if (!e.sent && e.seq > this.ackedSeq) {
        this.dropped++;
        this.droppedThisOutage++;
        if (this.droppedThisOutage === 1) {
          this.log.warn(
            { seq: e.seq },
            'sample buffer full: dropping the oldest samples until the hub is back',
          );
        }
      }
      if (this.nextToSend <= e.seq) this.nextToSend = e.seq + 1;
    }
  }

  private schedulePing(ws: WebSocket): void {
    this.pingTimer?.cancel();
    this.pingTimer = this.opts.clock.setTimeout(() => {
      if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
      if (this.missedPongs >= 2) {
        this.log.warn('hub stopped answering pings; reconnecting');
        ws.terminate();
        return;
      }
      this.missedPongs++;
      ws.ping();
      this.schedulePing(ws);
    }, this.opts.pingIntervalMs);
  }

  private badFrame(ws: WebSocket, reason: string, closeCode: number = CloseCode.BadFrame): void {
    this.lastError = `bad frame from hub: ${reason}`;
    this.log.warn({ closeCode }, `bad frame from the hub: ${reason}; reconnecting`);
    this.closeWith(ws, closeCode, 'bad frame');
  }

  private closeWith(ws: WebSocket, code: number, reason: string): void {
    if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    else ws.terminate();
    // Do not wait for the hub's close frame: a misbehaving hub may never send it.
    this.onGone(ws, this.lastError ?? reason);
  }

  private onGone(ws: WebSocket, why: string, code?: number): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    for (const t of [this.welcomeTimer, this.pingTimer, this.pumpTimer, this.stableTimer]) t?.cancel();
    this.missedPongs = 0;
    if (ws.readyState !== WebSocket.CLOSED) {
      ws.removeAllListeners('message');
      ws.on('error', () => {});
      ws.terminate();
    }
    if (this.state === 'stopped') return;
    // Sent but not acknowledged samples are resent after the next welcome, from what the hub says it has.
    for (const e of this.ring) if (e.seq > this.ackedSeq) e.sent = false;
    this.lastError = why;
    const delay = this.backoff.next();
    const level = this.backoff.attempt <= 1 || code === CloseCode.Unauthorized ? 'warn' : 'info';
    const hint =
      code === CloseCode.Unauthorized
        ? 'the hub rejected the token: check hub.token'
        : code === CloseCode.ProtocolVersion
          ? 'the hub speaks another protocol version: upgrade the older side'
          : undefined;
    this.log[level](
      { attempt: this.backoff.attempt, delayMs: delay, closeCode: code, hint, buffered: this.ring.length },
      `hub connection lost (${why}); retrying in ${delay} ms`,
    );
    this.state = 'waiting';
    this.retryTimer = this.opts.clock.setTimeout(() => this.connect(), delay);
  }
}

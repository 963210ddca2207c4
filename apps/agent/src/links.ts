/**
 * The links of this node, through rdma-core: one Listener for incoming links (shm over a unix socket, fabric
 * over TCP with the cluster secret) whose Receivers are consumed at once, and the configured outgoing links
 * (Senders), opened with exponential backoff until the peer answers. rdma-core reconnects an established
 * Sender by itself; the agent adds the first connection, a PROBE every probe.intervalMs (RTT lands in the
 * native rtt histogram), the `degraded` state when probes go unanswered, traffic generators and the
 * per-sample conversion of cumulative native statistics into the wire format (histogram deltas).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type * as Rdma from '@rdmaq/rdma-core';
import type { LinkListener, LinkRx, LinkStats, LinkTx, StateChange } from '@rdmaq/rdma-core';
import {
  Backoff,
  emptyLinkCounters,
  type LinkSample,
  type LinkState,
  type SparseBuckets,
} from '@rdmaq/shared';
import type { Clock, TimerHandle } from './clock.js';
import type { AgentConfig, LinkConfig } from './config.js';
import { AgentError, errorCode, errorMessage } from './errors.js';
import type { BaseLogger } from './logger.js';
import { SequenceChecker, TrafficGenerator } from './traffic.js';

/** The parts of @rdmaq/rdma-core the agent uses (the real module in production and in tests). */
export type RdmaApi = Pick<typeof Rdma, 'listen' | 'connect' | 'providers'>;

type Counters = LinkSample['counters'];

/** Cumulative native figures → wire figures: carries counters over native-object replacement, diffs histograms. */
class StatsTracker {
  private lastRaw: Counters | undefined;
  private readonly carry: Counters = emptyLinkCounters();
  private prevQueue: SparseBuckets = [];
  private prevRtt: SparseBuckets = [];

  /** Counters since the agent created the link, whatever happened to the native object meanwhile. */
  counters(raw: LinkStats['counters']): Counters {
    const last = this.lastRaw;
    if (last) {
      // A counter going down means rdma-core replaced the native end (e.g. a fresh ring): keep what it had.
      for (const k of COUNTER_KEYS) if (raw[k] < last[k]) this.carry[k] += last[k];
      for (const [kind, n] of Object.entries(last.errors)) {
        if ((raw.errors[kind] ?? 0) < n) this.carry.errors[kind] = (this.carry.errors[kind] ?? 0) + n;
      }
    }
    this.lastRaw = { ...raw, errors: { ...raw.errors } };
    const out: Counters = { ...raw, errors: { ...raw.errors } };
    for (const k of COUNTER_KEYS) out[k] += this.carry[k];
    for (const [kind, n] of Object.entries(this.carry.errors)) out.errors[kind] = (out.errors[kind] ?? 0) + n;
    return out;
  }

  deltas(latency: LinkStats['latency']): LinkSample['latency'] {
    const queue = sparseDelta(latency.queue, this.prevQueue);
    const rtt = sparseDelta(latency.rtt, this.prevRtt);
    this.prevQueue = latency.queue;
    this.prevRtt = latency.rtt;
    return { queue, rtt };
  }
}

const COUNTER_KEYS = [
  'records',
  'bytes',
  'completions',
  'creditUpdates',
  'backpressure',
  'wraps',
  'resends',
  'reconnects',
] as const;

/**
 * cur − prev for two sparse cumulative histograms (index ascending), in one merge walk. If any bucket went
 * down the native histogram was recreated: the whole of `cur` is new.
 */
export function sparseDelta(cur: SparseBuckets, prev: SparseBuckets): SparseBuckets {
  const out: SparseBuckets = [];
  let j = 0;
  for (const [i, n] of cur) {
    while (j < prev.length && prev[j]![0] < i) {
      // A bucket vanished: reset.
      return cur.filter(([, c]) => c > 0);
    }
    let before = 0;
    if (j < prev.length && prev[j]![0] === i) {
      before = prev[j]![1];
      j++;
    }
    if (n < before) return cur.filter(([, c]) => c > 0);
    if (n > before) out.push([i, n - before]);
  }
  if (j < prev.length) return cur.filter(([, c]) => c > 0);
  return out;
}

export interface LinkView {
  id: string;
  peer: string;
  direction: 'tx' | 'rx';
  transport: 'shm' | 'fabric';
  provider: string;
  state: LinkState;
  reason: string | undefined;
  /**
   * Whether this link's health is this node's concern: outgoing links and expected incoming ones always;
   * an unexpected incoming link only until its sender closes it on purpose (a peer that was reconfigured or
   * decommissioned must not leave this node unhealthy forever).
   */
  required: boolean;
}

interface ManagedLink extends LinkView {
  expected: boolean;
  /** Error code of the last state change (none = a deliberate close). */
  lastCode: string | undefined;
  cfg: LinkConfig | undefined;
  end: LinkTx | LinkRx | undefined;
  tracker: StatsTracker;
  /** Last stats read (shown while the native end is gone). */
  last: LinkStats | undefined;
  /** State of the rdma-core end, before the agent's own "degraded" verdict. */
  endState: LinkState;
  endReason: string | undefined;
  degradedReason: string | undefined;
  traffic: TrafficGenerator | undefined;
  /** Receiving links: the check of the generator's stamps (lost / duplicated records). */
  sequence: SequenceChecker;
  probeTimer: TimerHandle | undefined;
  probeInFlight: boolean;
  lastProbeOk: number;
  connectTimer: TimerHandle | undefined;
}

export interface LinkEvent {
  link: string;
  state: LinkState;
  previous: LinkState;
  reason: string | undefined;
  code: string | undefined;
}

export interface LinkManagerOptions {
  config: AgentConfig;
  rdma: RdmaApi;
  logger: BaseLogger;
  clock: Clock;
}

/**
 * Events: `state` (LinkEvent) on every change of a link's reported state, `error` never (errors become states
 * and log lines).
 */
export class LinkManager extends EventEmitter {
  private readonly links = new Map<string, ManagedLink>();
  private listener: LinkListener | undefined;
  private stopping = false;
  private readonly log: BaseLogger;
  private readonly cfg: AgentConfig;
  /** True when the listener came up without its fabric (TCP) acceptor. */
  fabricListenerMissing: string | undefined;

  constructor(private readonly opts: LinkManagerOptions) {
    super();
    this.cfg = opts.config;
    this.log = opts.logger.child({ component: 'links' });
  }

  /** Starts the listener, then the outgoing links (their first connection continues in the background). */
  async start(): Promise<void> {
    const c = this.cfg;
    for (const e of c.listen.expect) {
      const l = this.ensureRx(e.id, e.peer, true);
      l.transport = e.transport;
      l.provider = e.transport === 'shm' ? 'shm' : (c.listen.provider ?? 'unknown');
    }
    if (c.listen.enabled) await this.startListener();
    if (c.links.some((l) => l.journal)) {
      try {
        mkdirSync(c.journalDir, { recursive: true, mode: 0o750 });
      } catch (err) {
        throw new AgentError(
          'ERR_RDMAQ_JOURNAL_DIR',
          `cannot create journalDir ${c.journalDir}: ${errorMessage(err)}; create it writable by the agent's user (systemd: StateDirectory=rdmaq)`,
          { cause: err },
        );
      }
    }
    for (const l of c.links) this.addTx(l);
  }

  private async startListener(): Promise<void> {
    const c = this.cfg;
    const base = {
      socketPath: c.listen.socket,
      shmDir: c.listen.shmDir,
      capacity: c.listen.ringBytes,
      acceptUnknown: true,
      // Links that arrive without a listen.expect entry get the host's idle strategy too.
      idle: c.listen.idle,
    };
    const tcp = {
      host: c.listen.host,
      port: c.listen.port,
      secret: c.secret,
      ...(c.listen.provider ? { provider: c.listen.provider } : {}),
    };
    let listener: LinkListener;
    try {
      listener = await this.opts.rdma.listen(c.listen.fabric ? { ...base, tcp } : base);
    } catch (err) {
      if (!c.listen.fabric || errorCode(err) !== 'ERR_RDMAQ_NO_TRANSPORT') throw err;
      // This rdma-core build has no fabric acceptor: serve shm and say plainly what is missing.
      this.fabricListenerMissing = errorMessage(err);
      this.log.error(
        { code: errorCode(err) },
        `incoming fabric links are refused: ${errorMessage(err)}; only shm links are accepted`,
      );
      listener = await this.opts.rdma.listen(base);
    }
    this.listener = listener;
    listener.on('receiver', (rx: LinkRx) => this.onReceiver(rx));
    listener.on('error', (err: Error) => {
      this.log.warn({ code: errorCode(err) }, `refused an incoming link: ${err.message}`);
    });
    // Expected links are accepted up front with their own ring, so they exist before the sender arrives.
    for (const e of c.listen.expect) {
      try {
        const rx = listener.accept(e.id, {
          capacity: e.ringBytes ?? c.listen.ringBytes,
          idle: e.idle ?? c.listen.idle,
          transport: e.transport,
          ...(e.transport === 'fabric' && c.listen.provider ? { provider: c.listen.provider } : {}),
        });
        this.onReceiver(rx);
      } catch (err) {
        this.setEndState(
          this.links.get(e.id)!,
          'down',
          `cannot accept: ${errorMessage(err)}`,
          errorCode(err),
        );
      }
    }
    this.log.info(
      {
        socket: c.listen.socket,
        tcp: c.listen.fabric && !this.fabricListenerMissing ? `${c.listen.host}:${c.listen.port}` : null,
      },
      'listening for incoming links',
    );
  }

  private ensureRx(id: string, peer?: string, expected = false): ManagedLink {
    let l = this.links.get(id);
    if (!l) {
      l = newLink({
        id,
        peer: peer ?? peerFromLinkId(id),
        direction: 'rx',
        transport: 'shm',
        provider: 'shm',
        cfg: undefined,
        expected,
      });
      this.links.set(id, l);
    }
    return l;
  }

  private onReceiver(rx: LinkRx): void {
    const l = this.ensureRx(rx.linkId);
    l.end = rx;
    rx.on('state', (ev: StateChange) => this.setEndState(l, ev.state, ev.reason, ev.code));
    rx.on('error', (err: Error) => {
      // Consumption stopped (corrupt header, or our handler threw): the link cannot deliver any more.
      this.log.error({ link: l.id, code: errorCode(err) }, `receiver stopped: ${err.message}`);
      this.setEndState(l, 'down', `consumer stopped: ${err.message}`, errorCode(err));
    });
    this.refreshIdentity(l);
    // The consumer: records are counted natively (records, bytes, queue latency); nothing to copy here, only
    // the generator's stamp is checked (16 bytes read per record).
    const check = l.sequence;
    try {
      rx.start((buf, off, len) => check.record(buf, off, len));
    } catch (err) {
      this.log.error({ link: l.id }, `cannot start the consumer: ${errorMessage(err)}`);
    }
    this.setEndState(l, rx.state, rx.state === 'up' ? 'sender attached' : 'waiting for the sender');
  }

  private addTx(cfg: LinkConfig): void {
    const l = newLink({
      id: cfg.id,
      peer: cfg.peer,
      direction: 'tx',
      transport: cfg.transport,
      provider: cfg.transport === 'shm' ? 'shm' : (cfg.provider ?? 'tcp;ofi_rxm'),
      cfg,
      expected: true,
    });
    this.links.set(cfg.id, l);
    const backoff = new Backoff({ initialMs: this.cfg.reconnect.initialMs, maxMs: this.cfg.reconnect.maxMs });
    const attempt = async (): Promise<void> => {
      l.connectTimer = undefined;
      if (this.stopping) return;
      try {
        const tx = await this.opts.rdma.connect(senderOptions(cfg, this.cfg.secret, this.cfg.journalDir));
        if (this.stopping) {
          await tx.close();
          return;
        }
        this.onSender(l, tx);
      } catch (err) {
        const delay = backoff.next();
        const reason = `cannot connect to ${cfg.address}: ${errorMessage(err)}`;
        // First failure and every 10th at warn, the rest at debug: a peer that is down for an hour must not
        // fill the journal.
        const level = backoff.attempt === 1 || backoff.attempt % 10 === 0 ? 'warn' : 'debug';
        this.log[level](
          { link: l.id, code: errorCode(err), attempt: backoff.attempt, delayMs: delay },
          reason,
        );
        this.setEndState(l, backoff.attempt === 1 ? 'connecting' : 'down', reason, errorCode(err));
        l.connectTimer = this.opts.clock.setTimeout(() => void attempt(), delay);
      }
    };
    this.setEndState(l, 'connecting', `connecting to ${cfg.address}`);
    void attempt();
  }

  private onSender(l: ManagedLink, tx: LinkTx): void {
    l.end = tx;
    tx.on('state', (ev: StateChange) => this.setEndState(l, ev.state, ev.reason, ev.code));
    this.refreshIdentity(l);
    this.setEndState(l, tx.state, tx.state === 'up' ? `connected to ${l.cfg?.address}` : undefined);
    this.log.info(
      { link: l.id, peer: l.peer, transport: l.transport, provider: l.provider },
      'link connected',
    );
    const traffic = l.cfg?.traffic;
    if (traffic) {
      l.traffic = new TrafficGenerator(tx, traffic);
      l.traffic.start();
    }
    l.lastProbeOk = performance.now();
    this.scheduleProbe(l);
  }

  private scheduleProbe(l: ManagedLink): void {
    if (this.stopping) return;
    l.probeTimer = this.opts.clock.setTimeout(() => this.probe(l), this.cfg.probe.intervalMs);
  }

  /** One PROBE round trip; its RTT is recorded natively. Unanswered probes make an up link degraded. */
  private probe(l: ManagedLink): void {
    const tx = l.end as LinkTx | undefined;
    if (this.stopping || !tx || tx.closed) return;
    if (l.probeInFlight || tx.state !== 'up') {
      this.checkProbeAge(l);
      this.scheduleProbe(l);
      return;
    }
    l.probeInFlight = true;
    tx.probe(this.cfg.probe.timeoutMs).then(
      () => {
        l.probeInFlight = false;
        l.lastProbeOk = performance.now();
        if (l.degradedReason) {
          l.degradedReason = undefined;
          this.publish(l, 'probe answered again');
        }
      },
      (err: unknown) => {
        l.probeInFlight = false;
        if (this.stopping || tx.closed) return;
        this.log.debug({ link: l.id, code: errorCode(err) }, `probe failed: ${errorMessage(err)}`);
        this.checkProbeAge(l, errorMessage(err));
      },
    );
    this.scheduleProbe(l);
  }

  private checkProbeAge(l: ManagedLink, why?: string): void {
    if (l.endState !== 'up') return;
    const age = performance.now() - l.lastProbeOk;
    if (age >= this.cfg.probe.timeoutMs && !l.degradedReason) {
      l.degradedReason = `no probe reply for ${Math.round(age)} ms${why ? ` (${why})` : ''}; the receiver is not consuming`;
      this.publish(l, l.degradedReason);
    }
  }

  /** transport/provider from the native end, once known (incoming links learn them at attach). */
  private refreshIdentity(l: ManagedLink): void {
    try {
      const s = l.end?.stats();
      if (!s) return;
      l.transport = s.transport;
      l.provider = s.provider;
      l.last = s;
    } catch {
      // Not attached yet: keep the configured identity.
    }
  }

  private setEndState(l: ManagedLink, reported: LinkState, reason: string | undefined, code?: string): void {
    // rdma-core's fabric sender says `degraded` while it has lost its receiver and reconnects; the shm sender
    // says `down` for the same situation. The agent reports both as `down` (the peer is not receiving) and
    // keeps `degraded` for its own verdict: connected, but probes go unanswered.
    const state: LinkState = reported === 'degraded' ? 'down' : reported;
    l.endState = state;
    l.endReason = reason;
    l.lastCode = code;
    if (state !== 'up') l.degradedReason = undefined;
    if (state === 'up') l.lastProbeOk = performance.now();
    this.publish(l, reason, code);
  }

  /** Recomputes the reported state; emits `state` if it changed. */
  private publish(l: ManagedLink, reason: string | undefined, code?: string): void {
    const state: LinkState = l.endState === 'up' && l.degradedReason ? 'degraded' : l.endState;
    const shownReason = state === 'degraded' ? l.degradedReason : (reason ?? l.endReason);
    const previous = l.state;
    l.reason = shownReason;
    if (state === previous) return;
    l.state = state;
    const level = state === 'up' || state === 'connecting' ? 'info' : this.stopping ? 'info' : 'warn';
    this.log[level](
      { link: l.id, state, previous, code },
      `link ${l.id} is ${state}${shownReason ? `: ${shownReason}` : ''}`,
    );
    this.emit('state', { link: l.id, state, previous, reason: shownReason, code } satisfies LinkEvent);
  }

  /** Per-link figures for one sample: cumulative counters, gauges and histogram deltas. One native call per link. */
  sample(): LinkSample[] {
    const out: LinkSample[] = [];
    for (const l of this.links.values()) {
      let s: LinkStats | undefined;
      try {
        s = l.end?.stats();
      } catch {
        s = undefined;
      }
      if (s) {
        l.last = s;
        l.transport = s.transport;
        l.provider = s.provider;
      }
      const src = s ?? l.last;
      const counters = src ? l.tracker.counters(src.counters) : emptyLinkCounters();
      // What the stamps showed, as error kinds: any count here breaks the delivery promise.
      const seq = l.sequence.stats;
      if (seq.lost > 0) counters.errors.seq_lost = seq.lost;
      if (seq.duplicated > 0) counters.errors.seq_duplicated = seq.duplicated;
      const latency = s ? l.tracker.deltas(s.latency) : { queue: [], rtt: [] };
      const sample: LinkSample = {
        id: l.id,
        peer: l.peer,
        direction: l.direction,
        transport: l.transport,
        provider: l.provider,
        state: l.state,
        counters,
        gauges: src
          ? {
              occupancyBytes: src.gauges.occupancyBytes,
              peakOccupancyBytes: s ? s.gauges.peakOccupancyBytes : 0,
              capacityBytes: src.gauges.capacityBytes,
            }
          : { occupancyBytes: 0, peakOccupancyBytes: 0, capacityBytes: l.cfg?.ringBytes ?? 0 },
        latency,
      };
      if (l.reason !== undefined) sample.reason = l.reason.slice(0, 512);
      out.push(sample);
    }
    return out;
  }

  /** Raw cumulative native statistics of one link (benchmarks); does not advance the sample deltas. */
  rawStats(id: string): LinkStats | undefined {
    try {
      return this.links.get(id)?.end?.stats();
    } catch {
      return undefined;
    }
  }

  views(): LinkView[] {
    return [...this.links.values()].map(viewOf);
  }

  /** The view of one link (the data-path worker sends it along with each state change). */
  view(id: string): LinkView | undefined {
    const l = this.links.get(id);
    return l ? viewOf(l) : undefined;
  }

  /** Traffic generator figures by link id (tests compare them with the native counters). */
  trafficStats(): Record<string, TrafficGenerator['stats']> {
    const out: Record<string, TrafficGenerator['stats']> = {};
    for (const l of this.links.values()) if (l.traffic) out[l.id] = { ...l.traffic.stats };
    return out;
  }

  /** Stops the generators and waits (up to timeoutMs) until every outgoing ring is empty. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    for (const l of this.links.values()) {
      l.traffic?.stop();
      l.connectTimer?.cancel();
      l.probeTimer?.cancel();
    }
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      let pending = 0;
      for (const l of this.links.values()) {
        if (l.direction !== 'tx' || !l.end || l.end.closed || l.endState !== 'up') continue;
        try {
          pending += l.end.stats().gauges.occupancyBytes;
        } catch {
          // closed meanwhile
        }
      }
      if (pending === 0) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  /** Closes every Sender (bye to the peer) and the listener with its Receivers. */
  async close(): Promise<void> {
    this.stopping = true;
    for (const l of this.links.values()) {
      l.traffic?.stop();
      l.connectTimer?.cancel();
      l.probeTimer?.cancel();
    }
    await Promise.allSettled(
      [...this.links.values()].filter((l) => l.direction === 'tx' && l.end).map((l) => l.end!.close()),
    );
    await this.listener?.close();
    this.listener = undefined;
  }

  /** Marks every link down with a reason (the final sample of a shutdown says why). */
  markAllDown(reason: string): void {
    for (const l of this.links.values()) {
      l.endState = 'down';
      l.degradedReason = undefined;
      this.publish(l, reason);
      l.reason = reason;
    }
  }
}

function viewOf(l: ManagedLink): LinkView {
  return {
    required: l.expected || !(l.state === 'down' && l.lastCode === undefined && l.end !== undefined),
    id: l.id,
    peer: l.peer,
    direction: l.direction,
    transport: l.transport,
    provider: l.provider,
    state: l.state,
    reason: l.reason,
  };
}

function newLink(
  init: Pick<ManagedLink, 'id' | 'peer' | 'direction' | 'transport' | 'provider' | 'cfg' | 'expected'>,
): ManagedLink {
  return {
    ...init,
    required: true,
    lastCode: undefined,
    state: 'connecting',
    reason: undefined,
    end: undefined,
    tracker: new StatsTracker(),
    last: undefined,
    endState: 'connecting',
    endReason: undefined,
    degradedReason: undefined,
    traffic: undefined,
    probeTimer: undefined,
    probeInFlight: false,
    sequence: new SequenceChecker(),
    lastProbeOk: 0,
    connectTimer: undefined,
  };
}

/** Link ids default to `<sender>-><receiver>`: the sending node is what comes before the arrow. */
export function peerFromLinkId(id: string): string {
  const i = id.lastIndexOf('->');
  return i > 0 ? id.slice(0, i) : 'unknown';
}

/** Journal file of a link: one per link id, in journalDir, named so any id is a safe file name. */
export function journalPath(journalDir: string, linkId: string): string {
  const safe = linkId.replace(/[^A-Za-z0-9._-]/g, '_');
  const hash = createHash('sha256').update(linkId).digest('hex').slice(0, 8);
  return join(journalDir, `${safe}-${hash}.journal`);
}

function senderOptions(cfg: LinkConfig, secret: string, journalDir: string): Rdma.SenderOptions {
  if (cfg.transport === 'shm') {
    return {
      linkId: cfg.id,
      transport: 'shm',
      socketPath: cfg.address,
      connectTimeoutMs: 2000,
      ...(cfg.checksum ? { checksum: true } : {}),
    };
  }
  const i = cfg.address.lastIndexOf(':');
  const host = cfg.address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(cfg.address.slice(i + 1));
  return {
    linkId: cfg.id,
    transport: 'fabric',
    host,
    port,
    secret,
    provider: cfg.provider ?? 'tcp;ofi_rxm',
    // The receiver decides the ring; the sender's mirror must match, so a mismatch is refused at handshake.
    capacity: cfg.ringBytes,
    // The mirror lives in this file: records accepted before a crash of this agent are resent after restart.
    ...(cfg.journal ? { journal: journalPath(journalDir, cfg.id) } : {}),
    ...(cfg.checksum ? { checksum: true } : {}),
    connectTimeoutMs: 5000,
  };
}

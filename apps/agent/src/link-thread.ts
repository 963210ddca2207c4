/**
 * `dataPath: worker` (the default): the agent's links run in a node:worker_threads Worker (link-worker.ts),
 * and this is their face on the main thread. Why: on the main loop, every record's queue latency (send
 * timestamp → delivery) waited behind sampling, the hub WebSocket, HTTP and GC — 70–290 ms of event-loop lag
 * measured — so the dashboard showed milliseconds for a microsecond queue.
 *
 * - views() and fabricListenerMissing are synchronous, from a cache the worker keeps current (each state change
 *   carries the link's view; every sample reply carries them all);
 * - sample() is one message round trip for all links. If the worker does not answer within sampleTimeoutMs
 *   the sample is built from the last figures (no histogram deltas) and the late reply is folded into the next
 *   one, so no record goes uncounted;
 * - a crash of the worker (uncaught error, out of memory, exit) is logged plainly, its links are reported down,
 *   and a new worker is started with exponential backoff (reconnect.initialMs … maxMs); counters carry over
 *   the restart, so they never go down within a run;
 * - close() closes the links in the worker, then ends it.
 *
 * The worker must not end with shm links open: rdma-core's native ends then crash the whole process while
 * Node tears the worker down (see link-worker.ts). Hence: the worker closes its links itself on an uncaught
 * error; close() ends it only after its links are closed; closeBeforeExit() does the same before an
 * immediate process.exit; and no heap cap (resourceLimits) by default, as a worker stopped for memory could
 * not close them.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LinkStats } from '@rdmaq/rdma-core';
import { Backoff, emptyLinkCounters, type LinkSample } from '@rdmaq/shared';
import type { AgentConfig } from './config.js';
import {
  addSparse,
  type DataPath,
  type DataPathSample,
  type FromWorker,
  LOG_BOUNDS,
  type SampleReply,
  type StartReply,
  type ToWorker,
  type WorkerInit,
  type WorkerRequest,
} from './data-path.js';
import { AgentError, errorMessage } from './errors.js';
import type { LinkEvent, LinkView } from './links.js';
import { LOG_LEVELS, type Logger } from './logger.js';
import type { TrafficStats } from './traffic.js';

type Counters = LinkSample['counters'];

export interface LinkThreadOptions {
  config: AgentConfig;
  /** The agent's pino logger: the worker's lines are written through it. */
  logger: Logger;
  /** The worker's script (default: link-worker.js next to this module; see defaultWorkerEntry). */
  entry?: URL;
  /** How long sample() waits for the worker (default: the sampling interval, at least 1 s). */
  sampleTimeoutMs?: number;
  /**
   * V8 old-generation cap of the worker in MiB (default: none, like the main thread). Worker termination for
   * memory does not close the links first, which crashes the process with today's rdma-core (see above).
   */
  maxHeapMb?: number;
}

/**
 * The worker's script. From dist: link-worker.js beside this file. From the TypeScript sources (vitest
 * runs src/ directly, and a Worker cannot load .ts): the built dist/link-worker.js, so tests need a build.
 */
export function defaultWorkerEntry(): URL {
  const here = new URL('./link-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../dist/link-worker.js', import.meta.url);
  if (import.meta.url.endsWith('.ts') && existsSync(fileURLToPath(built))) return built;
  throw new AgentError(
    'ERR_RDMAQ_DATA_PATH',
    `the data-path worker script ${fileURLToPath(here)} is missing: build the agent (pnpm --filter @rdmaq/agent build), or set dataPath: main`,
  );
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** A worker that lived this long before crashing restarts after the initial delay again. */
const STABLE_MS = 60_000;

export class LinkThread extends EventEmitter implements DataPath {
  readonly mode = 'worker' as const;
  fabricListenerMissing: string | undefined;
  /** Workers started after a crash. */
  restarts = 0;
  /** Event-loop lag of the worker over the last sampling interval (ms), from the last sample reply. */
  loopLag: { lagMs: number; maxMs: number } | undefined;

  private readonly log: Logger;
  private readonly entry: URL;
  private readonly sampleTimeoutMs: number;
  private readonly maxHeapMb: number | undefined;
  private readonly backoff: Backoff;
  private worker: Worker | undefined;
  /** The worker answered `start` and has not exited. */
  private live = false;
  private starting: Promise<void> | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private upSince = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly cache = new Map<string, LinkView>();
  /** Counters of the links in workers that ended (added to the current worker's: never go down). */
  private readonly carry = new Map<string, Counters>();
  /** Latest counters of the current worker, before carry. */
  private readonly raw = new Map<string, Counters>();
  /** Last sample handed out per link (fallback when the worker does not answer). */
  private readonly last = new Map<string, LinkSample>();
  /** Sample replies not handed out yet (a late one waits here for the next sample). */
  private acc: SampleReply | undefined;
  private inflight: Promise<void> | undefined;
  private slowSamples = 0;
  private omittedLogged = 0;

  constructor(private readonly opts: LinkThreadOptions) {
    super();
    this.log = opts.logger.child({ component: 'link-thread' });
    this.entry = opts.entry ?? defaultWorkerEntry();
    this.sampleTimeoutMs = opts.sampleTimeoutMs ?? Math.max(1000, opts.config.sampling.intervalMs);
    this.maxHeapMb = opts.maxHeapMb;
    this.backoff = new Backoff({
      initialMs: opts.config.reconnect.initialMs,
      maxMs: opts.config.reconnect.maxMs,
    });
  }

  /** Starts the worker and, in it, the listener and the links; rejects (worker ended) if they cannot start. */
  async start(): Promise<void> {
    // rdma-core's addon-env.ts sets libfabric's variables in process.env before the addon loads. Only the main
    // thread's process.env writes reach the C environment libfabric reads (a worker's process.env is a copy),
    // so load it here, before the worker exists; the worker inherits the environment.
    await import('@rdmaq/rdma-core');
    await this.startWorker();
  }

  /** The worker's thread id (tests, logs); undefined while none runs. */
  get threadId(): number | undefined {
    return this.worker?.threadId;
  }

  private startWorker(): Promise<void> {
    const run = async (): Promise<void> => {
      const w = this.spawn();
      try {
        const r = await this.request<StartReply>({ t: 'start' });
        if (this.worker !== w)
          throw new AgentError('ERR_RDMAQ_DATA_PATH', 'the data-path worker was replaced');
        this.fabricListenerMissing = r.fabricListenerMissing;
        this.replaceViews(r.views);
        this.live = true;
        this.upSince = performance.now();
      } catch (err) {
        if (this.worker === w) this.worker = undefined;
        await w.terminate().catch(() => {});
        throw err;
      }
    };
    const p = run().finally(() => {
      if (this.starting === p) this.starting = undefined;
    });
    this.starting = p;
    return p;
  }

  private spawn(): Worker {
    const init: WorkerInit = { config: this.opts.config, logLevel: this.opts.logger.level };
    // env: the default, a copy of process.env as it is now (with addon-env's variables).
    const w = new Worker(this.entry, {
      workerData: init,
      ...(this.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } } : {}),
    });
    this.worker = w;
    let error: Error | undefined;
    w.on('message', (m: FromWorker) => {
      if (this.worker !== w) return;
      if (m.t === 'fatal') {
        // The worker caught its own uncaught error and is closing its links before it exits.
        error = Object.assign(new Error(m.error.message), { name: m.error.name, stack: m.error.stack });
        return;
      }
      this.onMessage(m);
    });
    w.on('messageerror', (err: Error) =>
      this.log.error(`unreadable message from the data-path worker: ${err.message}`),
    );
    w.on('error', (err: Error) => {
      error = err;
    });
    w.on('exit', (code: number) => this.onExit(w, code, error));
    return w;
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (p.timer) clearTimeout(p.timer);
        if (m.ok) p.resolve(m.value);
        else p.reject(new AgentError(m.error.code ?? 'ERR_RDMAQ_DATA_PATH', m.error.message));
        return;
      }
      case 'state':
        if (m.view) this.cache.set(m.view.id, m.view);
        this.emit('state', m.ev);
        return;
      case 'fatal':
        return; // handled in spawn()
      case 'log': {
        // One log stream: the worker's lines are written by this thread's logger (bounded by the worker).
        const level = LOG_LEVELS.includes(m.level) ? m.level : 'info';
        this.opts.logger[level](m.bindings, String(m.msg).slice(0, LOG_BOUNDS.msgChars));
        return;
      }
    }
  }

  private onExit(w: Worker, code: number, error: Error | undefined): void {
    if (this.worker !== w) return; // one we let go on purpose
    this.worker = undefined;
    const wasLive = this.live;
    this.live = false;
    const why = error
      ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`
      : `exit code ${code}`;
    this.rejectAll(new AgentError('ERR_RDMAQ_DATA_PATH_EXITED', `the data-path worker ended (${why})`));
    this.endGeneration();
    if (this.stopping || !wasLive) return; // closing, or a (re)start that failed: its caller goes on
    if (this.upSince > 0 && performance.now() - this.upSince >= STABLE_MS) this.backoff.reset();
    const delay = this.backoff.next();
    this.log.error(
      {
        code: (error as { code?: unknown } | undefined)?.code ?? 'ERR_RDMAQ_DATA_PATH_CRASHED',
        exitCode: code,
        restartInMs: delay,
        ...(error?.stack ? { stack: error.stack.slice(0, 4096) } : {}),
      },
      `the data-path worker crashed (${why}): its links are down; starting a new one in ${delay} ms`,
    );
    this.markCacheDown(
      `the agent's data-path worker crashed (${why}); restarting it`,
      'ERR_RDMAQ_DATA_PATH_CRASHED',
    );
    this.scheduleRestart(delay);
  }

  private scheduleRestart(delay: number): void {
    if (this.stopping) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.startWorker().then(
        () => {
          this.restarts++;
          this.log.info({ restarts: this.restarts }, 'data-path worker restarted: links are reconnecting');
        },
        (err: unknown) => {
          if (this.stopping) return;
          const next = this.backoff.next();
          this.log.error(
            { restartInMs: next },
            `cannot restart the data-path worker: ${errorMessage(err)}; trying again in ${next} ms`,
          );
          this.scheduleRestart(next);
        },
      );
    }, delay);
  }

  /** The current worker's counters become carry: the next worker's start from where these ended. */
  private endGeneration(): void {
    for (const [id, c] of this.raw) this.carry.set(id, addCounters(c, this.carry.get(id)));
    this.raw.clear();
    this.acc = undefined;
  }

  private markCacheDown(reason: string, code: string | undefined): void {
    for (const v of this.cache.values()) {
      const previous = v.state;
      v.reason = reason;
      if (previous === 'down') continue;
      v.state = 'down';
      this.emit('state', { link: v.id, state: 'down', previous, reason, code } satisfies LinkEvent);
    }
  }

  private replaceViews(views: LinkView[]): void {
    this.cache.clear();
    for (const v of views) this.cache.set(v.id, v);
  }

  private rejectAll(err: Error): void {
    for (const [id, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }

  private request<T>(req: WorkerRequest, timeoutMs?: number): Promise<T> {
    const w = this.worker;
    if (!w)
      return Promise.reject(
        new AgentError('ERR_RDMAQ_DATA_PATH_DOWN', 'the data-path worker is not running'),
      );
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(
            new AgentError(
              'ERR_RDMAQ_DATA_PATH_TIMEOUT',
              `the data-path worker did not answer ${req.t} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
      }
      this.pending.set(id, p);
      w.postMessage({ ...req, id } satisfies ToWorker);
    });
  }

  async sample(): Promise<DataPathSample> {
    let slow = false;
    if (this.live) {
      this.inflight ??= this.request<SampleReply>({ t: 'sample' })
        .then(
          (r) => this.accumulate(r),
          () => {
            // The worker ended meanwhile: the fallback below reports its links down.
          },
        )
        .finally(() => {
          this.inflight = undefined;
        });
      if (!(await settledWithin(this.inflight, this.sampleTimeoutMs))) {
        this.slowSamples++;
        slow = true;
        if (this.slowSamples === 1 || this.slowSamples % 60 === 0) {
          this.log.warn(
            { slowSamples: this.slowSamples },
            `the data-path worker did not answer a sample within ${this.sampleTimeoutMs} ms: reporting the last figures (its reply will count in the next sample)`,
          );
        }
      }
    }
    const r = this.acc;
    this.acc = undefined;
    if (r) return this.finish(r);
    const fallback = this.fallback();
    // No answer in time: its loop was late by at least that much (a lower bound, not a measurement).
    if (slow) fallback.loop = { lagMs: this.sampleTimeoutMs, maxMs: this.sampleTimeoutMs };
    return fallback;
  }

  /** Folds a reply into those not handed out yet: newest counters, gauges and state, histogram deltas added. */
  private accumulate(r: SampleReply): void {
    this.replaceViews(r.views);
    const prev = this.acc;
    if (!prev) {
      this.acc = r;
      return;
    }
    const byId = new Map(prev.links.map((l) => [l.id, l]));
    for (const l of r.links) {
      const o = byId.get(l.id);
      byId.set(
        l.id,
        o
          ? {
              ...l,
              gauges: {
                ...l.gauges,
                peakOccupancyBytes: Math.max(o.gauges.peakOccupancyBytes, l.gauges.peakOccupancyBytes),
              },
              latency: {
                queue: addSparse(o.latency.queue, l.latency.queue),
                rtt: addSparse(o.latency.rtt, l.latency.rtt),
              },
            }
          : l,
      );
    }
    this.acc = {
      ...r,
      links: [...byId.values()],
      costMs: prev.costMs + r.costMs,
      loop: {
        lagMs: Math.max(prev.loop?.lagMs ?? 0, r.loop?.lagMs ?? 0),
        maxMs: Math.max(prev.loop?.maxMs ?? 0, r.loop?.maxMs ?? 0),
      },
    };
  }

  private finish(r: SampleReply): DataPathSample {
    if (r.omitted !== this.omittedLogged) {
      this.omittedLogged = r.omitted;
      if (r.omitted > 0)
        this.log.error(
          { omitted: r.omitted },
          `${r.omitted} links are not reported: too many links in one sample`,
        );
    }
    const links = r.links.map((l) => {
      this.raw.set(l.id, l.counters);
      const carry = this.carry.get(l.id);
      const out = carry ? { ...l, counters: addCounters(l.counters, carry) } : l;
      this.last.set(l.id, out);
      return out;
    });
    if (r.loop) this.loopLag = r.loop;
    return { links, costMs: r.costMs, ...(r.loop ? { loop: r.loop } : {}) };
  }

  /** A sample without the worker: the last figures, the cached states, no histogram deltas. */
  private fallback(): DataPathSample {
    const links: LinkSample[] = [];
    for (const v of this.cache.values()) {
      const prev = this.last.get(v.id);
      const s: LinkSample = {
        id: v.id,
        peer: v.peer,
        direction: v.direction,
        transport: v.transport,
        provider: v.provider,
        state: v.state,
        counters: prev ? prev.counters : addCounters(emptyLinkCounters(), this.carry.get(v.id)),
        gauges: prev
          ? { ...prev.gauges, peakOccupancyBytes: prev.gauges.occupancyBytes }
          : { occupancyBytes: 0, peakOccupancyBytes: 0, capacityBytes: 0 },
        latency: { queue: [], rtt: [] },
      };
      if (v.reason !== undefined) s.reason = v.reason.slice(0, 512);
      links.push(s);
    }
    return { links, costMs: 0 };
  }

  async rawStats(id: string): Promise<LinkStats | undefined> {
    if (!this.live) return undefined;
    return this.request<LinkStats | undefined>({ t: 'rawStats', link: id }, this.sampleTimeoutMs).catch(
      () => undefined,
    );
  }

  views(): LinkView[] {
    return [...this.cache.values()].map((v) => ({ ...v }));
  }

  async trafficStats(): Promise<Record<string, TrafficStats>> {
    if (!this.live) return {};
    return this.request<Record<string, TrafficStats>>({ t: 'trafficStats' }, this.sampleTimeoutMs);
  }

  /**
   * Stops restarting the worker, then drains its outgoing rings (false: not empty in time). Without a worker
   * there is nothing left here to drain: true.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.starting?.catch(() => {});
    if (!this.live) return true;
    try {
      return await this.request<boolean>({ t: 'drain', timeoutMs }, timeoutMs + 5000);
    } catch (err) {
      this.log.warn(`draining the links failed: ${errorMessage(err)}`);
      return false;
    }
  }

  async markAllDown(reason: string): Promise<void> {
    if (this.live) {
      // The worker's state events arrive before its reply.
      await this.request({ t: 'markAllDown', reason }, 5000).catch((err: unknown) => {
        this.log.warn(`marking the links down in the data-path worker failed: ${errorMessage(err)}`);
      });
    }
    this.markCacheDown(reason, undefined);
  }

  /** Closes the links in the worker (senders say bye, the listener goes), then ends the worker. */
  async close(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.starting?.catch(() => {});
    const w = this.worker;
    if (!w) return;
    if (this.live) {
      try {
        await this.request({ t: 'close' }, 15_000);
      } catch (err) {
        this.log.warn(`the data-path worker did not close its links cleanly: ${errorMessage(err)}`);
      }
    }
    this.live = false;
    this.worker = undefined;
    await w.terminate();
  }

  async closeBeforeExit(timeoutMs: number): Promise<void> {
    await settledWithin(this.close(), timeoutMs);
  }

  /** Tests: the worker throws an uncaught exception, as a bug would. */
  crashForTest(message = 'crash requested by a test'): Promise<void> {
    return this.request({ t: 'crash', message });
  }
}

function addCounters(a: Counters, b: Counters | undefined): Counters {
  if (!b) return a;
  const errors: Record<string, number> = { ...a.errors };
  for (const [k, n] of Object.entries(b.errors)) errors[k] = (errors[k] ?? 0) + n;
  return {
    records: a.records + b.records,
    bytes: a.bytes + b.bytes,
    completions: a.completions + b.completions,
    creditUpdates: a.creditUpdates + b.creditUpdates,
    backpressure: a.backpressure + b.backpressure,
    wraps: a.wraps + b.wraps,
    resends: a.resends + b.resends,
    reconnects: a.reconnects + b.reconnects,
    errors,
  };
}

/**
 * Whether `p` settles within `ms`. On time-out it looks once more after the event loop's poll phase, so a
 * reply that is already queued (this thread was busy past the deadline) still counts.
 */
function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const timer = setTimeout(
      () =>
        setImmediate(() => {
          if (done) return;
          done = true;
          resolve(false);
        }),
      ms,
    );
    const settle = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(true);
    };
    p.then(settle, settle);
  });
}

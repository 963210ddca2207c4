/**
 * The agent's data path — its links (LinkManager: the rdma-core listener and consumers, the senders, traffic
 * generators, probes) — as the rest of the agent sees it. Two implementations, chosen by `dataPath`:
 *
 * - `worker` (default, link-thread.ts): the LinkManager runs in a node:worker_threads Worker (link-worker.ts),
 *   so sampling, the hub WebSocket, HTTP and GC on the main thread never delay a record's delivery;
 * - `main` (InProcessDataPath below): the LinkManager runs on the main event loop, as before. Tests that
 *   inject a scaled clock or a mock rdma-core use it (neither can cross into a worker).
 */
import { EventEmitter } from 'node:events';
import type { LinkStats } from '@rdmaq/rdma-core';
import type { LinkSample, SparseBuckets } from '@rdmaq/shared';
import type { LinkEvent, LinkManager, LinkView } from './links.js';
import type { LogLevel } from './logger.js';
import type { TrafficStats } from './traffic.js';

export type DataPathMode = 'worker' | 'main';

export interface DataPathSample {
  links: LinkSample[];
  /** Time the data path spent reading its links' statistics for this sample (ms). */
  costMs: number;
  /**
   * Event-loop lag of the data path's own thread over the sampling interval (p99 beyond the 10 ms resolution,
   * and the largest delay), in ms. Absent in `main` mode, where the data path shares the main loop.
   */
  loop?: { lagMs: number; maxMs: number };
}

/**
 * What the agent (app.ts) uses of its links. Events: `state` (LinkEvent) on every change of a link's
 * reported state.
 */
export interface DataPath extends EventEmitter {
  readonly mode: DataPathMode;
  /** Set when the listener came up without its fabric (TCP) acceptor: why. */
  readonly fabricListenerMissing: string | undefined;
  /** Starts the listener and the outgoing links; rejects when the listener cannot start. */
  start(): Promise<void>;
  /** Statistics of every link, in one round trip. */
  sample(): Promise<DataPathSample>;
  /** Raw cumulative native statistics of one link (benchmarks); does not advance the sample deltas. */
  rawStats(id: string): Promise<LinkStats | undefined>;
  /** The links' identity and state now (synchronous: health checks). */
  views(): LinkView[];
  trafficStats(): Promise<Record<string, TrafficStats>>;
  /** Stops the generators and waits (up to timeoutMs) until every outgoing ring is empty. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Marks every link down with a reason (the final sample of a shutdown says why). */
  markAllDown(reason: string): Promise<void>;
  /** Closes the links (and the worker). */
  close(): Promise<void>;
  /**
   * Before an immediate process.exit (second signal): closes the links within timeoutMs if they run in a
   * worker (a worker torn down with open shm links crashes the process, see link-worker.ts); else nothing.
   */
  closeBeforeExit(timeoutMs: number): Promise<void>;
}

/** The LinkManager on the calling thread's event loop (`dataPath: main`). */
export class InProcessDataPath extends EventEmitter implements DataPath {
  readonly mode = 'main' as const;

  constructor(readonly manager: LinkManager) {
    super();
    manager.on('state', (ev: LinkEvent) => this.emit('state', ev));
  }

  get fabricListenerMissing(): string | undefined {
    return this.manager.fabricListenerMissing;
  }

  start(): Promise<void> {
    return this.manager.start();
  }

  async sample(): Promise<DataPathSample> {
    // CPU time, not wall time: on a busy host the thread may be preempted mid-sample, which costs no CPU.
    const cpu0 = process.cpuUsage();
    const links = this.manager.sample();
    const cpu = process.cpuUsage(cpu0);
    return { links, costMs: (cpu.user + cpu.system) / 1000 };
  }

  async rawStats(id: string): Promise<LinkStats | undefined> {
    return this.manager.rawStats(id);
  }

  views(): LinkView[] {
    return this.manager.views();
  }

  async trafficStats(): Promise<Record<string, TrafficStats>> {
    return this.manager.trafficStats();
  }

  drain(timeoutMs: number): Promise<boolean> {
    return this.manager.drain(timeoutMs);
  }

  async markAllDown(reason: string): Promise<void> {
    this.manager.markAllDown(reason);
  }

  close(): Promise<void> {
    return this.manager.close();
  }

  async closeBeforeExit(_timeoutMs: number): Promise<void> {
    // Nothing: the process exits without finalizing the main thread's objects.
  }
}

// ---------------------------------------------------------------------------------------------------------
// Messages between the main thread (link-thread.ts) and the data-path worker (link-worker.ts).

/** What the main thread hands the worker at start (structured-cloned: plain data only). */
export interface WorkerInit {
  /** The validated AgentConfig, as plain data. */
  config: unknown;
  /** Lines below this level are not posted at all. */
  logLevel: string;
}

export type WorkerRequest =
  | { t: 'start' }
  | { t: 'sample' }
  | { t: 'rawStats'; link: string }
  | { t: 'trafficStats' }
  | { t: 'drain'; timeoutMs: number }
  | { t: 'markAllDown'; reason: string }
  | { t: 'close' }
  /** Tests: makes the worker throw an uncaught exception (how a bug would end it). */
  | { t: 'crash'; message: string };

export type ToWorker = WorkerRequest & { id: number };

export interface StartReply {
  fabricListenerMissing: string | undefined;
  views: LinkView[];
}

export interface SampleReply extends DataPathSample {
  views: LinkView[];
  /** Links left out to bound the message (more than MAX_LINKS_PER_SAMPLE). */
  omitted: number;
}

export type FromWorker =
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: { message: string; code: string | undefined } }
  | { t: 'state'; ev: LinkEvent; view: LinkView | undefined }
  | { t: 'log'; level: LogLevel; bindings: Record<string, unknown>; msg: string }
  /** An uncaught error: the worker closes its links and exits (code 1). */
  | { t: 'fatal'; error: { name: string; message: string; stack: string } };

/** Bounds of what one log message from the worker may carry (a log line is not a data channel). */
export const LOG_BOUNDS = { msgChars: 4096, keys: 32, valueChars: 1024 } as const;

/** A log call's fields, cut to LOG_BOUNDS: primitives kept, strings cut, anything else as cut-down JSON. */
export function boundBindings(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(obj)) {
    if (n++ >= LOG_BOUNDS.keys) {
      out.truncatedKeys = Object.keys(obj).length - LOG_BOUNDS.keys;
      break;
    }
    const key = k.slice(0, 64);
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean') out[key] = v;
    else if (typeof v === 'string') out[key] = v.slice(0, LOG_BOUNDS.valueChars);
    else if (typeof v === 'bigint') out[key] = String(v);
    else if (v instanceof Error) out[key] = { message: v.message.slice(0, LOG_BOUNDS.valueChars) };
    else {
      let s: string;
      try {
        s = JSON.stringify(v) ?? String(v);
      } catch {
        s = String(v);
      }
      out[key] = s.slice(0, LOG_BOUNDS.valueChars);
    }
  }
  return out;
}

/** a + b of two sparse histogram deltas (index ascending). */
export function addSparse(a: SparseBuckets, b: SparseBuckets): SparseBuckets {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: SparseBuckets = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x[0] < y[0])) {
      out.push(x!);
      i++;
    } else if (x === undefined || y[0] < x[0]) {
      out.push(y);
      j++;
    } else {
      out.push([x[0], x[1] + y[1]]);
      i++;
      j++;
    }
  }
  return out;
}

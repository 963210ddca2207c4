/**
 * The agent as an object: `buildAgent(config, deps)` wires links, sampler, hub client, Prometheus exporter
 * and the HTTP handler without opening anything; `start()` listens and connects, `stop()` shuts down
 * gracefully. bin.ts only parses the command line and calls these; tests drive them in process.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, hostname as osHostname } from 'node:os';
import { markStatsFileAsAgent, netnsOf, StatsReader } from '@rdmaq/rdma-core';
import {
  type AgentEvent,
  type Hello,
  MAX_LINKS_PER_SAMPLE,
  PROTOCOL_VERSION,
  type Sample,
} from '@rdmaq/shared';
import { AppLinks } from './app-links.js';
import { type Clock, realClock, type TimerHandle } from './clock.js';
import type { AgentConfig } from './config.js';
import { type DataPath, InProcessDataPath } from './data-path.js';
import { AgentError, errorMessage } from './errors.js';
import { HostSampler } from './host.js';
import { HubClient } from './hub-client.js';
import { LinkThread } from './link-thread.js';
import { type LinkEvent, LinkManager, type LinkView, type RdmaApi } from './links.js';
import { createLogger, type Logger } from './logger.js';
import { AgentMetrics } from './prom.js';
import { AGENT_VERSION } from './version.js';

export interface AgentDeps {
  /** Default: JSON (or pretty on a TTY) on stdout at config.log.level. */
  logger?: Logger;
  /** Default: real time. Tests pass a scaled clock (with `dataPath: main`: a clock cannot cross threads). */
  clock?: Clock;
  /** Default: @rdmaq/rdma-core itself. A substitute needs `dataPath: main` (the worker loads the real one). */
  rdma?: RdmaApi;
  hostname?: string;
  /** Export prom-client's default process metrics (default true). */
  defaultMetrics?: boolean;
  /** How long stop() waits for outgoing rings to empty (default 5000 ms). */
  drainTimeoutMs?: number;
}

export interface Health {
  ok: boolean;
  status: 'ok' | 'unhealthy' | 'stopping';
  node: string;
  /** One line per link that is not up. */
  problems: string[];
  links: Array<Pick<LinkView, 'id' | 'peer' | 'direction' | 'state' | 'reason' | 'required'>>;
  hub: { state: string; bufferedSamples: number; lastError: string | undefined } | null;
}

export interface Agent {
  readonly config: AgentConfig;
  readonly runId: string;
  readonly logger: Logger;
  /** The links: in a worker thread (`dataPath: worker`) or on the main loop (`main`). */
  readonly links: DataPath;
  /** Applications' links from their statistics files (undefined with `apps.enabled: false`). */
  readonly apps: AppLinks | undefined;
  readonly hub: HubClient | undefined;
  readonly metrics: AgentMetrics;
  /** The HTTP server (not listening until start()). */
  readonly server: Server;
  /** The request handler alone (for in-process tests without a socket). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Listens (HTTP), starts the listener and links, connects to the hub and begins sampling. */
  start(): Promise<{ http: AddressInfo }>;
  /** Drains and closes the links, sends a final sample, closes the hub connection and the HTTP server. */
  stop(reason?: string): Promise<void>;
  /** Takes a sample now (the sampler does this every interval); samples are taken one at a time, in order. */
  sampleNow(): Promise<Sample>;
  health(): Health;
  /** Called after every sample (tests, bench). */
  onSample(fn: (s: Sample) => void): () => void;
  /** Stops periodic sampling (benchmark baseline); resumeSampling restarts it, optionally at another interval. */
  pauseSampling(): void;
  resumeSampling(intervalMs?: number): void;
  /**
   * What sampling has cost so far: samples taken and time spent taking them (main mode: CPU time; worker
   * mode: wall time of the worker's statistics read plus that of the main thread's part, because process CPU
   * time would include the other thread's own work).
   */
  samplingCost(): { samples: number; busyMs: number };
}

/** A run id: unique per agent process, so the hub can tell a restart from a reconnect. */
function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export async function loadRdma(): Promise<RdmaApi> {
  return import('@rdmaq/rdma-core');
}

export async function buildAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
  const logger =
    deps.logger ??
    createLogger({ level: config.log.level, pretty: config.log.pretty, nodeId: config.nodeId });
  const clock = deps.clock ?? realClock;
  const rdma = deps.rdma ?? (await loadRdma());
  const host = deps.hostname ?? osHostname();
  const runId = newRunId();
  const startedAt = clock.now();
  const log = logger.child({ component: 'agent' });

  let providers: string[] = [];
  try {
    providers = rdma
      .providers()
      .slice(0, 64)
      .map((p) => p.slice(0, 64));
  } catch (err) {
    log.warn(`cannot list libfabric providers: ${errorMessage(err)}`);
  }

  let links: DataPath;
  if (config.dataPath === 'worker') {
    if (deps.rdma || (deps.clock && deps.clock !== realClock)) {
      throw new AgentError(
        'ERR_RDMAQ_CONFIG',
        'dataPath: worker runs the links on their own thread with the real rdma-core and real time; a substitute rdma API or clock (tests) needs dataPath: main',
      );
    }
    links = new LinkThread({ config, logger });
  } else {
    links = new InProcessDataPath(new LinkManager({ config, rdma, logger, clock }));
  }
  const metrics = new AgentMetrics({
    nodeId: config.nodeId,
    version: AGENT_VERSION,
    defaultMetrics: deps.defaultMetrics ?? true,
    dataPathThread: links.mode === 'worker',
  });
  const hostSampler = new HostSampler();
  // Our own links are reported as ours: other agents on this host skip our statistics file, and we skip it.
  markStatsFileAsAgent();
  const apps = config.apps.enabled
    ? new AppLinks({
        reader: new StatsReader({
          dir: config.apps.dir,
          skipPid: process.pid,
          skipAgents: true,
          ...(netnsOf('self') !== undefined ? { netns: netnsOf('self')! } : {}),
        }),
        nodeId: config.nodeId,
        logger,
      })
    : undefined;

  const hello = (): Hello => ({
    type: 'hello',
    v: PROTOCOL_VERSION,
    nodeId: config.nodeId,
    runId,
    hostname: host.slice(0, 256),
    version: AGENT_VERSION,
    providers,
    startedAt,
    intervalMs: config.sampling.intervalMs,
    ...(config.labels && Object.keys(config.labels).length > 0 ? { labels: config.labels } : {}),
    addresses: hostAddresses(),
  });

  const hub = config.hub
    ? new HubClient({
        url: config.hub.url,
        token: config.hub.token,
        hello,
        logger,
        clock,
        maxSamples: Math.max(2, Math.ceil((config.hub.bufferSeconds * 1000) / config.sampling.intervalMs)),
        maxBytes: config.hub.maxBufferBytes,
        backoff: config.reconnect,
      })
    : undefined;

  const event = (e: Omit<AgentEvent, 'type' | 'v' | 'ts'>): void => {
    hub?.pushEvent({ type: 'event', v: PROTOCOL_VERSION, ts: clock.now(), ...e });
  };

  links.on('state', (ev: LinkEvent) => {
    const severity =
      ev.state === 'down'
        ? 'critical'
        : ev.state === 'degraded' || ev.state === 'stalled'
          ? 'warning'
          : 'info';
    event({
      kind: 'link_state',
      severity,
      link: ev.link,
      state: ev.state,
      ...(ev.code ? { code: ev.code.slice(0, 64) } : {}),
      message: (ev.reason ?? `link is ${ev.state}`).slice(0, 2048),
    });
  });

  // Error counters seen in the previous sample, per link and kind: growth becomes a link_error event.
  const errorsSeen = new Map<string, Record<string, number>>();
  const reportNewErrors = (linkSamples: Sample['links']): void => {
    for (const l of linkSamples) {
      const before = errorsSeen.get(l.id) ?? {};
      for (const [kind, n] of Object.entries(l.counters.errors)) {
        const added = n - (before[kind] ?? 0);
        if (added <= 0) continue;
        event({
          kind: 'link_error',
          severity: kind === 'bad_header' || kind === 'resume_gap' ? 'critical' : 'warning',
          link: l.id,
          state: l.state,
          code: kind.slice(0, 64),
          message:
            `${added} new ${kind} error${added === 1 ? '' : 's'} on link ${l.id} (${n} in total)${l.reason ? `: ${l.reason}` : ''}`.slice(
              0,
              2048,
            ),
        });
      }
      errorsSeen.set(l.id, { ...l.counters.errors });
    }
  };

  let seq = 0;
  let busyMs = 0;
  const sampleListeners = new Set<(s: Sample) => void>();
  // Main mode: CPU time, not wall time (on a busy host the thread may be preempted mid-sample, which costs no
  // CPU). Worker mode: wall time, as process CPU time would count the data-path thread's work too.
  const meter =
    links.mode === 'main'
      ? () => {
          const cpu0 = process.cpuUsage();
          return () => {
            const cpu = process.cpuUsage(cpu0);
            return (cpu.user + cpu.system) / 1000;
          };
        }
      : () => {
          const t0 = performance.now();
          return () => performance.now() - t0;
        };
  const takeSample = async (): Promise<Sample> => {
    // One round trip to the data path for every link's statistics (in worker mode the main thread waits
    // without blocking; the reading itself is timed by the data path).
    const dp = await links.sample();
    const done = meter();
    const linkSamples = dp.links;
    if (apps) {
      try {
        for (const a of apps.sample()) linkSamples.push(a);
      } catch (err) {
        log.error(`reading the applications' statistics files failed: ${errorMessage(err)}`);
      }
    }
    if (linkSamples.length > MAX_LINKS_PER_SAMPLE) {
      log.error(
        { links: linkSamples.length },
        `more than ${MAX_LINKS_PER_SAMPLE} links: the rest are not reported`,
      );
      linkSamples.length = MAX_LINKS_PER_SAMPLE;
    }
    reportNewErrors(linkSamples);
    const sample: Sample = {
      type: 'sample',
      v: PROTOCOL_VERSION,
      seq: ++seq,
      ts: clock.now(),
      host:
        links instanceof LinkThread && dp.loop
          ? { ...hostSampler.sample(), dataPathLagMs: dp.loop.lagMs }
          : hostSampler.sample(),
      links: linkSamples,
    };
    metrics.ingest(sample);
    hub?.pushSample(sample);
    const hs = hub?.stats;
    busyMs += dp.costMs + done();
    metrics.setSide({
      hubConnected: hs?.state === 'live',
      bufferedSamples: hs?.bufferedSamples ?? 0,
      droppedSamples: hs?.droppedSamples ?? 0,
      samplingSeconds: busyMs / 1000,
      ...(links instanceof LinkThread
        ? { dataPathLagSeconds: (dp.loop?.lagMs ?? 0) / 1000, dataPathRestarts: links.restarts }
        : {}),
    });
    for (const fn of sampleListeners) {
      try {
        fn(sample);
      } catch (err) {
        log.error(`sample listener failed: ${errorMessage(err)}`);
      }
    }
    return sample;
  };
  // One sample at a time, in order (the final sample of stop() waits for one in flight).
  let sampleChain: Promise<unknown> = Promise.resolve();
  const sampleNow = (): Promise<Sample> => {
    const next = sampleChain.then(takeSample);
    sampleChain = next.catch(() => {});
    return next;
  };

  let stopping = false;
  let sampleTimer: TimerHandle | undefined;
  let interval = config.sampling.intervalMs;
  let nextAt = 0;
  // Bumped by pause/resume: a sample in flight then does not re-arm the timer of an older schedule.
  let schedule = 0;
  const scheduleSample = (): void => {
    if (stopping) return;
    const mine = schedule;
    // Drift-free: aim at start + k·interval; after a long stall, skip ahead instead of sampling in a burst.
    nextAt += interval;
    const now = clock.now();
    if (nextAt < now) nextAt = now + interval;
    sampleTimer = clock.setTimeout(() => {
      sampleNow()
        .catch((err: unknown) => log.error(`sampling failed: ${errorMessage(err)}`))
        .finally(() => {
          if (mine === schedule) scheduleSample();
        });
    }, nextAt - now);
  };

  const health = (): Health => {
    const views = links.views();
    const problems = views
      .filter((l) => l.state !== 'up' && l.required)
      .map((l) => `link ${l.id} (${l.direction} ${l.peer}) is ${l.state}${l.reason ? `: ${l.reason}` : ''}`);
    if (links.fabricListenerMissing)
      problems.push(`incoming fabric links refused: ${links.fabricListenerMissing}`);
    const ok = !stopping && problems.length === 0;
    const hs = hub?.stats;
    return {
      ok,
      status: stopping ? 'stopping' : ok ? 'ok' : 'unhealthy',
      node: config.nodeId,
      problems,
      links: views.map((l) => ({
        id: l.id,
        peer: l.peer,
        direction: l.direction,
        state: l.state,
        reason: l.reason,
        required: l.required,
      })),
      hub: hs ? { state: hs.state, bufferedSamples: hs.bufferedSamples, lastError: hs.lastError } : null,
    };
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (url === '/metrics') {
      metrics.text().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          log.error(`metrics collection failed: ${errorMessage(err)}`);
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
      return;
    }
    if (url === '/healthz') {
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : `${JSON.stringify(h)}\n`);
      return;
    }
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end('not found: this agent serves /metrics (Prometheus) and /healthz\n');
  };
  const server = createServer(handler);
  server.on('clientError', (_err, socket) => socket.destroy());

  const start = async (): Promise<{ http: AddressInfo }> => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.http.port, config.http.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    try {
      await links.start();
    } catch (err) {
      server.close();
      throw err;
    }
    hub?.start();
    event({ kind: 'agent', severity: 'info', message: `agent ${AGENT_VERSION} started (run ${runId})` });
    nextAt = clock.now();
    scheduleSample();
    log.info(
      {
        http: `${addr.address}:${addr.port}`,
        runId,
        links: config.links.length,
        hub: config.hub?.url ?? null,
      },
      `rdmaq-agent ${AGENT_VERSION} running`,
    );
    return { http: addr };
  };

  let stopped: Promise<void> | undefined;
  const stop = (reason = 'agent shutting down'): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      sampleTimer?.cancel();
      log.info({ reason }, 'stopping: draining links');
      const drained = await links.drain(deps.drainTimeoutMs ?? 5000);
      if (!drained) log.warn('outgoing rings did not drain in time; closing anyway');
      await links.markAllDown(reason);
      event({ kind: 'agent', severity: 'info', message: `agent stopping: ${reason}` });
      try {
        await sampleNow();
      } catch (err) {
        log.error(`final sample failed: ${errorMessage(err)}`);
      }
      if (hub) {
        const flushed = await hub.flush(3000);
        if (!flushed)
          log.warn({ buffered: hub.stats.bufferedSamples }, 'the hub did not take the final samples in time');
        await hub.stop();
      }
      await links.close();
      apps?.close();
      hostSampler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      log.info('stopped');
    })();
    return stopped;
  };

  return {
    config,
    runId,
    logger,
    links,
    apps,
    hub,
    metrics,
    server,
    handler,
    start,
    stop,
    sampleNow,
    health,
    onSample(fn) {
      sampleListeners.add(fn);
      return () => sampleListeners.delete(fn);
    },
    pauseSampling() {
      schedule++;
      sampleTimer?.cancel();
      sampleTimer = undefined;
    },
    resumeSampling(intervalMs) {
      if (stopping) return;
      schedule++;
      sampleTimer?.cancel();
      if (intervalMs !== undefined) interval = intervalMs;
      nextAt = clock.now();
      scheduleSample();
    },
    samplingCost: () => ({ samples: seq, busyMs }),
  };
}

/**
 * This host's non-loopback addresses (≤ 16, as the hello allows), read at each hello: the hub maps link peers
 * given as an address — applications connect to IPs, not node ids — to this node.
 */
export function hostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || out.includes(a.address)) continue;
      // Link-local IPv6 needs its zone to mean anything: not useful to the hub.
      if (a.family === 'IPv6' && a.address.startsWith('fe80:')) continue;
      out.push(a.address);
      if (out.length === 16) return out;
    }
  }
  return out;
}

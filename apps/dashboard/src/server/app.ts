/**
 * `buildApp()` wires the hub (store, auth, fleet, ingest, alerts, notifier, live fan-out, REST) and
 * optionally Next.js onto one HTTP(S) server, without listening: tests drive it in process and the bin
 * calls `listen()`. `close()` shuts down gracefully (agents told 1001, open minutes flushed, store closed).
 */
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Sample } from '@rdmaq/shared';
import { AlertEngine } from './alerts.js';
import { createApi, parseCookies, SESSION_COOKIE } from './api.js';
import { AuditLog } from './audit.js';
import { Auth } from './auth.js';
import { type HubConfig, type HubConfigInput, parseConfig } from './config.js';
import { DemoChaos } from './demo-chaos.js';
import { HubError } from './errors.js';
import { Ingest } from './ingest.js';
import { LiveHub } from './live.js';
import { createLogger, type Logger } from './log.js';
import { Fleet } from './model/fleet.js';
import { Notifier } from './notifier.js';
import type { Migration } from './store/migrations.js';
import { acquireLock, Store } from './store/store.js';
import { createTsdb, type Tsdb } from './tsdb/index.js';

/** apps/dashboard (from src/server or dist/server). */
export const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

export interface BuildOptions {
  config: HubConfigInput | HubConfig;
  /** Host the Next.js UI (default true). Tests pass false. */
  next?: boolean;
  /** Clock (ms); tests may drive time by hand. */
  now?: () => number;
  /** Run the evaluation, fan-out, flush and backup timers (default true). Tests may call `tick()` instead. */
  timers?: boolean;
  logger?: Logger;
  /** Replaces the built-in migrations (tests of the migration machinery). */
  migrations?: Migration[];
}

export interface App {
  config: HubConfig;
  server: http.Server | https.Server;
  store: Store;
  fleet: Fleet;
  auth: Auth;
  ingest: Ingest;
  alerts: AlertEngine;
  audit: AuditLog;
  live: LiveHub;
  notifier: Notifier;
  /** Remote write + PromQL history, when `tsdb` is configured. */
  tsdb: Tsdb | undefined;
  log: Logger;
  /** Printed at first start when no admin was configured; undefined otherwise. */
  setupToken: string | undefined;
  /** One evaluation + fan-out round (what the timers do every second). */
  tick(): void;
  listen(port?: number, host?: string): Promise<AddressInfo>;
  url(): string;
  close(): Promise<void>;
}

type NextHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

async function loadNext(
  log: Logger,
): Promise<{ handle: NextHandler; close: () => Promise<void> } | undefined> {
  if (!existsSync(path.join(PACKAGE_DIR, '.next', 'BUILD_ID'))) {
    log.warn(
      'UI not built (.next/ missing): run `pnpm --filter @rdmaq/dashboard build`; serving the hub only',
    );
    return undefined;
  }
  const mod = (await import('next')) as unknown as {
    default: (o: { dev: boolean; dir: string; httpServer: EventEmitter }) => {
      prepare(): Promise<void>;
      getRequestHandler(): NextHandler;
      close?: () => Promise<void>;
    };
  };
  // Next attaches its own 'upgrade' listener to the server of the first request it handles (for its
  // middleware and dev HMR) unless given `httpServer`; on ours it would answer /ws/live and /ws/agent too
  // and destroy the socket right after the hub's welcome (seen as close 1006 once a middleware exists).
  // A server stand-in that never emits keeps upgrades the hub's alone.
  const app = mod.default({ dev: false, dir: PACKAGE_DIR, httpServer: new EventEmitter() });
  await app.prepare();
  return { handle: app.getRequestHandler(), close: async () => app.close?.() };
}

export async function buildApp(opts: BuildOptions): Promise<App> {
  const config = parseConfig(opts.config);
  const log = opts.logger ?? createLogger(config.logLevel);
  const now = opts.now ?? Date.now;
  const timers = opts.timers ?? true;
  const releaseLock = acquireLock(config.dataDir);
  let store: Store;
  try {
    store = await Store.open({
      dataDir: config.dataDir,
      log,
      backupKeep: config.backup.keep,
      ...(opts.migrations ? { migrations: opts.migrations } : {}),
    });
  } catch (err) {
    releaseLock();
    throw err;
  }
  const auth = new Auth(store, log, config.sessionTtlS * 1000, now, config.auth);
  const setupToken = await auth.bootstrap(config.admin);
  const audit = new AuditLog(store, log, now, config.audit);
  const fleet = new Fleet({
    store,
    log,
    memoryS: config.history.memoryS,
    latencyWindowS: config.history.latencyWindowS,
    minuteRetentionDays: config.history.minuteRetentionDays,
    hourRetentionDays: config.history.hourRetentionDays,
    now,
    staleAfterSamples: config.freshness.staleAfterSamples,
    offlineAfterS: config.freshness.offlineAfterS,
  });
  const proto = config.tls ? 'https' : 'http';
  let boundUrl = '';
  const externalUrl = () => config.externalUrl ?? (boundUrl || `${proto}://localhost:${config.port}`);
  const notifier = new Notifier(
    {
      webhooks: config.alerts.webhooks,
      alertmanagerUrl: config.alerts.alertmanagerUrl,
      get externalUrl() {
        return externalUrl();
      },
      timeoutMs: config.alerts.webhookTimeoutMs,
      retries: config.alerts.webhookRetries,
      retryBaseMs: config.alerts.webhookRetryBaseMs,
      alertmanagerResendMs: config.alerts.alertmanagerResendMs,
    },
    log,
  );
  const alerts = new AlertEngine(store, fleet, log, now, notifier);

  const allowed = new Set(config.allowedOrigins.map((o) => new URL(o).origin));
  const originAllowed = (req: IncomingMessage): boolean => {
    const origin = req.headers.origin;
    if (!origin) return true;
    try {
      const u = new URL(origin);
      return u.host === req.headers.host || allowed.has(u.origin);
    } catch {
      return false;
    }
  };

  const tsdb = config.tsdb ? createTsdb(config.tsdb, log) : undefined;
  const ingest = new Ingest({
    fleet,
    auth,
    log,
    maxFrameBytes: config.ingest.maxFrameBytes,
    helloTimeoutMs: config.ingest.helloTimeoutMs,
    maxAgents: config.ingest.maxAgents,
    maxNodes: config.ingest.maxNodes,
    maxLinkEnds: config.ingest.maxLinkEnds,
    maxSampleAgeMs: Math.min(config.ingest.maxSampleAgeS, config.history.minuteRetentionDays * 86_400) * 1000,
    maxSampleAheadMs: config.ingest.maxSampleAheadMs,
    originAllowed,
    now,
    ...(tsdb ? { onSample: (nodeId: string, s: Sample) => tsdb.writer.onSample(nodeId, s) } : {}),
  });
  const live = new LiveHub({
    fleet,
    alerts,
    log,
    now,
    maxBufferedBytes: config.live.maxBufferedBytes,
    maxClients: config.live.maxClients,
    maxClientsPerUser: config.live.maxClientsPerUser,
  });
  const api = createApi({
    fleet,
    alerts,
    auth,
    ingest,
    audit,
    log,
    now,
    secureCookies: !!config.tls,
    sessionTtlS: config.sessionTtlS,
    originAllowed,
    chaos: config.demo.chaosSocket ? new DemoChaos(config.demo.chaosSocket) : undefined,
    tsdb,
    memoryS: config.history.memoryS,
  });

  const nextUi = opts.next === false || !config.ui ? undefined : await loadNext(log);

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url === '/api' || url.startsWith('/api/')) {
      void api(req, res);
      return;
    }
    if (nextUi) {
      nextUi.handle(req, res).catch((err: Error) => {
        log.error({ err }, 'Next.js handler failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
      return;
    }
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(
      'rdmaq dashboard: the UI is not built or not enabled; run `pnpm --filter @rdmaq/dashboard build`. The API is under /api.\n',
    );
  };
  const readPem = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new HubError(
        'ERR_RDMAQ_CONFIG',
        `cannot read the TLS ${what} ${file}: ${(err as Error).message}; fix RDMAQ_TLS_${what === 'certificate' ? 'CERT' : 'KEY'} (tls.${what === 'certificate' ? 'certPath' : 'keyPath'})`,
      );
    }
  };
  let server: http.Server | https.Server;
  try {
    server = config.tls
      ? https.createServer(
          { cert: readPem(config.tls.certPath, 'certificate'), key: readPem(config.tls.keyPath, 'key') },
          onRequest,
        )
      : http.createServer(onRequest);
  } catch (err) {
    store.close();
    releaseLock();
    throw err;
  }
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;

  const rejectUpgrade = (socket: Duplex, status: number, text: string) => {
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${text}\n`,
    );
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname === '/ws/agent') return ingest.handleUpgrade(req, socket, head);
    if (pathname === '/ws/live') {
      if (!req.headers.origin || !originAllowed(req)) {
        log.warn({ origin: req.headers.origin }, 'live connection refused: origin not allowed');
        return rejectUpgrade(socket, 403, 'Forbidden: origin not allowed');
      }
      const user = auth.session(parseCookies(req.headers.cookie)[SESSION_COOKIE]);
      if (!user) return rejectUpgrade(socket, 401, 'Unauthorized: log in first');
      return live.handleUpgrade(req, socket, head, user);
    }
    rejectUpgrade(socket, 404, 'Not Found');
  });

  /** Freshness and blame before anything reads the fleet; silent agents' connections are closed. */
  const refresh = () => {
    const t = now();
    for (const id of fleet.refreshFreshness(t)) {
      const n = fleet.nodes.get(id);
      ingest.dropSilent(id, n ? Math.round((t - n.lastDataAt) / 1000) : 0);
    }
  };
  const fanOut = () => {
    try {
      refresh();
      live.tick();
    } catch (err) {
      log.error({ err }, 'live fan-out failed');
    }
  };
  const evaluate = () => {
    try {
      refresh();
      alerts.evaluate();
      notifier.tick(now(), alerts.firing());
    } catch (err) {
      log.error({ err }, 'alert evaluation failed');
    }
  };
  // Fan-out first (it is what browsers wait for), then evaluation; alert changes reach browsers on the
  // next round.
  const tick = () => {
    fanOut();
    evaluate();
  };

  const intervals: NodeJS.Timeout[] = [];
  if (timers) {
    // Separate timers: browsers get at most one delta per view per live.tickMs (≥ 1 s) whatever the
    // evaluation interval.
    intervals.push(setInterval(fanOut, config.live.tickMs));
    intervals.push(setInterval(evaluate, config.alerts.evalIntervalMs));
    intervals.push(
      setInterval(() => {
        fleet.flushIncremental().catch((err: Error) => log.error({ err }, 'history flush failed'));
      }, config.history.flushIntervalMs),
    );
    intervals.push(setInterval(() => auth.expireSessions(), 600_000));
    intervals.push(setInterval(() => audit.prune(), 3600_000));
    store.startBackupSchedule(config.backup.intervalS * 1000);
  }

  let closed = false;
  const app: App = {
    config,
    server,
    store,
    fleet,
    auth,
    ingest,
    alerts,
    audit,
    live,
    notifier,
    tsdb,
    log,
    setupToken,
    tick,
    listen(port = config.port, host = config.host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          boundUrl = `${proto}://${h === '0.0.0.0' || h === '[::]' ? 'localhost' : h}:${a.port}`;
          resolve(a);
        });
      });
    },
    url: () => boundUrl,
    async close() {
      if (closed) return;
      closed = true;
      for (const i of intervals) clearInterval(i);
      ingest.close();
      live.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      try {
        fleet.flush(true);
      } catch (err) {
        log.error({ err }, 'final history flush failed');
      }
      notifier.close();
      await tsdb?.close().catch((err: Error) => log.error({ err }, 'TSDB close failed'));
      await nextUi?.close().catch(() => undefined);
      await store.stopBackupSchedule();
      store.close();
      releaseLock();
    },
  };
  return app;
}

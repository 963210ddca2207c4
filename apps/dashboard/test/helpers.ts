import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  bucketOf,
  type Hello,
  LIVE_PROTOCOL_VERSION,
  type LinkSample,
  PROTOCOL_VERSION,
  type Sample,
} from '@rdmaq/shared';
import pino from 'pino';
import WebSocket from 'ws';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { type App, type BuildOptions, buildApp } from '../src/server/app.js';
import type { HubConfigInput } from '../src/server/config.js';

export const ADMIN = { user: 'admin', password: 'correct horse battery' };

export interface TestHub {
  app: App;
  url: string;
  wsUrl: string;
  dir: string;
  clock: { t: number };
  cookie: string;
  agentToken: string;
  close(): Promise<void>;
}

export function tempDir(prefix = 'rdmaq-hub-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A hub on an ephemeral loopback port, manual clock, no timers (tests call app.tick()), admin logged in. */
export async function startHub(
  over: Partial<HubConfigInput> = {},
  opts: Partial<BuildOptions> & { dir?: string; realClock?: boolean } = {},
): Promise<TestHub> {
  const dir = opts.dir ?? tempDir();
  const clock = { t: Date.now() };
  const app = await buildApp({
    config: { dataDir: dir, port: 0, host: '127.0.0.1', admin: ADMIN, logLevel: 'silent', ...over },
    next: false,
    timers: false,
    logger: pino({ level: process.env.HUB_TEST_LOG ?? 'silent' }),
    ...(opts.realClock ? {} : { now: () => clock.t }),
    ...opts,
  });
  await app.listen(0, '127.0.0.1');
  const url = app.url();
  const cookie = await login(url, ADMIN.user, ADMIN.password);
  const res = await fetch(`${url}/api/agent-tokens`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json' },
    // Tests speak for many node ids with one token.
    body: JSON.stringify({ name: 'test', nodes: ['*'] }),
  });
  const { token } = (await res.json()) as { token: string };
  return {
    app,
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    dir,
    clock,
    cookie,
    agentToken: token,
    async close() {
      await app.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function login(url: string, name: string, password: string): Promise<string> {
  const res = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

export async function api<T = unknown>(
  hub: TestHub,
  method: string,
  p: string,
  body?: unknown,
  cookie = hub.cookie,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${hub.url}${p}`, {
    method,
    headers: { cookie, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export interface LinkSpec {
  id: string;
  peer: string;
  direction?: 'tx' | 'rx';
  transport?: LinkSample['transport'];
  /** libfabric provider; default tcp;ofi_rxm (shm for the shm transport). */
  provider?: string;
  state?: LinkSample['state'];
  records?: number;
  bytes?: number;
  errors?: number;
  occupancy?: number;
  capacity?: number;
  /** Latency values (ns) and how many records had them in this sample. */
  latency?: Array<[number, number]>;
}

export function linkSample(s: LinkSpec): LinkSample {
  const buckets = new Map<number, number>();
  for (const [v, n] of s.latency ?? []) buckets.set(bucketOf(v), (buckets.get(bucketOf(v)) ?? 0) + n);
  return {
    id: s.id,
    peer: s.peer,
    direction: s.direction ?? 'rx',
    transport: s.transport ?? 'fabric',
    provider: s.provider ?? (s.transport === 'shm' ? 'shm' : 'tcp;ofi_rxm'),
    state: s.state ?? 'up',
    counters: {
      records: s.records ?? 0,
      bytes: s.bytes ?? 0,
      completions: s.records ?? 0,
      creditUpdates: 0,
      backpressure: 0,
      wraps: 0,
      resends: 0,
      reconnects: 0,
      errors: s.errors ? { bad_header: s.errors } : {},
    },
    gauges: {
      occupancyBytes: s.occupancy ?? 0,
      peakOccupancyBytes: s.occupancy ?? 0,
      capacityBytes: s.capacity ?? 4 << 20,
    },
    latency: { queue: [...buckets.entries()].sort((a, b) => a[0] - b[0]), rtt: [] },
  };
}

export function sample(seq: number, ts: number, links: LinkSpec[]): Sample {
  return {
    type: 'sample',
    v: PROTOCOL_VERSION,
    seq,
    ts,
    host: { cpuPercent: 5, rssBytes: 50e6, eventLoopLagMs: 1, uptimeS: seq },
    links: links.map(linkSample),
  };
}

export function hello(nodeId: string, runId = 'run-1'): Hello {
  return {
    type: 'hello',
    v: PROTOCOL_VERSION,
    nodeId,
    runId,
    hostname: `${nodeId}.test`,
    version: 'test',
    providers: ['tcp;ofi_rxm'],
    startedAt: Date.now(),
    intervalMs: 1000,
  };
}

/** A scripted agent: a raw ws client speaking the agent protocol. */
export class TestAgent {
  ws!: WebSocket;
  frames: Array<Record<string, unknown>> = [];
  closed: Promise<{ code: number; reason: string }>;
  private resolveClosed!: (v: { code: number; reason: string }) => void;
  constructor() {
    this.closed = new Promise((r) => {
      this.resolveClosed = r;
    });
  }

  static async connect(
    wsUrl: string,
    token: string | undefined,
    opts: { origin?: string } = {},
  ): Promise<TestAgent> {
    const a = new TestAgent();
    a.ws = new WebSocket(`${wsUrl}/ws/agent`, {
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(opts.origin ? { origin: opts.origin } : {}),
      },
    });
    a.ws.on('message', (d) => a.frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    a.ws.on('close', (code, reason) => a.resolveClosed({ code, reason: String(reason) }));
    a.ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      a.ws.once('open', () => resolve());
      a.ws.once('error', reject);
    });
    return a;
  }

  send(f: unknown): void {
    this.ws.send(typeof f === 'string' ? f : JSON.stringify(f));
  }

  /** The first frame (already received or to come) matching `pred`. */
  async waitFor(
    pred: (f: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> {
    const frame = () => this.frames.find(pred);
    return waitFor('a frame', frame, { timeoutMs, everyMs: 10 }).catch((err: Error) => {
      throw new Error(`${err.message}; got ${JSON.stringify(this.frames.slice(-3))}`);
    });
  }

  async hello(nodeId: string, runId = 'run-1', extra: Partial<Hello> = {}): Promise<number> {
    this.send({ ...hello(nodeId, runId), ...extra });
    const w = await this.waitFor((f) => f.type === 'welcome');
    return w.lastSeq as number;
  }

  /** Waits until the hub acked `seq` (so every sample before it was applied). */
  async acked(seq: number): Promise<void> {
    await this.waitFor((f) => f.type === 'ack' && (f.seq as number) >= seq);
  }

  close(): void {
    this.ws.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `pred` until it holds: the repo's `waitFor` (tooling/test-support/wait.js) in the short form the
 * live-protocol suites use. Elsewhere call `waitFor` with what is awaited, for a useful timeout message.
 */
export async function until(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  await waitFor(what, pred, { timeoutMs, everyMs: 10 });
}

/** A browser-like live client (cookie + Origin). */
export class LiveClient {
  ws!: WebSocket;
  frames: Array<Record<string, unknown>> = [];
  /** `version`: the live protocol the page says it speaks (`?v=`); null: says nothing, as protocol-1 pages. */
  static async connect(
    hub: TestHub,
    opts: { origin?: string; cookie?: string; version?: number | null } = {},
  ): Promise<LiveClient> {
    const c = new LiveClient();
    const v = opts.version === undefined ? LIVE_PROTOCOL_VERSION : opts.version;
    c.ws = new WebSocket(`${hub.wsUrl}/ws/live${v === null ? '' : `?v=${v}`}`, {
      headers: { cookie: opts.cookie ?? hub.cookie, origin: opts.origin ?? hub.url },
    });
    c.ws.on('message', (d) => c.frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve());
      c.ws.once('error', reject);
      c.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return c;
  }
  send(f: unknown): void {
    this.ws.send(JSON.stringify(f));
  }
  private pings = 0;
  /**
   * Resolves once every frame the hub sent before now has arrived: a ping goes out and its pong comes back
   * on the same ordered socket, behind them. The explicit "drained" signal for asserting that something was
   * NOT sent (instead of a sleep that passes when the hub is merely slow).
   */
  async drained(): Promise<void> {
    const id = ++this.pings;
    this.send({ type: 'ping', id });
    await until(() => this.frames.some((f) => f.type === 'pong' && f.id === id));
  }
  close(): void {
    this.ws.close();
  }
}

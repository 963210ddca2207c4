/**
 * Property test: generated frames (valid, mutated, garbage) through the hub's two WebSocket parsers, driven
 * through the real connection handlers (`Ingest.accept`, `LiveHub.attach`) with socket doubles, on a seeded
 * PRNG (FUZZ_SEED to replay another run, FUZZ_FRAMES to run more). Properties:
 *   - nothing escapes: no frame makes a handler throw (the handlers' own catch would close with 1011);
 *   - nothing hangs: every frame is handled within a bound;
 *   - nothing is stored from an invalid frame: a frame the hub refuses leaves the node's stored figures,
 *     seq and events as they were; every sample stored reaches SQLite, timestamped within the window;
 *   - no prototype pollution through JSON keys.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import {
  AgentFrameSchema,
  BUCKET_COUNT,
  decodeFrame,
  LiveClientFrameSchema,
  MAX_LIVE_SUBSCRIPTIONS,
  PROTOCOL_VERSION,
} from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { decodeAgentFrame } from '../src/server/decode.js';
import { startHub, type TestHub } from './helpers.js';
import { mulberry32 } from './prng.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_250_101);
const AGENT_FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
const LIVE_FRAMES = Math.max(20_000, Math.round(AGENT_FRAMES / 5));
/** Generous: a frame takes tens of µs; a backtracking or catch-up bug takes seconds. */
const MAX_FRAME_MS = 1000;

/** Enough of a `ws` WebSocket for the handlers: events, send, close (emits 'close' like the real one). */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CONNECTING = 0;
  readyState = 1;
  closedWith: number | undefined;
  sent = 0;
  send(_data: unknown, _opts?: unknown): void {
    this.sent++;
  }
  close(code?: number): void {
    if (this.readyState !== 1) return;
    this.readyState = 3;
    this.closedWith = code ?? 1005;
    this.emit('close', this.closedWith, Buffer.from(''));
  }
}

type Rnd = () => number;
const int = (r: Rnd, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rnd, a: readonly T[]): T => a[int(r, a.length)]!;

const NODE_IDS = ['n0', 'n1', 'n2', 'rack1-h3', 'a.b:c@d/e>f-g'];
const LINK_IDS = ['l0', 'l1', 'n0->n1', 'x'];
const RUN_IDS = ['run-a', 'run-b', 'run-c'];
const WEIRD: unknown[] = [
  null,
  true,
  false,
  -1,
  -0.5,
  1.5,
  0,
  1e308,
  -1e308,
  2 ** 53,
  2 ** 60,
  1.2345678901234568e29,
  '',
  '1',
  'NaN',
  'up',
  'x'.repeat(300),
  'y'.repeat(3000),
  '\u0000\u202e<script>',
  [],
  {},
  [[1, 2, 3]],
  [[BUCKET_COUNT, 1]],
  [[-1, 1]],
  { __proto__: { polluted: 1 } },
  JSON.parse('{"__proto__":{"polluted":1}}'),
];

function buckets(r: Rnd): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = int(r, 50);
  for (let k = int(r, 6); k > 0 && i < BUCKET_COUNT; k--) {
    out.push([i, 1 + int(r, 1000)]);
    i += 1 + int(r, 400);
  }
  return out;
}

function validSample(r: Rnd, seq: number, ts: number): Record<string, unknown> {
  // Counters grow with time, not with seq (a mutated frame may have pushed a node's seq to 2^52).
  const step = Math.floor(ts / 1000) % 1_000_000;
  const links = [];
  const ids = LINK_IDS.filter(() => r() < 0.5);
  for (const id of ids) {
    const capacity = 1 << (12 + int(r, 10));
    links.push({
      id,
      peer: pick(r, NODE_IDS),
      direction: pick(r, ['tx', 'rx'] as const),
      transport: pick(r, ['shm', 'fabric'] as const),
      provider: pick(r, ['tcp;ofi_rxm', 'verbs;ofi_rxm', 'shm', 'efa']),
      state: pick(r, ['connecting', 'up', 'degraded', 'down'] as const),
      ...(r() < 0.2 ? { reason: 'peer went away' } : {}),
      counters: {
        records: step * 100 + int(r, 100),
        bytes: step * 6400,
        completions: step * 10,
        creditUpdates: step,
        backpressure: int(r, 5),
        wraps: int(r, 3),
        resends: 0,
        reconnects: int(r, 2),
        errors: r() < 0.3 ? { bad_header: int(r, 4) } : {},
      },
      gauges: { occupancyBytes: int(r, capacity), peakOccupancyBytes: capacity, capacityBytes: capacity },
      latency: { queue: buckets(r), rtt: r() < 0.3 ? buckets(r) : [] },
    });
  }
  return {
    type: 'sample',
    v: PROTOCOL_VERSION,
    seq,
    ts,
    host: {
      cpuPercent: r() * 400,
      rssBytes: 50e6 + int(r, 1e6),
      eventLoopLagMs: r() * 10,
      ...(r() < 0.5 ? { dataPathLagMs: r() * 5 } : {}),
      uptimeS: step,
    },
    links,
  };
}

function validEvent(r: Rnd, ts: number): Record<string, unknown> {
  return {
    type: 'event',
    v: PROTOCOL_VERSION,
    ts,
    kind: pick(r, ['link_state', 'link_error', 'agent'] as const),
    severity: pick(r, ['info', 'warning', 'critical'] as const),
    ...(r() < 0.5 ? { link: pick(r, LINK_IDS) } : {}),
    ...(r() < 0.3 ? { state: 'down' } : {}),
    ...(r() < 0.3 ? { code: 'peer_gone' } : {}),
    message: 'something happened',
  };
}

function validHello(r: Rnd, nodeId: string, runId: string): Record<string, unknown> {
  return {
    type: 'hello',
    v: PROTOCOL_VERSION,
    nodeId,
    runId,
    hostname: `${nodeId}.example`,
    version: '1.0.0',
    providers: ['tcp;ofi_rxm'],
    startedAt: 1_700_000_000_000 + int(r, 1e9),
    intervalMs: pick(r, [100, 1000, 5000]),
  };
}

/** Every [container, key] pair inside a JSON value (objects and arrays), for mutation. */
function slots(v: unknown, out: Array<[Record<string, unknown> | unknown[], string | number]> = []) {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push([v, i]);
      slots(x, out);
    });
  } else if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      out.push([v as Record<string, unknown>, k]);
      slots((v as Record<string, unknown>)[k], out);
    }
  }
  return out;
}

/** A structural mutation: a field replaced, removed, added, or a collection blown up. */
function mutate(r: Rnd, frame: Record<string, unknown>): Record<string, unknown> {
  const f = structuredClone(frame);
  const all = slots(f);
  const op = int(r, 6);
  if (op === 0 || all.length === 0) {
    const key = pick(r, ['type', 'v', 'seq', 'ts', 'nodeId', 'links', 'host', 'extra', '__proto__']);
    (f as Record<string, unknown>)[key] = pick(r, WEIRD);
    return f;
  }
  const [container, key] = pick(r, all);
  if (op === 1) {
    (container as Record<string | number, unknown>)[key] = pick(r, WEIRD);
  } else if (op === 2) {
    if (Array.isArray(container)) container.splice(key as number, 1);
    else delete (container as Record<string, unknown>)[key as string];
  } else if (op === 3) {
    const v = (container as Record<string | number, unknown>)[key];
    if (Array.isArray(v) && v.length) {
      // Blow a collection up (duplicate ids, thousands of buckets) within the frame size limit.
      const n = pick(r, [2, 70, 1100, 4000]);
      for (let i = 0; i < n && v.length < 5000; i++) v.push(structuredClone(v[i % v.length]));
    } else if (v && typeof v === 'object') {
      for (let i = 0; i < pick(r, [3, 70]); i++) (v as Record<string, unknown>)[`k${i}`] = int(r, 10);
    } else (container as Record<string | number, unknown>)[key] = pick(r, WEIRD);
  } else if (op === 4) {
    const v = (container as Record<string | number, unknown>)[key];
    if (typeof v === 'number') {
      (container as Record<string | number, unknown>)[key] = pick(r, [
        -v,
        v + 0.5,
        v * 1e12,
        Number.MAX_SAFE_INTEGER + 2,
        -1,
      ]);
    } else if (typeof v === 'string') {
      (container as Record<string | number, unknown>)[key] = pick(r, [
        `${v} `,
        v.repeat(200),
        '',
        `${v}~`,
        `${v}\n`,
      ]);
    } else (container as Record<string | number, unknown>)[key] = pick(r, WEIRD);
  } else {
    // A timestamp anywhere in time.
    if ('ts' in f) f.ts = pick(r, [0, 1, 86_400_000, 4_102_444_800_000, 8.64e15, 2 ** 53 - 1]);
    else (container as Record<string | number, unknown>)[key] = pick(r, WEIRD);
  }
  return f;
}

/** Byte-level damage to a serialised frame. */
function damage(r: Rnd, text: string): Buffer {
  const b = Buffer.from(text);
  switch (int(r, 6)) {
    case 0:
      return b.subarray(0, int(r, b.length));
    case 1: {
      const c = Buffer.from(b);
      for (let k = 1 + int(r, 4); k > 0 && c.length; k--) c[int(r, c.length)] = int(r, 256);
      return c;
    }
    case 2: {
      const at = int(r, b.length + 1);
      return Buffer.concat([
        b.subarray(0, at),
        Buffer.from(pick(r, ['{', '}', '"', '\\', ',', '\u0000', '[[['])),
        b.subarray(at),
      ]);
    }
    case 3:
      return Buffer.from(`[${text}]`);
    case 4:
      return Buffer.from(pick(r, ['', 'null', '0', '"hello"', '[]', '{}', 'true', '{"type":"sample"}']));
    default: {
      const g = Buffer.alloc(1 + int(r, 200));
      for (let i = 0; i < g.length; i++) g[i] = int(r, 256);
      return g;
    }
  }
}

/** expect() with a message built only on failure (100,000 frames: no string work on the happy path). */
function check(ok: boolean, msg: () => string): void {
  if (!ok) expect.fail(msg());
}

describe('frame property test (seeded)', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => {
    await hub?.close();
  });

  it(`${AGENT_FRAMES.toLocaleString('en')} agent frames and ${LIVE_FRAMES.toLocaleString('en')} live frames: nothing escapes, hangs or is stored from an invalid frame`, () => {
    const r = mulberry32(SEED);
    const { ingest, fleet, live } = hub.app;
    const t0 = hub.clock.t;
    let applied = 0;
    const apply = fleet.applySample.bind(fleet);
    fleet.applySample = (n, s) => {
      const ok = apply(n, s);
      if (ok) applied++;
      return ok;
    };
    const req = {
      socket: { remoteAddress: '127.0.0.1', remotePort: 1 },
      headers: { authorization: `Bearer ${hub.agentToken}` },
    } as unknown as IncomingMessage;

    /** What an applied frame changes on a node; a refused frame must leave it as it was. */
    const fingerprint = (nodeId: string | undefined) => {
      const n = nodeId ? fleet.nodes.get(nodeId) : undefined;
      if (!n) return `nodes=${fleet.nodes.size} links=${fleet.links.size}`;
      let host = 0;
      for (const m of n.minutes.values()) host += m.samples;
      let link = 0;
      for (const l of n.links.values()) for (const m of l.minutes.values()) link += m.samples;
      return `nodes=${fleet.nodes.size} links=${fleet.links.size} host=${host} link=${link} ids=${[...n.links.keys()].join(',')}`;
    };
    /** Agent events held for a node (the hub's own notices aside; old ones may be evicted, none added). */
    const agentEvents = (nodeId: string | undefined) =>
      new Set((nodeId ? fleet.nodes.get(nodeId)?.events : undefined)?.filter((e) => e.kind !== 'hub_error'));
    const noneAdded = (before: Set<unknown>, after: Set<unknown>) => [...after].every((e) => before.has(e));
    const rejectedTotal = () => {
      let t = 0;
      for (const v of ingest.rejected.values()) t += v;
      return t;
    };
    const stats = { valid: 0, mutated: 0, damaged: 0, refused: 0, internal: 0, maxMs: 0 };

    let sock: FakeSocket | undefined;
    let node: string | undefined;
    let seq = 0;
    for (let i = 0; i < AGENT_FRAMES; i++) {
      hub.clock.t += 20;
      if (sock?.readyState !== 1) {
        sock = new FakeSocket();
        ingest.accept(sock as unknown as WebSocket, req);
        node = undefined;
      }
      let frame: Record<string, unknown>;
      let kind: 'valid' | 'mutated' | 'damaged';
      const roll = r();
      if (!node) {
        const id = pick(r, NODE_IDS);
        frame = validHello(r, id, pick(r, RUN_IDS));
      } else if (r() < 0.8) {
        frame = validSample(r, ++seq, hub.clock.t - int(r, 60_000));
      } else frame = validEvent(r, hub.clock.t - int(r, 60_000));
      let raw: Buffer;
      let binary = false;
      if (roll < 0.55) {
        kind = 'valid';
        raw = Buffer.from(JSON.stringify(frame));
      } else if (roll < 0.85) {
        kind = 'mutated';
        raw = Buffer.from(JSON.stringify(mutate(r, frame)) ?? 'undefined');
      } else {
        kind = 'damaged';
        raw = damage(r, JSON.stringify(frame));
        binary = r() < 0.05;
      }
      stats[kind]++;
      // Generated-valid frames are valid by construction (and must be taken); the rest are judged by the
      // protocol's decoder.
      const decoded = kind === 'valid' ? undefined : decodeAgentFrame(raw);
      const invalid = decoded !== undefined && (!decoded.ok || binary);
      // Only frames that may be refused need the before-picture (valid ones mostly are applied).
      const before = fingerprint(node);
      const eventsBefore = node ? agentEvents(node) : undefined;
      const rejectedBefore = rejectedTotal();
      const start = performance.now();
      sock.emit('message', raw, binary);
      const ms = performance.now() - start;
      stats.maxMs = Math.max(stats.maxMs, ms);
      if (ms > MAX_FRAME_MS) throw new Error(`frame ${i} took ${ms.toFixed(0)} ms: ${raw.subarray(0, 200)}`);
      if (sock.closedWith === 1011) stats.internal++;
      check(sock.closedWith !== 1011, () => `frame ${i} made the handler fail: ${raw.subarray(0, 300)}`);
      const refused = sock.readyState !== 1;
      const rejected = rejectedTotal() > rejectedBefore;
      if (refused) stats.refused++;
      if (kind === 'valid') {
        check(!refused, () => `valid frame ${i} was refused (${sock!.closedWith}): ${raw.subarray(0, 300)}`);
      }
      if (invalid) {
        // Invalid by the protocol: refused, and nothing changed.
        check(refused, () => `invalid frame ${i} was not refused: ${raw.subarray(0, 300)}`);
        check(
          fingerprint(node) === before,
          () => `invalid frame ${i} changed state: ${raw.subarray(0, 300)}`,
        );
        check(noneAdded(eventsBefore!, agentEvents(node)), () => `invalid frame ${i} added an event`);
      } else if (refused || rejected) {
        check(
          fingerprint(node) === before,
          () => `refused frame ${i} changed state: ${raw.subarray(0, 300)}`,
        );
        check(noneAdded(eventsBefore!, agentEvents(node)), () => `refused frame ${i} added an event`);
      }
      if (!refused && !node) {
        const d = decoded ?? decodeAgentFrame(raw);
        if (d.ok && d.frame.type === 'hello') {
          node = d.frame.nodeId;
          seq = fleet.nodes.get(node)!.lastSeq;
        }
      }
    }
    expect(stats.internal).toBe(0);
    // The generator must exercise both sides.
    expect(applied).toBeGreaterThan(AGENT_FRAMES / 20);
    expect(stats.refused).toBeGreaterThan(AGENT_FRAMES / 10);

    // Everything stored went through a valid frame, and is timestamped within the window.
    fleet.flush(true);
    const db = hub.app.store.db;
    const hostSamples = (
      db.prepare('SELECT coalesce(sum(samples), 0) AS n FROM host_1m').get() as { n: number }
    ).n;
    expect(hostSamples).toBe(applied);
    // Stored figures stay finite and sane (no 1e300 from a frame the hub should have refused).
    const host = db
      .prepare('SELECT max(cpu_sum / samples) AS cpu, max(lag_sum / samples) AS lag FROM host_1m')
      .get() as { cpu: number; lag: number };
    expect(host.cpu).toBeLessThanOrEqual(100_000);
    expect(host.lag).toBeLessThanOrEqual(86_400_000);
    const sums = db
      .prepare(
        'SELECT max(abs(records)) AS a, max(abs(bytes)) AS b, max(abs(errors)) AS c, max(occ_max) AS d FROM rollup_1m',
      )
      .get() as Record<string, number>;
    for (const v of Object.values(sums)) expect(Number.isFinite(v) && v < 1e20).toBe(true);
    for (const t of ['rollup_1m', 'host_1m']) {
      const range = db.prepare(`SELECT min(ts) AS lo, max(ts) AS hi FROM ${t}`).get() as {
        lo: number;
        hi: number;
      };
      expect(range.lo).toBeGreaterThanOrEqual(Math.floor((t0 - 86_400_000) / 60_000) * 60_000);
      expect(range.hi).toBeLessThanOrEqual(hub.clock.t + 5000);
    }

    // ── live (browser) frames
    const user = { name: 'admin', role: 'admin' as const };
    const views = ['overview', 'alerts', 'node:n0', 'node:rack1-h3', 'link:n0~l0', 'node:nope', 'link:a~b'];
    const liveStats = { refused: 0, maxMs: 0 };
    let ls: FakeSocket | undefined;
    for (let i = 0; i < LIVE_FRAMES; i++) {
      // Bursts now and then, so the rate limit is exercised too.
      hub.clock.t += r() < 0.9 ? 150 : 0;
      if (ls?.readyState !== 1) {
        ls = new FakeSocket();
        live.attach(ls as unknown as WebSocket, user);
      }
      const client = [...live.clients].find((c) => c.ws === (ls as unknown as WebSocket))!;
      const roll = r();
      const op = pick(r, ['subscribe', 'subscribe', 'unsubscribe', 'ping'] as const);
      const frame: Record<string, unknown> =
        op === 'ping'
          ? { type: 'ping', ...(r() < 0.5 ? { id: int(r, 1e6) } : {}) }
          : { type: op, view: pick(r, views) };
      const raw =
        roll < 0.6
          ? Buffer.from(JSON.stringify(frame))
          : roll < 0.85
            ? Buffer.from(JSON.stringify(mutate(r, frame)) ?? 'null')
            : damage(r, JSON.stringify(frame));
      const subsBefore = [...client.subs.keys()].join('|');
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        parsed = undefined;
      }
      const valid = LiveClientFrameSchema.safeParse(parsed).success;
      const start = performance.now();
      ls.emit('message', raw, false);
      const ms = performance.now() - start;
      liveStats.maxMs = Math.max(liveStats.maxMs, ms);
      if (ms > MAX_FRAME_MS) throw new Error(`live frame ${i} took ${ms.toFixed(0)} ms`);
      check(ls.closedWith !== 1011, () => `live frame ${i} made the handler fail: ${raw.subarray(0, 200)}`);
      if (ls.readyState !== 1) liveStats.refused++;
      if (!valid) {
        check(ls.readyState !== 1, () => `invalid live frame ${i} was not refused: ${raw.subarray(0, 200)}`);
        check([...client.subs.keys()].join('|') === subsBefore, () => `invalid live frame ${i} changed subs`);
      }
      check(client.subs.size <= MAX_LIVE_SUBSCRIPTIONS, () => `live frame ${i}: ${client.subs.size} subs`);
    }
    expect(liveStats.refused).toBeGreaterThan(LIVE_FRAMES / 10);
    // JSON keys such as "__proto__" reached no prototype.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The canonical decoder agrees the generator makes valid agent frames at all.
    expect(decodeFrame(AgentFrameSchema, JSON.stringify(validHello(r, 'n0', 'run-a'))).ok).toBe(true);
    console.log(
      `fuzz seed ${SEED}: ${AGENT_FRAMES} agent frames (${stats.valid} valid, ${stats.mutated} mutated, ${stats.damaged} damaged; ${stats.refused} refused, ${applied} samples stored; slowest ${stats.maxMs.toFixed(1)} ms), ${LIVE_FRAMES} live frames (${liveStats.refused} refused; slowest ${liveStats.maxMs.toFixed(1)} ms)`,
    );
  });
});

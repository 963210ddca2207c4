/**
 * `pnpm --filter @rdmaq/agent bench`: the agent's targets, each printed beside its baseline from the same run.
 *
 *   1. Stats collection cost: p50 queue latency of busy shm links with the agent sampling (every 1 s, and every
 *      100 ms as a stress case) vs not sampling, in interleaved phases (off, 1 s, 100 ms, off, …) so drift on
 *      this noisy VM hits every case alike. Target: ≤ 5 % added to p50.
 *   2. An agent with 8 busy links (4 outgoing with traffic, 4 incoming from a peer agent process): RSS
 *      (target < 150 MB; baseline: the same process before any link) and the CPU time its sampling
 *      takes at the default 1 s interval (target < 2 % of a core).
 *
 * The measured agent runs in this process (so sampling can be switched on and off between phases); its peer
 * is a real `rdmaq-agent` child process. Nothing is simulated: the latencies are rdma-core's native queue
 * latency histograms (send timestamp → delivery, CLOCK_MONOTONIC on one host).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Histogram, PROTOCOL_VERSION, type SparseBuckets } from '@rdmaq/shared';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { type Agent, buildAgent } from '../app.js';
import { loadConfig } from '../config.js';
import { sparseDelta } from '../links.js';

const LINKS_EACH_WAY = 4;
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const SIZE = Number(process.env.BENCH_SIZE ?? 64);
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const IDLE = process.env.BENCH_IDLE ?? 'event';
/** Where the measured agent's links run: worker (the default of the agent) or main. */
const DATA_PATH = process.env.BENCH_DATA_PATH ?? 'worker';
const SECRET = 'bench-secret-0123456789abcdef';
const TOKEN = 'bench-token-0123456789';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A hub stand-in that welcomes and acks, so the agent pays the full cost of streaming its samples. */
async function startHub(): Promise<{ url: string; samples: () => number; close: () => Promise<void> }> {
  const server = createServer();
  const wss = new WebSocketServer({ server, path: '/ws/agent' });
  let samples = 0;
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as { type: string; seq?: number };
      if (f.type === 'hello')
        ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, hubVersion: 'bench', lastSeq: 0 }));
      if (f.type === 'sample') {
        samples++;
        ws.send(JSON.stringify({ type: 'ack', v: PROTOCOL_VERSION, seq: f.seq }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/ws/agent`,
    samples: () => samples,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The incoming links, listed so the listener accepts them with IDLE (unknown links get rdma-core's default). */
function expectFrom(peer: string, to: string): Array<Record<string, unknown>> {
  return Array.from({ length: LINKS_EACH_WAY }, (_, i) => ({
    id: `${peer}->${to}.${i}`,
    peer,
    transport: 'shm',
  }));
}

function linksTo(peer: string, from: string, dir: string): Array<Record<string, unknown>> {
  return Array.from({ length: LINKS_EACH_WAY }, (_, i) => ({
    id: `${from}->${peer}.${i}`,
    peer,
    address: join(dir, `${peer}.sock`),
    transport: 'shm',
    traffic: { rate: RATE, size: SIZE },
  }));
}

/** RSS split as the kernel counts it: anonymous (heap), file-backed (code), shared memory (the rings). */
function rssParts(): string {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    const heap = process.memoryUsage();
    return `anon ${mb(kb('RssAnon') * 1024)} (V8 heap ${mb(heap.heapUsed)}), file ${mb(kb('RssFile') * 1024)}, shmem ${mb(kb('RssShmem') * 1024)}`;
  } catch {
    return 'breakdown unavailable';
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function us(ns: number): string {
  return `${(ns / 1000).toFixed(2)} µs`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join('/dev/shm', 'rdmaq-agent-bench-'));
  const hub = await startHub();
  let peer: ChildProcess | undefined;
  let agent: Agent | undefined;
  try {
    global.gc?.();
    const rssBaseline = process.memoryUsage.rss();

    // The peer: a real agent process sending on 4 links to us and receiving our 4.
    const peerCfg = join(dir, 'peer.yaml');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      peerCfg,
      JSON.stringify({
        nodeId: 'bench-peer',
        secret: SECRET,
        http: { host: '127.0.0.1', port: 0 },
        listen: {
          socket: join(dir, 'bench-peer.sock'),
          shmDir: dir,
          fabric: false,
          idle: IDLE,
          expect: expectFrom('bench-agent', 'bench-peer'),
        },
        log: { level: 'warn' },
        links: linksTo('bench-agent', 'bench-peer', dir),
      }),
    );
    const child = spawn(
      process.execPath,
      [new URL('../bin.js', import.meta.url).pathname, '--config', peerCfg],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    peer = child;
    // The measured agent, in this process.
    const cfgFile = join(dir, 'agent.yaml');
    writeFileSync(
      cfgFile,
      JSON.stringify({
        nodeId: 'bench-agent',
        secret: SECRET,
        hub: { url: hub.url, token: TOKEN },
        http: { host: '127.0.0.1', port: 0 },
        listen: {
          socket: join(dir, 'bench-agent.sock'),
          shmDir: dir,
          fabric: false,
          idle: IDLE,
          expect: expectFrom('bench-peer', 'bench-agent'),
        },
        sampling: { intervalMs: 1000 },
        dataPath: DATA_PATH,
        log: { level: 'warn' },
        links: linksTo('bench-peer', 'bench-agent', dir),
      }),
    );
    const config = loadConfig({ file: cfgFile, env: {} });
    agent = await buildAgent(config, { logger: pino({ level: 'warn' }) });
    await agent.start();
    const a = agent;
    const deadline = Date.now() + 30_000;
    while (a.links.views().filter((l) => l.state === 'up').length < 2 * LINKS_EACH_WAY) {
      if (Date.now() > deadline) throw new Error(`links did not come up: ${JSON.stringify(a.links.views())}`);
      await sleep(100);
    }
    const rxIds = a.links
      .views()
      .filter((l) => l.direction === 'rx')
      .map((l) => l.id);
    await sleep(2000); // warm-up
    if (process.env.BENCH_PROFILE) {
      a.pauseSampling();
      for (let i = 0; i < 10; i++) {
        await sleep(500);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const ls = (await a.links.sample()).links;
        const t1 = performance.now();
        const c1 = process.cpuUsage(c0);
        const t2 = performance.now();
        const s = await a.sampleNow();
        const t3 = performance.now();
        const buckets = ls.reduce((n, l) => n + l.latency.queue.length + l.latency.rtt.length, 0);
        process.stdout.write(
          `links.sample ${(t1 - t0).toFixed(2)} ms wall, ${((c1.user + c1.system) / 1000).toFixed(2)} ms cpu, ${buckets} delta buckets; sampleNow ${(t3 - t2).toFixed(2)} ms, json ${JSON.stringify(s).length} B\n`,
        );
      }
      a.resumeSampling(1000);
    }

    // 1. Latency with and without sampling, interleaved.
    const readQueue = (): Promise<SparseBuckets[]> =>
      Promise.all(rxIds.map(async (id) => (await a.links.rawStats(id))?.latency.queue ?? []));
    const cases = [
      {
        name: 'no sampling',
        interval: null as number | null,
        hist: new Histogram(),
        perRound: [] as number[],
      },
      { name: 'sampling every 1 s', interval: 1000, hist: new Histogram(), perRound: [] as number[] },
      { name: 'sampling every 100 ms', interval: 100, hist: new Histogram(), perRound: [] as number[] },
    ];
    let cpuPhaseMs = 0;
    let cpuPhaseBusy = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) {
        if (c.interval === null) a.pauseSampling();
        else a.resumeSampling(c.interval);
        await sleep(300); // let the switch settle
        const before = await readQueue();
        const busy0 = a.samplingCost().busyMs;
        const t0 = performance.now();
        await sleep(PHASE_MS);
        const after = await readQueue();
        if (c.interval === 1000) {
          cpuPhaseMs += performance.now() - t0;
          cpuPhaseBusy += a.samplingCost().busyMs - busy0;
        }
        const phase = new Histogram();
        after.forEach((cum, i) => {
          phase.addSparse(sparseDelta(cum, before[i]!));
        });
        c.hist.merge(phase);
        c.perRound.push(phase.quantile(0.5));
      }
    }
    a.resumeSampling(1000);

    // 2. Memory and sampling CPU with 8 busy links at the default interval.
    await sleep(3000);
    global.gc?.();
    const rss = process.memoryUsage.rss();
    const parts = rssParts();
    const samplingPct = (cpuPhaseBusy / cpuPhaseMs) * 100;
    let records = 0;
    for (const id of rxIds) records += (await a.links.rawStats(id))?.counters.records ?? 0;

    const base = cases[0]!.hist.quantile(0.5);
    const rows: Array<[string, string, string]> = [];
    for (const c of cases) {
      const p50 = c.hist.quantile(0.5);
      // Median over rounds of (this case's p50 / the baseline's p50 in the same round): robust to drift.
      const ratios = c.perRound.map((v, r) => v / cases[0]!.perRound[r]!).sort((x, y) => x - y);
      const rel = (ratios[Math.floor(ratios.length / 2)]! - 1) * 100;
      rows.push([
        `p50 queue latency, ${c.name}`,
        `${us(p50)} (p99 ${us(c.hist.quantile(0.99))}, n=${c.hist.count})`,
        c.interval === null
          ? 'baseline'
          : `${rel >= 0 ? '+' : ''}${rel.toFixed(1)} % vs baseline (target ≤ +5 % at 1 s)`,
      ]);
    }
    rows.push([
      `sampling CPU, ${2 * LINKS_EACH_WAY} busy links, 1 s interval`,
      `${samplingPct.toFixed(3)} % of a core (${((cpuPhaseBusy / cpuPhaseMs) * 1000).toFixed(2)} ms CPU per s)`,
      'target < 2 %',
    ]);
    rows.push([
      `RSS with ${2 * LINKS_EACH_WAY} busy links`,
      mb(rss),
      `target < 150 MB; same process before any link: ${mb(rssBaseline)}; now ${parts}`,
    ]);
    rows.push([
      'records delivered on the incoming links',
      String(records),
      `${LINKS_EACH_WAY} × ${RATE}/s × ${SIZE} B`,
    ]);

    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    process.stdout.write(
      `\nrdmaq-agent bench (${new Date().toISOString()}, shm, idle ${IDLE}, data path ${DATA_PATH}, ${ROUNDS} rounds × ${PHASE_MS} ms per case)\n`,
    );
    for (const [k, v, b] of rows) process.stdout.write(`  ${k.padEnd(w0)}  ${v.padEnd(w1)}  ${b}\n`);
    const report = {
      p50NoSamplingNs: base,
      p50Sampling1sNs: cases[1]!.hist.quantile(0.5),
      p50Sampling100msNs: cases[2]!.hist.quantile(0.5),
      samplingCpuPercent: samplingPct,
      rssBytes: rss,
      rssBaselineBytes: rssBaseline,
      hubSamples: hub.samples(),
    };
    mkdirSync('.reports', { recursive: true });
    writeFileSync('.reports/bench.json', `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await agent?.stop('bench over').catch(() => {});
    if (peer && peer.exitCode === null) {
      peer.kill('SIGTERM');
      await new Promise((r) => peer!.once('exit', r));
    }
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);

/**
 * The data path on its own thread (`dataPath: worker`). Two agents in this process, linked both ways over
 * shm with traffic; the test blocks the main thread — 500 ms busy loops, like a long GC or a slow request —
 * and checks that the block shows in the main thread's event-loop lag (sample and /metrics) but in no
 * record's queue latency. Control: with agent A's links on the main loop (`main`), the same blocks show up
 * in A's queue latency. Then: a crash of the data-path worker is logged, its links go down and come back
 * with a new worker, counters do not go back; stop() closes the links and ends the worker.
 *
 * Needs the built worker script (pnpm --filter @rdmaq/agent build): vitest runs src/, a Worker cannot.
 */
import { join } from 'node:path';
import { bucketLow, type Sample } from '@rdmaq/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { type Agent, buildAgent } from '../src/app.js';
import type { DataPathMode } from '../src/data-path.js';
import type { LinkThread } from '../src/link-thread.js';
import { captureLogger, configFrom, type LogLine, SECRET } from './helpers.js';
import { shmScratch } from './procs.js';

const INTERVAL_MS = 200;
const RATE = 500;
const BLOCK_MS = 500;
const BLOCKS = 3;
/** Queue latency at or above this is "the block showed up". */
const SLOW_NS = 100e6;

interface Node {
  name: string;
  agent: Agent;
  lines: LogLine[];
  samples: Sample[];
  /** rdmaq_agent_event_loop_lag_seconds and the data path's, read from /metrics text after each sample. */
  promLag: number[];
  promDataLag: number[];
}

function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function startNode(name: string, peer: string, dir: string, dataPath: DataPathMode): Promise<Node> {
  const { logger, lines } = captureLogger('info');
  const config = configFrom({
    nodeId: name,
    secret: SECRET,
    http: { host: '127.0.0.1', port: 0 },
    listen: {
      socket: join(dir, `${name}.sock`),
      shmDir: dir,
      fabric: false,
      expect: [{ id: `${peer}->${name}`, peer, transport: 'shm' }],
    },
    sampling: { intervalMs: INTERVAL_MS },
    probe: { intervalMs: 200, timeoutMs: 2000 },
    reconnect: { initialMs: 50, maxMs: 500 },
    dataPath,
    links: [
      { peer, address: join(dir, `${peer}.sock`), transport: 'shm', traffic: { rate: RATE, size: 64 } },
    ],
  });
  const agent = await buildAgent(config, { logger, defaultMetrics: false });
  const node: Node = { name, agent, lines, samples: [], promLag: [], promDataLag: [] };
  agent.onSample((s) => {
    node.samples.push(s);
    void agent.metrics.text().then((t) => {
      node.promLag.push(metricValue(t, 'rdmaq_agent_event_loop_lag_seconds') ?? Number.NaN);
      const d = metricValue(t, 'rdmaq_agent_data_path_event_loop_lag_seconds');
      if (d !== undefined) node.promDataLag.push(d);
    });
  });
  await agent.start();
  return node;
}

function nextSample(agent: Agent): Promise<Sample> {
  return new Promise((resolve) => {
    const off = agent.onSample((s) => {
      off();
      resolve(s);
    });
  });
}

/** Synchronous work on this (the agents' main) thread. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  let spins = 0;
  while (performance.now() < end) spins++;
  expect(spins).toBeGreaterThan(0);
}

/** Records delivered on an incoming link since sample index `from`: in all, and with queue latency ≥ SLOW_NS. */
function queueLatency(samples: Sample[], link: string, from: number) {
  let total = 0;
  let slow = 0;
  let maxNs = 0;
  for (const s of samples.slice(from)) {
    for (const [i, n] of s.links.find((l) => l.id === link)?.latency.queue ?? []) {
      total += n;
      if (bucketLow(i) >= SLOW_NS) slow += n;
      maxNs = Math.max(maxNs, bucketLow(i));
    }
  }
  return { total, slow, maxMs: maxNs / 1e6 };
}

interface BlockRun {
  fromA: number;
  fromB: number;
  blockedMs: number[];
}

/** Waits for traffic on both links, then blocks the main thread BLOCKS times, each right after a sample of A. */
async function blockMainThread(a: Node, b: Node): Promise<BlockRun> {
  await waitFor('both agents healthy', () => a.agent.health().ok && b.agent.health().ok, 30_000);
  await waitFor(
    'records on both incoming links',
    () =>
      (a.samples.at(-1)?.links.find((l) => l.id === 'b->a')?.counters.records ?? 0) > 100 &&
      (b.samples.at(-1)?.links.find((l) => l.id === 'a->b')?.counters.records ?? 0) > 100,
    20_000,
  );
  // Connection set-up is behind us: count from the next samples on.
  await nextSample(a.agent);
  const run: BlockRun = { fromA: a.samples.length, fromB: b.samples.length, blockedMs: [] };
  for (let i = 0; i < BLOCKS; i++) {
    await nextSample(a.agent);
    const t0 = performance.now();
    busy(BLOCK_MS);
    run.blockedMs.push(performance.now() - t0);
    await nextSample(a.agent);
  }
  // Two more samples on each side: whatever was delivered during the last block is in them.
  for (let i = 0; i < 2; i++) await Promise.all([nextSample(a.agent), nextSample(b.agent)]);
  return run;
}

describe.sequential('data path on a worker thread', () => {
  const scratch = shmScratch('data-path');
  const nodes: Node[] = [];
  afterAll(async () => {
    for (const n of nodes.reverse()) await n.agent.stop('test over').catch(() => {});
    scratch.cleanup();
  });

  let a: Node;
  let b: Node;

  it('a blocked main thread shows in its event-loop lag, not in queue latency', async () => {
    b = await startNode('b', 'a', scratch.dir, 'worker');
    nodes.push(b);
    a = await startNode('a', 'b', scratch.dir, 'worker');
    nodes.push(a);
    expect(a.agent.links.mode).toBe('worker');

    const run = await blockMainThread(a, b);
    const intoA = queueLatency(a.samples, 'b->a', run.fromA);
    const intoB = queueLatency(b.samples, 'a->b', run.fromB);
    const mainLagMs = Math.max(...a.samples.slice(run.fromA).map((s) => s.host.eventLoopLagMs));
    const promLag = Math.max(...a.promLag.slice(run.fromA));
    const dataLag = Math.max(...a.promDataLag.slice(run.fromA));
    process.stdout.write(
      `[worker] blocks ${run.blockedMs.map((m) => m.toFixed(0)).join('/')} ms; main lag ${mainLagMs} ms (metric ${promLag} s), data-path lag ${dataLag} s; b->a ${intoA.total} records, ${intoA.slow} ≥ 100 ms (max bucket ${intoA.maxMs.toFixed(3)} ms); a->b ${intoB.total} records, ${intoB.slow} ≥ 100 ms (max bucket ${intoB.maxMs.toFixed(3)} ms)\n`,
    );
    // The blocks happened and the main thread's lag says so, in the sample and in /metrics (seconds).
    expect(run.blockedMs.every((m) => m >= BLOCK_MS)).toBe(true);
    expect(mainLagMs).toBeGreaterThanOrEqual(400);
    expect(promLag).toBeGreaterThanOrEqual(0.4);
    // Records kept flowing both ways through the blocks (~RATE/s; the window is ≥ 2.1 s)…
    expect(intoA.total).toBeGreaterThan(RATE * 1.5);
    expect(intoB.total).toBeGreaterThan(RATE * 1.5);
    // …and none of them waited for the main thread.
    expect(intoA.slow).toBe(0);
    expect(intoB.slow).toBe(0);
    // The data path's own loop was not blocked (its lag is a separate metric).
    expect(a.promDataLag.length).toBeGreaterThan(0);
    expect(dataLag).toBeLessThan(0.4);
    // Its log lines come out of the main thread's logger: one stream.
    expect(a.lines.some((l) => l.component === 'links' && l.msg === 'listening for incoming links')).toBe(
      true,
    );
    expect(a.lines.some((l) => l.component === 'links' && l.msg === 'link connected')).toBe(true);
  }, 90_000);

  it('a crash of the worker is logged, its links go down, and a new worker brings them back', async () => {
    const links = a.agent.links as LinkThread;
    const events: string[] = [];
    links.on('state', (ev: { link: string; state: string }) => events.push(`${ev.link} ${ev.state}`));
    const before = a.samples.at(-1)!.links.find((l) => l.id === 'b->a')!.counters.records;
    const seqBefore = a.samples.at(-1)!.seq;
    const thread0 = links.threadId;
    await links.crashForTest('injected by the test');
    const crashLine = await waitFor('the crash to be logged', () =>
      a.lines.find((l) => l.level === 50 && l.msg.includes('data-path worker crashed')),
    );
    expect(crashLine.msg).toContain('injected by the test');
    expect(crashLine.msg).toContain('starting a new one');
    await waitFor('both links of a to be reported down', () =>
      ['a->b down', 'b->a down'].every((e) => events.includes(e)),
    );
    await waitFor('a new worker', () => links.restarts === 1 && a.agent.health().ok, 30_000);
    expect(links.threadId).not.toBe(thread0);
    // Traffic again, counters carried over the restart (never down within a run), sampling never stopped.
    await waitFor('records on b->a again', () => {
      const l = a.samples.at(-1)?.links.find((x) => x.id === 'b->a');
      return l && l.state === 'up' && l.counters.records > before + 100;
    });
    const after = a.samples.filter((s) => s.seq > seqBefore);
    let prev = before;
    for (const s of after) {
      const n = s.links.find((l) => l.id === 'b->a')!.counters.records;
      expect(n).toBeGreaterThanOrEqual(prev);
      prev = n;
    }
    expect(a.samples.map((s) => s.seq)).toEqual(a.samples.map((_, i) => i + 1));
    const text = await a.agent.metrics.text();
    expect(metricValue(text, 'rdmaq_agent_data_path_restarts_total')).toBe(1);
    expect(a.lines.some((l) => l.msg.startsWith('data-path worker restarted'))).toBe(true);
  }, 60_000);

  it('stop() drains, sends a final sample with the links down, and ends the worker', async () => {
    const links = a.agent.links as LinkThread;
    await a.agent.stop('test over');
    const last = a.samples.at(-1)!;
    expect(last.links.map((l) => [l.id, l.state, l.reason])).toEqual([
      ['b->a', 'down', 'test over'],
      ['a->b', 'down', 'test over'],
    ]);
    expect(links.threadId).toBeUndefined();
    // Errors logged: the crash above, nothing else.
    expect(a.lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      expect.stringContaining('data-path worker crashed'),
    ]);
  }, 30_000);

  it('control: with the links on the main loop, the same blocks show up in queue latency', async () => {
    await b.agent.stop('next case');
    const dir = join(scratch.dir, 'control');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    const b2 = await startNode('b', 'a', dir, 'worker');
    nodes.push(b2);
    const a2 = await startNode('a', 'b', dir, 'main');
    nodes.push(a2);
    expect(a2.agent.links.mode).toBe('main');
    const run = await blockMainThread(a2, b2);
    const intoA = queueLatency(a2.samples, 'b->a', run.fromA);
    const mainLagMs = Math.max(...a2.samples.slice(run.fromA).map((s) => s.host.eventLoopLagMs));
    process.stdout.write(
      `[main]   blocks ${run.blockedMs.map((m) => m.toFixed(0)).join('/')} ms; main lag ${mainLagMs} ms; b->a ${intoA.total} records, ${intoA.slow} ≥ 100 ms (max bucket ${intoA.maxMs.toFixed(1)} ms)\n`,
    );
    expect(mainLagMs).toBeGreaterThanOrEqual(400);
    // b's worker kept sending during each block; a's consumer, on the blocked loop, took them after it.
    expect(intoA.slow).toBeGreaterThan(0);
    expect(intoA.maxMs).toBeGreaterThanOrEqual(300);
    expect(a2.promDataLag).toEqual([]); // no data-path thread, no such metric
  }, 90_000);
});

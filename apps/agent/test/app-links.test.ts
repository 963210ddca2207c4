/**
 * Applications' links: two application processes (rdma-core only, no agent in their link) exchange
 * 1,000,000 records over shm; the agent's /metrics and the samples the hub receives show both ends with the
 * counts the applications counted, labelled with the app. kill -9 of one application: the next sample (one
 * sample period, driven explicitly with sampleNow) reports its link gone and /metrics has no series left for
 * it; its file is swept. A garbage file is logged with its name and reason and skipped; the rest is served.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processStartTime } from '@rdmaq/rdma-core';
import type { LinkSample } from '@rdmaq/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { type Agent, buildAgent } from '../src/app.js';
import { captureLogger, configFrom, SECRET, TestHub, TOKEN, tempDir } from './helpers.js';

const APP = fileURLToPath(
  new URL('../../../packages/rdma-core/test/fixtures/stats-app.mjs', import.meta.url),
);
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function startApp(dir: string, cfg: Record<string, unknown>) {
  const proc: ChildProcess = spawn(process.execPath, [APP, JSON.stringify(cfg)], {
    env: { ...process.env, RDMAQ_STATS_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => proc.kill('SIGKILL'));
  const events: Array<Record<string, unknown>> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => events.push(JSON.parse(l)));
  const when = (ev: string) =>
    waitFor(`app ${cfg.app} ${ev}`, () => events.find((e) => e.ev === ev), 120_000);
  return { proc, when };
}

describe("applications' links", () => {
  it('1,000,000 records between two apps: /metrics and the hub show the apps’ counts; kill -9 → gone, swept; garbage skipped', async () => {
    const { dir, cleanup } = tempDir('apps');
    cleanups.push(cleanup);
    const count = 1_000_000;
    const socketPath = join(dir, 'l.sock');
    const rx = startApp(dir, {
      role: 'receiver',
      transport: 'shm',
      socketPath,
      linkId: 'grad>0',
      count,
      app: 'trainer-rx',
    });
    await rx.when('ready');
    const tx = startApp(dir, {
      role: 'sender',
      transport: 'shm',
      socketPath,
      linkId: 'grad>0',
      count,
      app: 'trainer-tx',
    });
    const got = (await rx.when('done')) as { records: number; bytes: number };
    const sent = (await tx.when('done')) as { records: number; bytes: number };
    expect(got.records).toBe(count);
    expect(sent.records).toBe(count);

    const hub = new TestHub();
    await hub.start();
    cleanups.push(() => hub.stop());
    const { logger, lines } = captureLogger('info');
    const config = configFrom({
      nodeId: 'apps-test',
      secret: SECRET,
      hub: { url: hub.url, token: TOKEN },
      http: { host: '127.0.0.1', port: 0 },
      listen: { enabled: false },
      dataPath: 'main',
      apps: { enabled: true, dir },
    });
    const agent: Agent = await buildAgent(config, { logger, defaultMetrics: false });
    cleanups.push(() => agent.stop());
    await agent.start();
    agent.pauseSampling(); // samples are taken explicitly below: one sampleNow() = one sample period

    const find = (links: LinkSample[], id: string) => links.find((l) => l.id === id);
    const rxId = 'trainer-rx/grad>0:rx';
    const txId = 'trainer-tx/grad>0:tx';
    let s = await waitFor(
      `a sample with all ${count} records of ${rxId}`,
      async () => {
        const x = await agent.sampleNow();
        return find(x.links, rxId)?.counters.records === count ? x : undefined;
      },
      { timeoutMs: 10_000, everyMs: 50 },
    );
    const r = find(s.links, rxId)!;
    const t = find(s.links, txId)!;
    expect(r).toMatchObject({
      origin: 'app',
      app: 'trainer-rx',
      direction: 'rx',
      transport: 'shm',
      peer: 'apps-test',
      state: 'up',
    });
    expect(r.counters.records).toBe(got.records);
    expect(r.counters.bytes).toBe(got.bytes);
    expect(t.counters.records).toBe(sent.records);
    expect(t.counters.bytes).toBe(sent.bytes);
    const metrics = await agent.metrics.text();
    expect(metrics).toContain(
      `rdmaq_link_records_total{link="${rxId}",peer="apps-test",transport="shm",provider="shm",app="trainer-rx"} ${count}`,
    );
    expect(metrics).not.toMatch(/pid=/);
    // The hub got the same figures (and the deltas of the queue histogram add up to every record).
    await waitFor('hub has the sample', () => hub.samples.find((x) => x.seq === s.seq));
    const hubRx = hub.samples.flatMap((x) => x.links.filter((l) => l.id === rxId));
    expect(hubRx.at(-1)?.counters.records).toBe(count);
    expect(hubRx.reduce((a, l) => a + l.latency.queue.reduce((b, [, n]) => b + n, 0), 0)).toBe(count);

    // Garbage next to it, owned by a live process: named in the log with the reason, skipped.
    const owner = spawn('sleep', ['60']);
    cleanups.push(() => owner.kill('SIGKILL'));
    await once(owner, 'spawn');
    const garbage = join(dir, `rdmaq-stats-${owner.pid}-${processStartTime(owner.pid!)}`);
    writeFileSync(garbage, Buffer.alloc(50_000, 0x5a));
    // kill -9 of the receiving application.
    const rxFile = join(dir, `rdmaq-stats-${rx.proc.pid}-${processStartTime(rx.proc.pid!)}`);
    expect(existsSync(rxFile)).toBe(true);
    rx.proc.kill('SIGKILL');
    await new Promise<void>((res) => rx.proc.once('exit', () => res()));
    s = await agent.sampleNow();
    expect(find(s.links, rxId)).toMatchObject({ state: 'down', gone: true });
    expect(find(s.links, txId)?.counters.records).toBe(count);
    expect(existsSync(rxFile)).toBe(false);
    const warn = lines.find((l) => String(l.msg).includes(garbage));
    expect(warn?.msg).toMatch(/bad magic/);
    const after = await agent.metrics.text();
    expect(after).not.toContain(rxId);
    expect(after).toContain(txId);
    // The next sample no longer mentions it at all; the garbage is not logged again.
    s = await agent.sampleNow();
    expect(find(s.links, rxId)).toBeUndefined();
    expect(lines.filter((l) => String(l.msg).includes(garbage))).toHaveLength(1);
    const res = await fetch(`http://127.0.0.1:${(agent.server.address() as { port: number }).port}/metrics`);
    expect(res.status).toBe(200);
  }, 180_000);
});

/**
 * Browser cost of the overview at cluster scale — a benchmark, not a pass/fail speed test (it runs only with
 * RDMAQ_BENCH=1). The same page is measured with a small baseline cluster and then with a large one, in the
 * same run, and main-thread figures from Chrome's own counters (CDP Performance.getMetrics) are printed side
 * by side; the only assertions are that the page kept up (all nodes shown) and stayed responsive enough to
 * answer a trivial evaluate.
 *
 *   RDMAQ_BENCH=1 RDMAQ_BENCH_NODES=1000 pnpm --filter @rdmaq/test exec vitest run src/e2e-bench-ui.test.ts
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, launchBrowser, POLL } from './e2e-browser.js';
import { ADMIN, type Hub, login, rest, startHub } from './e2e-hub.js';
import { SimAgent } from './e2e-sim-agent.js';

const BIG = Number(process.env.RDMAQ_BENCH_NODES ?? 1000);
const BASE = 8;
const WINDOW_MS = 10_000;

interface Figures {
  nodes: number;
  linkEnds: number;
  busyPct: number;
  scriptPct: number;
  layoutMs: number;
  longTasks: number;
  longestMs: number;
  heapMB: number;
}

async function measure(page: Page, nodes: number): Promise<Figures> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const get = async () =>
    Object.fromEntries(
      (await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]),
    ) as Record<string, number>;
  const m0 = await get();
  const long = (await page.evaluate(
    `new Promise((resolve) => { const d = []; const o = new PerformanceObserver((l) => { for (const e of l.getEntries()) d.push(e.duration); }); o.observe({ type: 'longtask' }); setTimeout(() => { o.disconnect(); resolve(d); }, ${WINDOW_MS}); })`,
  )) as number[];
  const m1 = await get();
  await cdp.detach();
  const d = (k: string) => (m1[k] ?? 0) - (m0[k] ?? 0);
  return {
    nodes,
    linkEnds: nodes * 2,
    busyPct: +((100 * d('TaskDuration') * 1000) / WINDOW_MS).toFixed(1),
    scriptPct: +((100 * d('ScriptDuration') * 1000) / WINDOW_MS).toFixed(1),
    layoutMs: +(d('LayoutDuration') * 1000).toFixed(0),
    longTasks: long.length,
    longestMs: Math.round(Math.max(0, ...long)),
    heapMB: +((m1.JSHeapUsedSize ?? 0) / 1e6).toFixed(1),
  };
}

describe.skipIf(!process.env.RDMAQ_BENCH)('overview at scale (benchmark)', () => {
  let hub: Hub | undefined;
  const agents: SimAgent[] = [];
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;

  beforeAll(async () => {
    hub = await startHub();
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await browser?.close().catch(() => undefined);
    await hub?.stop();
  }, 120_000);

  it(`prints main-thread cost at ${BASE} and ${BIG} nodes`, { timeout: 600_000 }, async () => {
    const base = hub!.url;
    const cookie = await login(base, ADMIN.name, ADMIN.password);
    const { token } = await rest<{ token: string }>(base, cookie, 'POST', '/api/agent-tokens', {
      name: 'bench',
    });
    const ids = Array.from(
      { length: BIG },
      (_, i) => `rack${String(i % 16).padStart(2, '0')}-h${Math.floor(i / 16)}`,
    );
    const ws = `${base.replace(/^http/, 'ws')}/ws/agent`;
    const startAgents = async (from: number, to: number) => {
      const batch: SimAgent[] = [];
      for (let i = from; i < to; i++) {
        // each node sends to the next one among the first `to` (a ring that closes at `to`)
        const next = ids[(i + 1) % to]!;
        const prev = ids[(i + to - 1) % to]!;
        batch.push(
          new SimAgent(ws, token, ids[i]!, [
            { id: `${ids[i]}>${next}`, peer: next, direction: 'tx', recordsPerS: 20_000 },
            {
              id: `${prev}>${ids[i]}`,
              peer: prev,
              direction: 'rx',
              recordsPerS: 20_000,
              occupancy: (i % 10) / 10,
            },
          ]),
        );
      }
      for (let i = 0; i < batch.length; i += 50)
        await Promise.all(batch.slice(i, i + 50).map((a) => a.start()));
      agents.push(...batch);
    };
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    await page.goto(`${base}/login`);
    await page.getByLabel('User name').fill(ADMIN.name);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/`);

    await startAgents(0, BASE);
    await expect.poll(attr(page.getByTestId('topology-canvas'), 'data-nodes'), POLL).toBe(String(BASE));
    const small = await measure(page, BASE);

    await startAgents(BASE, BIG);
    await expect
      .poll(attr(page.getByTestId('topology-canvas'), 'data-nodes'), { timeout: 120_000, interval: 1000 })
      .toBe(String(BIG));
    const big = await measure(page, BIG);
    expect(await page.evaluate('1 + 1')).toBe(2);

    const rows = [small, big];
    console.log(
      `\noverview main-thread cost over ${WINDOW_MS / 1000} s (hub fan-out 1/s; the sim agents, hub and browser share this machine)\n` +
        'nodes  link ends  busy %  script %  layout ms  long tasks  longest ms  heap MB\n' +
        rows
          .map(
            (r) =>
              `${String(r.nodes).padStart(5)}  ${String(r.linkEnds).padStart(9)}  ${String(r.busyPct).padStart(6)}  ${String(r.scriptPct).padStart(8)}  ${String(r.layoutMs).padStart(9)}  ${String(r.longTasks).padStart(10)}  ${String(r.longestMs).padStart(10)}  ${String(r.heapMB).padStart(7)}`,
          )
          .join('\n') +
        `\nratio busy ${BIG}/${BASE} nodes: ${(big.busyPct / Math.max(0.1, small.busyPct)).toFixed(1)}x for ${(BIG / BASE).toFixed(0)}x the nodes\n`,
    );
  });
});

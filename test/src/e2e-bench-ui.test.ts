/**
 * Browser cost of the overview at cluster scale — a benchmark, not a pass/fail speed test (it runs only with
 * RDMAQ_BENCH=1). The same page is measured with a small baseline cluster (8 hosts) and then with a large one
 * (RDMAQ_BENCH_NODES, default 1000), each host with 8 link ends (4 sending, 4 receiving) and a `rack` label,
 * in the same run, and printed side by side:
 *
 * - first paint of the overview: navigation start → the topology's first canvas draw with data (the
 *   `rdmaq:topology-first-data-draw` performance mark it sets), median of RDMAQ_BENCH_RUNS (3) page loads;
 * - frames per second while panning the topology: page.mouse drags it for 5 s while a rAF loop counts the
 *   page's frames (and the topology's redraws), median of RDMAQ_BENCH_RUNS drags;
 * - main-thread figures from Chrome's own counters (CDP Performance.getMetrics) over 10 s at rest.
 *
 * The targets at 1,000 hosts × 8 links: first paint ≤ 2 s, ≥ 30 frames/s while panning.
 * RDMAQ_BENCH_SHOTS=<dir> also saves screenshots of the large overview (collapsed, one group expanded).
 *
 *   RDMAQ_BENCH=1 RDMAQ_BENCH_NODES=1000 pnpm --filter @rdmaq/test exec vitest run src/e2e-bench-ui.test.ts
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page, WebSocket } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, launchBrowser, POLL } from './e2e-browser.js';
import { ADMIN, type Hub, login, rest, startHub } from './e2e-hub.js';
import { SimAgent } from './e2e-sim-agent.js';

const BIG = Number(process.env.RDMAQ_BENCH_NODES ?? 1000);
const BASE = 8;
const LINKS = 8;
const RUNS = Math.max(1, Number(process.env.RDMAQ_BENCH_RUNS ?? 3));
const WINDOW_MS = 10_000;
const PAN_MS = 5_000;
const MARK = 'rdmaq:topology-first-data-draw';
const SHOTS = process.env.RDMAQ_BENCH_SHOTS;
const TARGET = { firstPaintMs: 2000, panFps: 30 };

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
    linkEnds: nodes * LINKS,
    busyPct: +((100 * d('TaskDuration') * 1000) / WINDOW_MS).toFixed(1),
    scriptPct: +((100 * d('ScriptDuration') * 1000) / WINDOW_MS).toFixed(1),
    layoutMs: +(d('LayoutDuration') * 1000).toFixed(0),
    longTasks: long.length,
    longestMs: Math.round(Math.max(0, ...long)),
    heapMB: +((m1.JSHeapUsedSize ?? 0) / 1e6).toFixed(1),
  };
}

interface Paint {
  ms: number;
  /** hosts on the canvas at that first draw */
  drawn: number;
  /** navigation start → the page's HTML arrived (the hub serving the page) */
  htmlMs: number;
  /** navigation start → the overview snapshot arrived over /ws/live (the page's scripts and the hub) */
  snapshotMs: number;
}

const PROFILE = process.env.RDMAQ_BENCH_PROFILE;

/** CPU profile of `fn` in the page (CDP Profiler), printed as the top functions by self time. */
async function profiled<T>(page: Page, label: string, fn: () => Promise<T>): Promise<T> {
  if (!PROFILE) return fn();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
  await cdp.send('Profiler.start');
  const out = await fn();
  const { profile } = await cdp.send('Profiler.stop');
  await cdp.detach();
  const self = new Map<string, number>();
  const dt = new Map<number, number>();
  for (const [i, id] of (profile.samples ?? []).entries())
    dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 0));
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const k = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}:${f.columnNumber}`;
    self.set(k, (self.get(k) ?? 0) + (dt.get(n.id) ?? 0) / 1000);
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30);
  console.log(
    `\nprofile ${label} (self ms):\n${top.map(([k, v]) => `${v.toFixed(0).padStart(7)}  ${k}`).join('\n')}`,
  );
  return out;
}

/** A fresh load of the overview: navigation start → the topology's first draw with data. */
async function firstPaint(page: Page, base: string): Promise<Paint> {
  // When the overview snapshot frame reaches the page (wall clock; this process and the browser share it).
  let snapshotAt = 0;
  const onSocket = (ws: WebSocket) =>
    ws.on('framereceived', (f) => {
      if (!snapshotAt && typeof f.payload === 'string' && f.payload.includes('"type":"snapshot"'))
        snapshotAt = Date.now();
    });
  page.on('websocket', onSocket);
  await page.goto(`${base}/`, { waitUntil: 'commit', timeout: 120_000 });
  const h = await page.waitForFunction(
    `(() => { const e = performance.getEntriesByName(${JSON.stringify(MARK)})[0]; const n = performance.getEntriesByType('navigation')[0]; return e ? { ms: e.startTime, drawn: e.detail?.nodes ?? 0, htmlMs: n ? n.responseEnd : 0, origin: performance.timeOrigin } : null; })()`,
    undefined,
    { timeout: 120_000, polling: 100 },
  );
  page.off('websocket', onSocket);
  const r = (await h.jsonValue()) as Paint & { origin: number };
  return {
    ms: r.ms,
    drawn: r.drawn,
    htmlMs: r.htmlMs,
    snapshotMs: snapshotAt ? snapshotAt - r.origin : Number.NaN,
  };
}

interface Pan {
  fps: number;
  drawsPerS: number;
  p95FrameMs: number;
  longestFrameMs: number;
}

/** Drags the topology around a loop for PAN_MS with page.mouse while a rAF loop counts the page's frames. */
async function pan(page: Page): Promise<Pan> {
  const canvas = page.getByTestId('topology-canvas');
  await canvas.scrollIntoViewIfNeeded();
  const box = (await canvas.boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.evaluate(
    `(() => { const b = { frames: [], on: true, draws0: window.__rdmaqTopologyDraws ?? 0 }; window.__bench = b; const tick = (t) => { if (!b.on) return; b.frames.push(t); requestAnimationFrame(tick); }; requestAnimationFrame(tick); })()`,
  );
  await page.mouse.move(cx, cy);
  await page.mouse.down();
  const t0 = Date.now();
  for (let i = 0; Date.now() - t0 < PAN_MS; i++) {
    const a = i / 40;
    await page.mouse.move(cx + 160 * Math.sin(a), cy + 90 * Math.sin(a * 1.7));
  }
  await page.mouse.up();
  const r = (await page.evaluate(
    `(() => { const b = window.__bench; b.on = false; const f = b.frames; const gaps = f.slice(1).map((t, i) => t - f[i]).sort((x, y) => x - y); return { frames: f.length, span: f[f.length - 1] - f[0], draws: (window.__rdmaqTopologyDraws ?? 0) - b.draws0, p95: gaps[Math.floor(gaps.length * 0.95)] ?? 0, longest: gaps[gaps.length - 1] ?? 0 }; })()`,
  )) as { frames: number; span: number; draws: number; p95: number; longest: number };
  const s = r.span / 1000;
  return {
    fps: +((r.frames - 1) / s).toFixed(1),
    drawsPerS: +(r.draws / s).toFixed(1),
    p95FrameMs: +r.p95.toFixed(1),
    longestFrameMs: Math.round(r.longest),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Result {
  nodes: number;
  paints: Paint[];
  pans: Pan[];
  rest: Figures;
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

  it(`prints first paint, frames/s while panning and main-thread cost at ${BASE} and ${BIG} hosts × ${LINKS} links`, {
    timeout: 900_000,
  }, async () => {
    const base = hub!.url;
    const cookie = await login(base, ADMIN.name, ADMIN.password);
    const { token } = await rest<{ token: string }>(base, cookie, 'POST', '/api/agent-tokens', {
      name: 'bench',
    });
    const rack = (i: number) => `rack${String(i % 16).padStart(2, '0')}`;
    const ids = Array.from({ length: BIG }, (_, i) => `${rack(i)}-h${Math.floor(i / 16)}`);
    const ws = `${base.replace(/^http/, 'ws')}/ws/agent`;
    // A few hosts in trouble, so the large view has something to show: one host's sending links are down.
    const SICK = 37 % BIG;
    const startAgents = async (from: number, to: number) => {
      const batch: SimAgent[] = [];
      const half = LINKS / 2;
      for (let i = from; i < to; i++) {
        // each host sends to the next `half` hosts and receives from the previous `half` among the first `to`
        const links = [];
        for (let k = 1; k <= half; k++) {
          const next = ids[(i + k) % to]!;
          const prev = ids[(i + to - k) % to]!;
          links.push({
            id: `${ids[i]}>${next}`,
            peer: next,
            direction: 'tx' as const,
            recordsPerS: 20_000,
            ...(i === SICK && to === BIG ? { state: 'down' as const } : {}),
          });
          links.push({
            id: `${prev}>${ids[i]}`,
            peer: prev,
            direction: 'rx' as const,
            recordsPerS: 20_000,
            occupancy: ((i + k) % 10) / 10,
          });
        }
        batch.push(new SimAgent(ws, token, ids[i]!, links, 1000, { rack: rack(i) }));
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

    const run = async (nodes: number): Promise<Result> => {
      await expect
        .poll(attr(page.getByTestId('topology-canvas'), 'data-nodes'), { timeout: 180_000, interval: 1000 })
        .toBe(String(nodes));
      const rest = await measure(page, nodes);
      const paints: Paint[] = [];
      for (let i = 0; i < RUNS; i++)
        paints.push(
          await (i === RUNS - 1 && nodes > BASE
            ? profiled(page, 'first paint', () => firstPaint(page, base))
            : firstPaint(page, base)),
        );
      if (nodes > BASE) await profiled(page, 'at rest 5 s', () => page.waitForTimeout(5000));
      await expect.poll(attr(page.getByTestId('topology-canvas'), 'data-nodes'), POLL).toBe(String(nodes));
      const pans: Pan[] = [];
      for (let i = 0; i < RUNS; i++) pans.push(await pan(page));
      return { nodes, paints, pans, rest };
    };

    await startAgents(0, BASE);
    const small = await run(BASE);
    await startAgents(BASE, BIG);
    // One agent goes away: its host turns offline, its peers' links to it down by peer.
    const gone = agents.find((a) => a.nodeId === ids[(SICK + 100) % BIG]);
    await gone?.stop();
    const big = await run(BIG);
    expect(await page.evaluate('1 + 1')).toBe(2);

    if (SHOTS && BIG > BASE) {
      mkdirSync(SHOTS, { recursive: true });
      await page.goto(`${base}/`, { waitUntil: 'commit', timeout: 120_000 });
      const canvas = page.getByTestId('topology-canvas');
      await expect.poll(attr(canvas, 'data-nodes'), POLL).toBe(String(BIG));
      await page.waitForTimeout(1500);
      await canvas.screenshot({ path: path.join(SHOTS, 'topology-1000-collapsed.png') });
      await page.screenshot({ path: path.join(SHOTS, 'overview-1000.png') });
      // open the sick host's group from the keyboard: arrows walk the groups in order, Enter expands
      await canvas.focus();
      const target = rack(SICK);
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press('ArrowRight');
        const live = (await page.locator('.topology [aria-live]').textContent()) ?? '';
        if (live.startsWith(`group ${target}:`)) break;
      }
      await page.keyboard.press('Enter');
      await expect.poll(attr(canvas, 'data-expanded'), POLL).toBe('1');
      await page.waitForTimeout(800);
      await canvas.screenshot({ path: path.join(SHOTS, 'topology-1000-expanded.png') });
      // hover the sick host for its tooltip
      await page.keyboard.press('ArrowRight');
      await page.waitForTimeout(300);
      await canvas.screenshot({ path: path.join(SHOTS, 'topology-1000-expanded-focus.png') });
    }

    // The same drag with the fleet stopped (no hub deltas, the hub and agents idle): the topology's own
    // cost at this size, apart from the page's per-delta work and the machine's other load.
    await Promise.allSettled(agents.map((a) => a.stop()));
    await page.waitForTimeout(5000);
    const quiet: Pan[] = [];
    for (let i = 0; i < RUNS; i++) quiet.push(await pan(page));

    const row = (name: string, a: string, b: string, target = '', ok?: boolean) =>
      `${name.padEnd(40)} ${a.padStart(12)} ${b.padStart(12)} ${target.padStart(9)}${ok === undefined ? '' : ok ? '  PASS' : '  FAIL'}`;
    const mp = (r: Result) => median(r.paints.map((p) => p.ms));
    const mf = (r: Result) => median(r.pans.map((p) => p.fps));
    const list = (xs: number[]) => xs.map((x) => Math.round(x)).join('/');
    console.log(
      [
        '',
        `overview in headless chromium (Debian, --disable-gpu), ${LINKS} link ends per host, medians of ${RUNS} runs; the sim agents, hub and browser share this machine`,
        row('', `${BASE} hosts`, `${BIG} hosts`, 'target'),
        row(
          'first paint: nav start → topology drawn (ms)',
          mp(small).toFixed(0),
          mp(big).toFixed(0),
          `≤ ${TARGET.firstPaintMs}`,
          mp(big) <= TARGET.firstPaintMs,
        ),
        row('  each run (ms)', list(small.paints.map((p) => p.ms)), list(big.paints.map((p) => p.ms))),
        row(
          '  of which: page HTML received (ms)',
          median(small.paints.map((p) => p.htmlMs)).toFixed(0),
          median(big.paints.map((p) => p.htmlMs)).toFixed(0),
        ),
        row(
          '  of which: snapshot received (ms)',
          median(small.paints.map((p) => p.snapshotMs)).toFixed(0),
          median(big.paints.map((p) => p.snapshotMs)).toFixed(0),
        ),
        row(
          '  snapshot → drawn, in the browser (ms)',
          median(small.paints.map((p) => p.ms - p.snapshotMs)).toFixed(0),
          median(big.paints.map((p) => p.ms - p.snapshotMs)).toFixed(0),
        ),
        row('  hosts on the first data draw', String(small.paints[0]?.drawn), String(big.paints[0]?.drawn)),
        row(
          'frames/s while panning (5 s drag)',
          mf(small).toFixed(1),
          mf(big).toFixed(1),
          `≥ ${TARGET.panFps}`,
          mf(big) >= TARGET.panFps,
        ),
        row(
          '  same, fleet stopped (no deltas)',
          '',
          `${median(quiet.map((p) => p.fps)).toFixed(1)} (${quiet.map((p) => p.fps).join('/')})`,
        ),
        row('  each run', small.pans.map((p) => p.fps).join('/'), big.pans.map((p) => p.fps).join('/')),
        row(
          '  topology redraws/s',
          median(small.pans.map((p) => p.drawsPerS)).toFixed(1),
          median(big.pans.map((p) => p.drawsPerS)).toFixed(1),
        ),
        row(
          '  p95 frame (ms)',
          median(small.pans.map((p) => p.p95FrameMs)).toFixed(1),
          median(big.pans.map((p) => p.p95FrameMs)).toFixed(1),
        ),
        row(
          '  longest frame (ms)',
          median(small.pans.map((p) => p.longestFrameMs)).toFixed(0),
          median(big.pans.map((p) => p.longestFrameMs)).toFixed(0),
        ),
        `at rest over ${WINDOW_MS / 1000} s (hub fan-out 1/s):`,
        row('  main thread busy %', String(small.rest.busyPct), String(big.rest.busyPct)),
        row('  script %', String(small.rest.scriptPct), String(big.rest.scriptPct)),
        row('  layout ms', String(small.rest.layoutMs), String(big.rest.layoutMs)),
        row(
          '  long tasks (longest ms)',
          `${small.rest.longTasks} (${small.rest.longestMs})`,
          `${big.rest.longTasks} (${big.rest.longestMs})`,
        ),
        row('  JS heap MB', String(small.rest.heapMB), String(big.rest.heapMB)),
        '',
      ].join('\n'),
    );
  });
});

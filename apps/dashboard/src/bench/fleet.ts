/**
 * Fleet benchmark: N agents × L links at 1 sample/s against a hub running in ANOTHER process
 * (`rdmaq-dashboard serve`, UI off), then live browser clients subscribing what the overview page
 * subscribes (the overview picture and the first windows of its two tables), in phases of 0, 1 and 10
 * browsers. Prints per phase the hub's CPU, the bytes per second each browser receives, the time a
 * browser spends decoding and applying an overview frame, and sample → browser latency; beside them the
 * idle hub and the fleet with no browser (same run), and what protocol 1 sent per second for this fleet
 * (every node and link summary, measured from the hub's REST answers in the same run).
 *
 *   node dist/bench/fleet.js [--agents 1000] [--links 8] [--seconds 60] [--warmup 20] [--browsers 1,10]
 *                            [--tsdb compare]
 *
 * Growth with the fleet (same samples per second): `--agents 1000 --links 8` against `--agents 4000 --links 2`.
 *
 * `--tsdb compare` runs the fleet twice in one invocation, SQLite only and then with remote
 * write to a VictoriaMetrics started on loopback (Debian's victoria-metrics), and prints the hub CPU
 * medians, their ratio, and how long after the last sample every link sample was in the TSDB.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  applyLayoutDelta,
  bucketOf,
  emptyLinkCounters,
  LIVE_PROTOCOL_VERSION,
  type LinkSample,
  layoutFromSnapshot,
  type OverviewLayout,
  PROTOCOL_VERSION,
  type Sample,
  tableView,
} from '@rdmaq/shared';
import WebSocket from 'ws';
import { VictoriaMetrics, vmMissing } from './victoria-metrics.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    links: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '20' },
    baseline: { type: 'string', default: '10' },
    tsdb: { type: 'string', default: 'off' },
    /** tsdb.writeIntervalS for the remote-write run (0: every sample). */
    'tsdb-interval-s': { type: 'string', default: '0' },
    /** Browser counts, one measured phase each (after a phase with none). */
    browsers: { type: 'string', default: '1,10' },
  },
});
const BROWSERS = values.browsers
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0 && n <= 50);
const AGENTS = Number(values.agents);
const LINKS = Number(values.links);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const BASELINE = Number(values.baseline);
const TARGET = { cpu: 30, cpuOneBrowser: 25, rssMb: 600, p99Ms: 1500, kibPerS: 100, applyMs: 50 };
/** The windows the overview page subscribes at first (src/app/(main)/_overview/Overview.tsx). */
const PAGE_VIEWS = [
  'overview',
  tableView({ table: 'nodes', sort: 'urgency', q: '', offset: 0, limit: 60 }),
  tableView({ table: 'links', sort: 'urgency', q: '', offset: 0, limit: 60 }),
];

const BIN = fileURLToPath(new URL('../server/bin.js', import.meta.url));
const CLK_TCK = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procStat(pid: number): { cpuTicks: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuTicks, rssBytes: Number(rss?.[1] ?? 0) * 1024 };
}

/** Average and median (of 1 s samples) CPU % of one core and peak RSS of `pid` over `seconds`. */
async function measure(
  pid: number,
  seconds: number,
): Promise<{ cpu: number; cpuMedian: number; rssMb: number }> {
  const a = procStat(pid);
  const t0 = performance.now();
  let peak = a.rssBytes;
  const perS: number[] = [];
  let prev = a.cpuTicks;
  let prevT = t0;
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    const s = procStat(pid);
    const t = performance.now();
    perS.push(((s.cpuTicks - prev) / CLK_TCK / ((t - prevT) / 1000)) * 100);
    prev = s.cpuTicks;
    prevT = t;
    peak = Math.max(peak, s.rssBytes);
  }
  const b = procStat(pid);
  const wall = (performance.now() - t0) / 1000;
  return {
    cpu: ((b.cpuTicks - a.cpuTicks) / CLK_TCK / wall) * 100,
    cpuMedian: pct(
      perS.sort((x, y) => x - y),
      0.5,
    ),
    rssMb: peak / 2 ** 20,
  };
}

function pct(sorted: number[], q: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface RunResult {
  cpu: number;
  cpuMedian: number;
  rssMb: number;
  p99: number;
  /** Seconds from the last sample sent until every link sample sent was in the TSDB (TSDB runs only). */
  tsdbDelayS?: number;
  tsdbStats?: unknown;
}

async function main(): Promise<void> {
  if (values.tsdb === 'off') {
    await runOnce(undefined);
    process.exit(0);
  }
  if (values.tsdb !== 'compare') throw new Error('--tsdb: off or compare');
  const missing = vmMissing;
  if (missing) {
    console.log(`--tsdb compare skipped: ${missing}`);
    process.exit(0);
  }
  console.log('\n══ run 1: SQLite only ══');
  const off = await runOnce(undefined);
  const vm = await VictoriaMetrics.start();
  process.on('exit', () => vm.kill());
  console.log(`\n══ run 2: remote write to VictoriaMetrics at ${vm.url} ══`);
  let on: RunResult;
  try {
    on = await runOnce(vm);
  } finally {
    await vm.close();
  }
  const ratio = on.cpuMedian / off.cpuMedian;
  console.log(
    `\n══ remote write on vs off (${AGENTS} agents × ${LINKS} links, ${SECONDS} s each, tsdb.writeIntervalS ${values['tsdb-interval-s']}) ══`,
  );
  console.log(
    `${'metric'.padEnd(34)} ${'SQLite only'.padStart(12)} ${'+ remote write'.padStart(15)} ${'target'.padStart(8)}`,
  );
  const line = (name: string, a: string, b: string, t: string, ok: boolean) =>
    console.log(
      `${name.padEnd(34)} ${a.padStart(12)} ${b.padStart(15)} ${t.padStart(8)}  ${ok ? 'PASS' : 'FAIL'}`,
    );
  line('hub CPU median (% of one core)', off.cpuMedian.toFixed(1), on.cpuMedian.toFixed(1), '', true);
  line('hub CPU ratio (median on / off)', '1.00', ratio.toFixed(2), '≤ 1.2', ratio <= 1.2);
  line('hub RSS (MB, peak)', off.rssMb.toFixed(0), on.rssMb.toFixed(0), '', true);
  line('sample → browser p99 (ms)', off.p99.toFixed(0), on.p99.toFixed(0), '', true);
  line(
    'last sample → all in TSDB (s)',
    '-',
    on.tsdbDelayS === undefined ? 'never' : on.tsdbDelayS.toFixed(1),
    '≤ 5',
    on.tsdbDelayS !== undefined && on.tsdbDelayS <= 5,
  );
  console.log(`remote write: ${JSON.stringify(on.tsdbStats)}`);
  process.exit(0);
}

async function runOnce(vm: VictoriaMetrics | undefined): Promise<RunResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rdmaq-bench-'));
  const password = 'bench-password-123';
  let out = '';
  // RDMAQ_BENCH_NODE_ARGS: extra node flags for the hub process (e.g. --cpu-prof).
  const nodeArgs = (process.env.RDMAQ_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const hub: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dir],
    {
      env: {
        ...process.env,
        RDMAQ_UI: '0',
        RDMAQ_LOG_LEVEL: 'info',
        RDMAQ_ADMIN_USER: 'bench',
        RDMAQ_ADMIN_PASSWORD: password,
        ...(vm ? { RDMAQ_TSDB_URL: vm.url, RDMAQ_TSDB_WRITE_INTERVAL_S: values['tsdb-interval-s'] } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const cleanup = () => {
    if (hub.exitCode === null) hub.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  // Keep only the head of the log (the URL line); agents connecting log one line each.
  hub.stdout?.on('data', (d) => {
    if (out.length < 100_000) out += String(d);
  });
  hub.stderr?.on('data', (d) => process.stderr.write(d));
  // The hub logs its URL (ephemeral port) at start.
  const logLevelUrl = async (): Promise<string> => {
    for (let i = 0; i < 300; i++) {
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) return m[1]!;
      await sleep(100);
    }
    throw new Error(`hub did not start:\n${out}`);
  };
  const url = await logLevelUrl();
  const pid = hub.pid!;
  console.log(`hub pid ${pid} at ${url}; data ${dir}`);

  const login = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', password }),
  });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const tok = (await (
    await fetch(`${url}/api/agent-tokens`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench' }),
    })
  ).json()) as { token: string };

  console.log(`baseline: idle hub for ${BASELINE} s…`);
  const idle = await measure(pid, BASELINE);

  // ── the fleet
  const wsUrl = url.replace(/^http/, 'ws');
  const latencyBuckets = (k: number): Array<[number, number]> => {
    const m = new Map<number, number>();
    for (let i = 0; i < 24; i++) {
      const b = bucketOf(3000 + ((i * 977 + k * 131) % 5000) + (i > 21 ? 200_000 : 0));
      m.set(b, (m.get(b) ?? 0) + 10 + i);
    }
    return [...m.entries()].sort((a, b) => a[0] - b[0]);
  };
  interface Ag {
    ws: WebSocket;
    node: string;
    seq: number;
    links: LinkSample[];
  }
  const agents: Ag[] = [];
  console.log(`connecting ${AGENTS} agents × ${LINKS} links…`);
  for (let i = 0; i < AGENTS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, AGENTS - i) }, async (_, j) => {
        const n = i + j;
        const ws = new WebSocket(`${wsUrl}/ws/agent`, { headers: { authorization: `Bearer ${tok.token}` } });
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        ws.on('error', () => undefined);
        ws.on('message', () => undefined);
        const node = `node-${String(n).padStart(4, '0')}`;
        ws.send(
          JSON.stringify({
            type: 'hello',
            v: PROTOCOL_VERSION,
            nodeId: node,
            runId: `bench-${process.pid}`,
            hostname: `${node}.bench`,
            version: 'bench',
            providers: ['tcp;ofi_rxm'],
            startedAt: Date.now(),
            intervalMs: 1000,
          }),
        );
        const links: LinkSample[] = Array.from({ length: LINKS }, (_, l) => ({
          id: `link-${l}`,
          peer: `node-${String((n + l + 1) % AGENTS).padStart(4, '0')}`,
          direction: l % 2 ? 'tx' : 'rx',
          transport: 'fabric',
          provider: 'tcp;ofi_rxm',
          state: 'up',
          counters: emptyLinkCounters(),
          gauges: { occupancyBytes: 0, peakOccupancyBytes: 0, capacityBytes: 4 << 20 },
          latency: { queue: latencyBuckets(n * LINKS + l), rtt: latencyBuckets(l) },
        }));
        agents.push({ ws, node, seq: 0, links });
      }),
    );
  }

  // ── the live browser clients, on their own thread (a browser is its own process: the fleet's busy event
  // loop must not delay when frames are seen).
  const live = new Worker(fileURLToPath(import.meta.url), { workerData: { wsUrl, cookie, origin: url } });
  const fromLive = <T>(): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      live.once('message', (m: T) => resolve(m));
      live.once('error', reject);
    });

  // Each agent sends once a second, spread evenly over the second like real, unsynchronised hosts.
  let running = true;
  const startAt = Date.now();
  const sendLoop = async () => {
    let tick = 0;
    while (running) {
      const secondStart = startAt + tick * 1000;
      for (let i = 0; i < agents.length; i++) {
        const due = secondStart + (i * 1000) / agents.length;
        const wait = due - Date.now();
        if (wait > 2) await sleep(wait);
        if (!running) return;
        const a = agents[i]!;
        a.seq++;
        for (const l of a.links) {
          l.counters.records += 10_000;
          l.counters.bytes += 640_000;
          l.counters.completions += 10_000;
          l.gauges.occupancyBytes = (a.seq * 4096) % (1 << 20);
        }
        const s: Sample = {
          type: 'sample',
          v: PROTOCOL_VERSION,
          seq: a.seq,
          ts: Date.now(),
          host: { cpuPercent: 12, rssBytes: 80e6, eventLoopLagMs: 0.5, uptimeS: a.seq },
          links: a.links,
        };
        a.ws.send(JSON.stringify(s));
      }
      tick++;
    }
  };
  const loop = sendLoop();
  console.log(
    `warm-up ${WARMUP} s, then ${1 + BROWSERS.length} phases of ${SECONDS} s (browsers: 0, ${BROWSERS.join(', ')})…`,
  );
  await sleep(WARMUP * 1000);
  const phases: Phase[] = [];
  for (const n of [0, ...BROWSERS]) {
    if (n > 0) {
      live.postMessage({ cmd: 'open', n });
      await fromLive<'ready'>();
      await sleep(3000); // snapshots delivered, first deltas flowing
    }
    live.postMessage({ cmd: 'start' });
    const m = await measure(pid, SECONDS);
    live.postMessage({ cmd: 'stop' });
    const r = await fromLive<LiveResult>();
    phases.push({ browsers: n, ...m, live: r });
    const kib = (b: number) => (b / Math.max(1, r.browsers) / SECONDS / 1024).toFixed(1);
    console.log(
      `  ${n} browser(s): hub CPU ${m.cpu.toFixed(1)} % (median ${m.cpuMedian.toFixed(1)}), ${kib(r.bytes)} KiB/s per browser (${Object.entries(
        r.byView,
      )
        .map(([k, b]) => `${k} ${kib(b)}`)
        .join(', ')})`,
    );
  }
  // What protocol 1 sent each second for this fleet: every node and link summary that changed (here every
  // one of them, each agent reporting once a second), as the REST answers serialise them.
  const restText = async (p: string) => (await fetch(`${url}${p}`, { headers: { cookie } })).text();
  const v1Nodes = await restText('/api/nodes');
  const v1Links = await restText('/api/links');
  const v1Bytes = v1Nodes.length + v1Links.length;
  const v1Parse: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    JSON.parse(v1Nodes);
    JSON.parse(v1Links);
    v1Parse.push(performance.now() - t);
  }
  v1Parse.sort((x, y) => x - y);
  running = false;
  await loop;
  const lastSentAt = Date.now();
  // Before waiting on the TSDB: agents that stopped sending are offline 10 s later.
  const health = (await (await fetch(`${url}/api/health`)).json()) as {
    agents: { connected: number };
    links: { total: number };
  };
  // Every point the hub queued for the TSDB, there: the TSDB's count of all rdmaq points equals the hub's
  // samplesQueued (with tsdb.writeIntervalS 0 that is one rdmaq_link_records_total point per link per
  // sample sent, checked too).
  let tsdbDelayS: number | undefined;
  let tsdbStats: unknown;
  if (vm) {
    const sent = agents.reduce((n, a) => n + a.seq * a.links.length, 0);
    const windowS = Math.ceil((Date.now() - startAt) / 1000) + 60;
    const qAll = `sum(count_over_time({__name__=~"rdmaq_(link|agent)_.+"}[${windowS}s]))`;
    const qRecords = `sum(count_over_time(rdmaq_link_records_total[${windowS}s]))`;
    type W = { samplesQueued: number; queueLength: number };
    let got = 0;
    let want = Number.NaN;
    while (Date.now() - lastSentAt < 60_000) {
      const ing = (await (await fetch(`${url}/api/ingest`, { headers: { cookie } })).json()) as { tsdb: W };
      want = ing.tsdb.samplesQueued;
      got = ing.tsdb.queueLength === 0 ? await vm.scalar(qAll).catch(() => 0) : 0;
      if (got >= want) {
        tsdbDelayS = (Date.now() - lastSentAt) / 1000;
        break;
      }
      await sleep(100);
    }
    const records = await vm.scalar(qRecords).catch(() => 0);
    const ing = (await (await fetch(`${url}/api/ingest`, { headers: { cookie } })).json()) as {
      tsdb?: unknown;
    };
    tsdbStats = ing.tsdb;
    console.log(
      `TSDB: ${got} of ${want} points queued by the hub${tsdbDelayS === undefined ? ' after 60 s' : `, all there ${tsdbDelayS.toFixed(1)} s after the last sample was sent`}; ${records} link record points for ${sent} link samples sent`,
    );
  }

  const row = (name: string, cols: string[], target: string, ok: boolean | undefined) =>
    console.log(
      `${name.padEnd(34)} ${cols.map((c) => c.padStart(12)).join(' ')} ${target.padStart(10)}  ${ok === undefined ? '' : ok ? 'PASS' : 'FAIL'}`,
    );
  console.log(
    `\nmachine: ${cpus().length} cores, load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} (other work on the machine competes with the hub, the fleet and the clients)`,
  );
  console.log(
    `fleet: ${health.agents.connected} agents connected, ${health.links.total} link ends, ${SECONDS} s per phase`,
  );
  const withB = phases.filter((p) => p.browsers > 0);
  const one = withB.find((p) => p.browsers === 1);
  const ten = withB.find((p) => p.browsers === 10);
  row('', ['idle hub', ...phases.map((p) => `${p.browsers} browsers`)], 'target', undefined);
  row(
    'hub CPU (% of one core)',
    [idle.cpu.toFixed(1), ...phases.map((p) => p.cpu.toFixed(1))],
    `≤ ${TARGET.cpuOneBrowser} / ${TARGET.cpu}`,
    (one ? one.cpu <= TARGET.cpuOneBrowser : true) && (ten ? ten.cpu <= TARGET.cpu : true),
  );
  row(
    'hub CPU median of 1 s (%)',
    [idle.cpuMedian.toFixed(1), ...phases.map((p) => p.cpuMedian.toFixed(1))],
    '',
    undefined,
  );
  row(
    'hub RSS (MB, peak)',
    [idle.rssMb.toFixed(0), ...phases.map((p) => p.rssMb.toFixed(0))],
    `≤ ${TARGET.rssMb}`,
    phases.every((p) => p.rssMb <= TARGET.rssMb),
  );
  const perBrowser = (p: Phase) => p.live.bytes / Math.max(1, p.live.browsers) / SECONDS / 1024;
  row(
    'KiB/s to each browser',
    ['-', ...phases.map((p) => (p.browsers ? perBrowser(p).toFixed(1) : '-'))],
    `≤ ${TARGET.kibPerS}`,
    withB.every((p) => perBrowser(p) <= TARGET.kibPerS),
  );
  row(
    '  protocol 1, this fleet (KiB/s)',
    ['-', ...phases.map(() => (v1Bytes / 1024).toFixed(0))],
    '',
    undefined,
  );
  const applyP = (p: Phase, q: number) => pct(p.live.applyMs, q);
  row(
    'decode+apply overview frame p50 (ms)',
    ['-', ...phases.map((p) => (p.browsers ? applyP(p, 0.5).toFixed(2) : '-'))],
    '',
    undefined,
  );
  row(
    'decode+apply overview frame p99 (ms)',
    ['-', ...phases.map((p) => (p.browsers ? applyP(p, 0.99).toFixed(2) : '-'))],
    `≤ ${TARGET.applyMs}`,
    withB.every((p) => applyP(p, 0.99) <= TARGET.applyMs),
  );
  row(
    '  protocol 1: JSON.parse alone p50 (ms)',
    ['-', ...phases.map(() => pct(v1Parse, 0.5).toFixed(1))],
    '',
    undefined,
  );
  const latP = (p: Phase, q: number) => pct(p.live.lat, q);
  row(
    'sample → browser p50 (ms)',
    ['-', ...phases.map((p) => (p.browsers ? latP(p, 0.5).toFixed(0) : '-'))],
    '',
    undefined,
  );
  row(
    'sample → browser p99 (ms)',
    ['-', ...phases.map((p) => (p.browsers ? latP(p, 0.99).toFixed(0) : '-'))],
    `≤ ${TARGET.p99Ms}`,
    withB.every((p) => latP(p, 0.99) <= TARGET.p99Ms),
  );
  row(
    '  of which frame → client p99',
    ['-', ...phases.map((p) => (p.browsers ? pct(p.live.deliver, 0.99).toFixed(0) : '-'))],
    '',
    undefined,
  );
  if (one) {
    console.log(
      `bytes per browser: protocol 1 ${(v1Bytes / 1024).toFixed(0)} KiB/s vs ${perBrowser(one).toFixed(1)} KiB/s now (÷${(v1Bytes / 1024 / Math.max(0.01, perBrowser(one))).toFixed(0)})`,
    );
  }
  const busy = ten ?? one ?? phases[0]!;
  const p99 = latP(busy, 0.99);

  for (const a of agents) a.ws.close();
  await live.terminate();
  const exited = new Promise((r) => hub.once('exit', (code, signal) => r(signal ?? code)));
  hub.kill('SIGTERM');
  const how = await Promise.race([exited, sleep(20_000).then(() => 'still running after 20 s')]);
  console.log(`hub stopped: ${String(how)}`);
  process.off('exit', cleanup);
  cleanup();
  return {
    cpu: busy.cpu,
    cpuMedian: busy.cpuMedian,
    rssMb: busy.rssMb,
    p99: Number.isFinite(p99) ? p99 : 0,
    ...(tsdbDelayS !== undefined ? { tsdbDelayS } : {}),
    ...(vm ? { tsdbStats } : {}),
  };
}

interface LiveResult {
  browsers: number;
  /** Bytes received by all browsers while measuring. */
  bytes: number;
  frames: number;
  /** Sample time → received, for each link row of the first browser's link table window (ms). */
  lat: number[];
  /** Frame built → received (serialise, send, transfer), per frame of the first browser. */
  deliver: number[];
  /** JSON.parse + decode + apply of each overview frame of the first browser (ms). */
  applyMs: number[];
  /** Bytes per view kind (overview, table:links, table:nodes, other), all browsers. */
  byView: Record<string, number>;
}

interface Phase {
  browsers: number;
  cpu: number;
  cpuMedian: number;
  rssMb: number;
  live: LiveResult;
}

/**
 * Worker: browsers subscribing the overview page's views. Each applies the overview frames it receives as
 * the page does (parse, decode, apply), timed on the first one; the first one also times each link row of
 * its table window from the sample's timestamp.
 */
function liveClient(): void {
  const { wsUrl, cookie, origin } = workerData as { wsUrl: string; cookie: string; origin: string };
  let measuring = false;
  const r: LiveResult = { browsers: 0, bytes: 0, frames: 0, lat: [], deliver: [], applyMs: [], byView: {} };
  const sockets: WebSocket[] = [];
  const open = (first: boolean) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${wsUrl}/ws/live?v=${LIVE_PROTOCOL_VERSION}`, {
        headers: { cookie, origin },
      });
      sockets.push(ws);
      let layout: OverviewLayout | undefined;
      ws.on('open', () => {
        for (const view of PAGE_VIEWS) ws.send(JSON.stringify({ type: 'subscribe', view }));
        resolve();
      });
      ws.once('error', reject);
      ws.on('message', (data) => {
        const now = Date.now();
        const text = String(data);
        const t0 = performance.now();
        const f = JSON.parse(text) as {
          type: string;
          view?: string;
          ts: number;
          data?: { layout?: never; rows?: Array<{ ts?: number }>; patches?: Array<{ ts?: number }> };
        };
        if (f.view === 'overview' && (f.type === 'snapshot' || f.type === 'delta')) {
          try {
            layout =
              f.type === 'snapshot' || !layout
                ? layoutFromSnapshot(f.data!.layout!)
                : applyLayoutDelta(layout, f.data!.layout!).layout;
          } catch {
            layout = undefined;
          }
          if (measuring && first) r.applyMs.push(performance.now() - t0);
        }
        if (!measuring) return;
        r.bytes += text.length;
        r.frames++;
        const kind = f.view?.split('?')[0] ?? f.type;
        r.byView[kind] = (r.byView[kind] ?? 0) + text.length;
        if (!first || (f.type !== 'delta' && f.type !== 'snapshot')) return;
        r.deliver.push(now - f.ts);
        if (f.view?.startsWith('table:links')) {
          for (const row of [...(f.data?.rows ?? []), ...(f.data?.patches ?? [])]) {
            if (row.ts) r.lat.push(now - row.ts);
          }
        }
      });
    });
  parentPort!.on('message', (m: { cmd: string; n?: number }) => {
    if (m.cmd === 'open') {
      const want = m.n ?? 1;
      void (async () => {
        while (sockets.length < want) await open(sockets.length === 0);
        parentPort!.postMessage('ready');
      })();
    }
    if (m.cmd === 'start') {
      Object.assign(r, {
        browsers: sockets.length,
        bytes: 0,
        frames: 0,
        lat: [],
        deliver: [],
        applyMs: [],
        byView: {},
      });
      measuring = true;
    }
    if (m.cmd === 'stop') {
      measuring = false;
      for (const a of [r.lat, r.deliver, r.applyMs]) a.sort((x, y) => x - y);
      parentPort!.postMessage({ ...r });
    }
  });
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else liveClient();

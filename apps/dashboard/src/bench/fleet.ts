/**
 * Fleet benchmark: N agents × L links at 1 sample/s against a hub running in ANOTHER process
 * (`rdmaq-dashboard serve`, UI off), plus one live browser client on the overview measuring
 * sample → browser delta latency. Prints hub CPU %, RSS and latency percentiles beside the idle baseline
 * of the same hub measured in the same run, and the issue's targets.
 *
 *   node dist/bench/fleet.js [--agents 1000] [--links 8] [--seconds 60] [--warmup 20] [--tsdb compare]
 *
 * `--tsdb compare` (issue 17) runs the fleet twice in one invocation, SQLite only and then with remote
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
import { bucketOf, emptyLinkCounters, type LinkSample, PROTOCOL_VERSION, type Sample } from '@rdmaq/shared';
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
  },
});
const AGENTS = Number(values.agents);
const LINKS = Number(values.links);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const BASELINE = Number(values.baseline);
const TARGET = { cpu: 30, rssMb: 600, p99Ms: 1500 };

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

  // ── the live browser client, on its own thread (a browser is its own process: the fleet's busy event
  // loop must not delay when deltas are seen).
  const live = new Worker(fileURLToPath(import.meta.url), { workerData: { wsUrl, cookie, origin: url } });
  await new Promise<void>((resolve, reject) => {
    live.once('message', () => resolve());
    live.once('error', reject);
  });
  const liveResult = new Promise<LiveResult>((resolve) =>
    live.on('message', (m: LiveResult | string) => {
      if (typeof m !== 'string') resolve(m);
    }),
  );

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
  console.log(`warm-up ${WARMUP} s, then measuring ${SECONDS} s…`);
  await sleep(WARMUP * 1000);
  live.postMessage('start');
  const busy = await measure(pid, SECONDS);
  live.postMessage('stop');
  const { lat, wait, deliver, deltas, deltaBytes } = await liveResult;
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

  const p50 = pct(lat, 0.5);
  const p99 = pct(lat, 0.99);
  const row = (name: string, base: string, val: string, target: string, ok: boolean) =>
    console.log(
      `${name.padEnd(30)} ${base.padStart(14)} ${val.padStart(14)} ${target.padStart(10)}  ${ok ? 'PASS' : 'FAIL'}`,
    );
  console.log(
    `\nmachine: ${cpus().length} cores, load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} (other work on the machine competes with the hub, the fleet and the client)`,
  );
  console.log(
    `fleet: ${health.agents.connected} agents connected, ${health.links.total} links, ${SECONDS} s measured`,
  );
  console.log(
    `live client: ${deltas} overview deltas, avg ${(deltaBytes / Math.max(1, deltas) / 1024).toFixed(0)} KiB, ${lat.length} link updates timed`,
  );
  console.log(
    `${'metric'.padEnd(30)} ${'idle baseline'.padStart(14)} ${'under fleet'.padStart(14)} ${'target'.padStart(10)}`,
  );
  row(
    'hub CPU (% of one core)',
    idle.cpu.toFixed(1),
    busy.cpu.toFixed(1),
    `≤ ${TARGET.cpu}`,
    busy.cpu <= TARGET.cpu,
  );
  row('hub CPU median of 1 s (%)', idle.cpuMedian.toFixed(1), busy.cpuMedian.toFixed(1), '', true);
  row(
    'hub RSS (MB, peak)',
    idle.rssMb.toFixed(0),
    busy.rssMb.toFixed(0),
    `≤ ${TARGET.rssMb}`,
    busy.rssMb <= TARGET.rssMb,
  );
  row('sample → browser p50 (ms)', '-', p50.toFixed(0), '', true);
  row('  of which sample → frame p99', '-', pct(wait, 0.99).toFixed(0), '', true);
  row('  of which frame → client p99', '-', pct(deliver, 0.99).toFixed(0), '', true);
  row('sample → browser p99 (ms)', '-', p99.toFixed(0), `≤ ${TARGET.p99Ms}`, p99 <= TARGET.p99Ms);

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
    p99,
    ...(tsdbDelayS !== undefined ? { tsdbDelayS } : {}),
    ...(vm ? { tsdbStats } : {}),
  };
}

interface LiveResult {
  lat: number[];
  /** Sample time → the hub built the delta (tick wait + ingest). */
  wait: number[];
  /** Delta built → received by the client (serialise, send, transfer), per frame. */
  deliver: number[];
  deltas: number;
  deltaBytes: number;
}

/** Worker: a live client on the overview timing each link update (receipt time − sample time). */
function liveClient(): void {
  const { wsUrl, cookie, origin } = workerData as { wsUrl: string; cookie: string; origin: string };
  const lat: number[] = [];
  const wait: number[] = [];
  const deliver: number[] = [];
  let measuring = false;
  let deltas = 0;
  let deltaBytes = 0;
  const ws = new WebSocket(`${wsUrl}/ws/live`, { headers: { cookie, origin } });
  ws.on('open', () => {
    ws.send(JSON.stringify({ type: 'subscribe', view: 'overview' }));
    parentPort!.postMessage('ready');
  });
  ws.on('message', (data) => {
    const now = Date.now();
    const text = String(data);
    const f = JSON.parse(text) as { type: string; ts: number; data?: { links?: Array<{ ts: number }> } };
    if (f.type !== 'delta' || !measuring) return;
    deltas++;
    deltaBytes += text.length;
    // Split: sample → hub builds the frame (waiting for the 1 s tick), frame built → received here.
    deliver.push(now - f.ts);
    for (const l of f.data?.links ?? []) {
      lat.push(now - l.ts);
      wait.push(f.ts - l.ts);
    }
  });
  parentPort!.on('message', (m: string) => {
    if (m === 'start') measuring = true;
    if (m === 'stop') {
      measuring = false;
      for (const a of [lat, wait, deliver]) a.sort((x, y) => x - y);
      parentPort!.postMessage({ lat, wait, deliver, deltas, deltaBytes } satisfies LiveResult);
    }
  });
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else liveClient();

/**
 * rdmaq-perf over the shm transport: both ends on this host, a unix socket each (in a temporary folder), the
 * ring in /dev/shm. Workers: perf/worker.ts. `all` runs the shm targets against the C baselines of
 * baselines.sh (fi_pingpong over shm, UCX posix, sockperf), Node's own TCP and memcpy.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdleStrategy } from '../types.js';
import {
  findBaseline,
  type Log,
  memcpyBaseline,
  nodeTcpBaseline,
  scriptBaselines,
  sockperfPinnedBaseline,
} from './baselines.js';
import {
  type BenchTransport,
  bwCase,
  type EndParams,
  latCase,
  type PerfOptions,
  withChecksum,
} from './cases.js';
import { type PerfWorker, pairCase } from './ipc.js';
import { atLeast, atMost, type Baseline, type CaseRow, median, printRow, ratio, round } from './report.js';
import type { WorkerConfig } from './worker.js';

export const SHM_CAPACITY = 4 * 1024 * 1024;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'rdmaq-perf-'));
}

export const shmBench: BenchTransport = {
  transport: 'shm',
  provider: 'shm',
  engineSpins: false,
  latIters: (idle) => (idle === 'busy-spin' ? 200_000 : 20_000),
  latWarmup: (n) => Math.min(10_000, Math.ceil(n / 10)),
  bwIters: (size) => (size <= 1024 ? 10_000_000 : Math.max(20_000, Math.floor(8e9 / size))),
  ends(kind, p: EndParams) {
    const dir = tmp();
    const base = { ...p, transport: 'shm', capacity: SHM_CAPACITY } as const;
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    if (kind === 'lat') {
      const sa = join(dir, 'a.sock');
      const sb = join(dir, 'b.sock');
      const a: WorkerConfig = { ...base, role: 'lat-init', sockSelf: sa, sockPeer: sb };
      const b: WorkerConfig = { ...base, role: 'lat-pong', sockSelf: sb, sockPeer: sa };
      return { a, b, cleanup };
    }
    const sock = join(dir, 'rx.sock');
    const a: WorkerConfig = { ...base, role: 'bw-send', sockPeer: sock };
    const b: WorkerConfig = { ...base, role: 'bw-recv', sockSelf: sock };
    return { a, b, cleanup };
  },
};

type IdleRow = {
  name: string;
  seconds: number;
  /** CPU seconds during the idle window (process.cpuUsage), receiver and sender. */
  rx_idle_cpu_s: number;
  tx_idle_cpu_s: number;
  /** Whole-process CPU seconds as /usr/bin/time reports them (node start-up and handshake included). */
  rx_time_cpu_s: number;
  tx_time_cpu_s: number;
};

/** An idle event-mode link for `seconds`: CPU time of both processes during the idle window and in total. */
async function idleCase(seconds = 3): Promise<IdleRow> {
  const dir = tmp();
  try {
    const base = {
      transport: 'shm',
      size: 0,
      iters: 0,
      warmup: 0,
      idle: 'event',
      engine: false,
      capacity: SHM_CAPACITY,
      seconds,
    } as const;
    const sock = join(dir, 'rx.sock');
    const wrap = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'rdmaq-cpu %U %S'] : [];
    const a: WorkerConfig = { ...base, role: 'idle-tx', sockPeer: sock };
    const b: WorkerConfig = { ...base, role: 'idle-rx', sockSelf: sock };
    const [ra, rb, wa, wb] = await pairCase(a, b, { wrap });
    const cpu = (w: PerfWorker) => {
      const m = /rdmaq-cpu ([\d.]+) ([\d.]+)/.exec(w.stderr);
      return m ? round(Number(m[1]) + Number(m[2]), 2) : Number.NaN;
    };
    return {
      name: 'idle_event_link',
      seconds,
      rx_idle_cpu_s: round(rb.idleCpuS as number, 4),
      tx_idle_cpu_s: round(ra.idleCpuS as number, 4),
      rx_time_cpu_s: cpu(wb),
      tx_time_cpu_s: cpu(wa),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the shm cases of rdmaq-perf and prints them (rows, baselines, ratios). */
export async function runShmPerf(o: PerfOptions, log: Log): Promise<void> {
  const t = o.checksum ? withChecksum(shmBench) : shmBench;
  const repeat = o.repeat ?? (o.cmd === 'all' ? 5 : 1);
  const run = async (c: () => Promise<CaseRow>) => {
    const runs: CaseRow[] = [];
    for (let i = 0; i < repeat; i++) runs.push(await c());
    const r = median(runs, (x) => (x.bench === 'lat' ? x.p50_us : -x.msgs_per_s));
    printRow(o, r);
    return r;
  };
  const baselines: Baseline[] = [];
  const keep = (rows: Baseline[]) => {
    const b = median(rows, (x) =>
      typeof x.one_way_us === 'number' ? x.one_way_us : -Number(x.msgs_per_s ?? x.gb_per_s ?? 0),
    );
    const out = repeat > 1 ? { ...b, runs: rows.length } : b;
    baselines.push(out);
    printRow(o, out);
  };
  const addBaselines = async (size: number) => {
    if (!o.baselines) return;
    const byName = new Map<string, Baseline[]>();
    for (let i = 0; i < repeat; i++) {
      for (const b of await scriptBaselines(size, size >= 4096 ? 5000 : 20_000, log)) {
        if ('error' in b) continue;
        byName.set(b.baseline, [...(byName.get(b.baseline) ?? []), b]);
      }
    }
    for (const rows of byName.values()) keep(rows);
    const tcp: Baseline[] = [];
    for (let i = 0; i < repeat; i++) tcp.push(await nodeTcpBaseline(size));
    keep(tcp);
    const pinned: Baseline[] = [];
    for (let i = 0; i < repeat; i++) {
      const b = await sockperfPinnedBaseline(size, log);
      if (b) pinned.push(b);
    }
    if (pinned.length > 0) keep(pinned);
    const m: Baseline[] = [];
    for (let i = 0; i < repeat; i++) m.push(memcpyBaseline(size));
    keep(m);
  };

  /** Our figure against every baseline that measured the same quantity. */
  const ratiosTo = (r: CaseRow) => {
    for (const b of baselines) {
      if (r.bench === 'lat' && typeof b.one_way_us === 'number') {
        ratio(o, `p50 / ${b.baseline} one-way`, r.p50_us / b.one_way_us, 'lower is better', undefined);
      } else if (r.bench === 'bw' && typeof b.msgs_per_s === 'number') {
        ratio(o, `msgs/s / ${b.baseline}`, r.msgs_per_s / b.msgs_per_s, 'higher is better', undefined);
      } else if (r.bench === 'bw' && b.baseline === 'memcpy' && typeof b.gb_per_s === 'number') {
        ratio(o, 'GB/s / memcpy', r.gb_per_s / b.gb_per_s, 'higher is better', undefined);
      }
    }
  };

  if (o.cmd === 'lat' || o.cmd === 'bw') {
    const c = o.cmd === 'lat' ? latCase : bwCase;
    const r = await run(() => c(t, o.size, o.idle, o.engine, o.iters));
    await addBaselines(o.size);
    ratiosTo(r);
    return;
  }
  if (o.cmd === 'idle') {
    printRow(o, await idleCase());
    return;
  }
  // The targets, all in one run (64-byte records unless said). This VM's speed jumps from one
  // minute to the next, so the cases and the baselines are interleaved: each round runs every case once
  // and every baseline once, and the median round of each is compared.
  const lat =
    (idle: IdleStrategy, engine: boolean, pin = true) =>
    () =>
      latCase(t, 64, idle, engine, undefined, pin);
  const bw = (size: number, engine: boolean) => () => bwCase(t, size, 'busy-spin', engine);
  const cases = {
    latJs: lat('busy-spin', false),
    latEng: lat('busy-spin', true),
    latBackoff: lat('backoff', false),
    latEvent: lat('event', false),
    // The same, unpinned: the C baselines are not pinned either, and on a loaded VM placement decides.
    latEventFree: lat('event', false, false),
    bw64: bw(64, false),
    bw64Eng: bw(64, true),
    bw64k: bw(65_536, false),
    bw64kEng: bw(65_536, true),
  };
  type CaseName = keyof typeof cases;
  const rounds = new Map<CaseName, CaseRow[]>();
  const baseRounds = new Map<string, Baseline[]>();
  const addBase = (b: Baseline | undefined) => {
    if (!b || 'error' in b) return;
    const key = `${b.baseline}/${b.size}`;
    baseRounds.set(key, [...(baseRounds.get(key) ?? []), b]);
  };
  for (let k = 0; k < repeat; k++) {
    log(`round ${k + 1} of ${repeat}`);
    for (const [name, c] of Object.entries(cases) as Array<[CaseName, () => Promise<CaseRow>]>)
      rounds.set(name, [...(rounds.get(name) ?? []), await c()]);
    if (!o.baselines) continue;
    for (const b of await scriptBaselines(64, 20_000, log)) addBase(b);
    addBase(await nodeTcpBaseline(64));
    addBase(await sockperfPinnedBaseline(64, log));
    addBase(memcpyBaseline(64));
    addBase(memcpyBaseline(65_536));
  }
  const pick = (name: CaseName): CaseRow => {
    const r = median(rounds.get(name)!, (x) => (x.bench === 'lat' ? x.p50_us : -x.msgs_per_s));
    printRow(o, r);
    return r;
  };
  const latJs = pick('latJs');
  const latEng = pick('latEng');
  const latBackoff = pick('latBackoff');
  const latEvent = pick('latEvent');
  const latEventFree = pick('latEventFree');
  const bw64 = pick('bw64');
  pick('bw64Eng');
  const bw64k = pick('bw64k');
  pick('bw64kEng');
  const idle = await idleCase();
  printRow(o, idle);
  for (const rows of baseRounds.values()) keep(rows);
  const v = (name: string, size: number, k: string) => {
    const b = findBaseline(baselines, name, size);
    return b ? Number(b[k]) : Number.NaN;
  };
  const fi = v('fi_pingpong_shm', 64, 'one_way_us');
  const ucxLat = v('ucx_am_lat_posix', 64, 'one_way_us');
  const ucxBw = v('ucx_am_bw_posix', 64, 'msgs_per_s');
  const sock = v('sockperf_tcp', 64, 'one_way_us');
  const sockPinned = v('sockperf_tcp_pinned', 64, 'one_way_us');
  const nodeTcp = v('node_net_tcp', 64, 'one_way_us');
  const mem = v('memcpy', 65_536, 'gb_per_s');
  const targets: Array<[string, number, string, (x: number) => boolean | undefined]> = [
    ['lat js busy-spin p50 / fi_pingpong_shm', latJs.p50_us / fi, '<= 3', (x) => atMost(x, 3)],
    ['node_net_tcp / lat js busy-spin p50', nodeTcp / latJs.p50_us, '>= 30', (x) => atLeast(x, 30)],
    ['lat engine p50 / ucx_am_lat_posix', latEng.p50_us / ucxLat, '<= 1', (x) => atMost(x, 1)],
    ['bw js 64 B msgs/s / ucx_am_bw_posix', bw64.msgs_per_s / ucxBw, '>= 0.7', (x) => atLeast(x, 0.7)],
    ['bw js 64 KiB GB/s / memcpy', bw64k.gb_per_s / mem, '>= 0.7', (x) => atLeast(x, 0.7)],
    ['lat event p50 / sockperf_tcp', latEvent.p50_us / sock, '<= 1', (x) => atMost(x, 1)],
    [
      'lat event p50 / sockperf_tcp_pinned (both pinned)',
      latEvent.p50_us / sockPinned,
      '<= 1',
      (x) => atMost(x, 1),
    ],
    [
      'lat event p50 unpinned / sockperf_tcp (unpinned)',
      latEventFree.p50_us / sock,
      '<= 1',
      (x) => atMost(x, 1),
    ],
    [
      'lat backoff p50 / lat busy-spin p50',
      latBackoff.p50_us / latJs.p50_us,
      'near 1 (<= 2)',
      (x) => atMost(x, 2),
    ],
    [
      'idle event link CPU s during 3 s idle (rx + tx)',
      idle.rx_idle_cpu_s + idle.tx_idle_cpu_s,
      '~0 (<= 0.03)',
      (x) => atMost(x, 0.03),
    ],
  ];
  for (const [name, value, target, ok] of targets) ratio(o, name, value, target, ok(value));
}

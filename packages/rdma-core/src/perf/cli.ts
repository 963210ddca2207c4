#!/usr/bin/env node
/**
 * rdmaq-perf — perftest-style benchmarks of the rdmaq queue (ib_write_lat / ib_write_bw in spirit).
 *
 *   rdmaq-perf lat|bw|idle|all --transport shm [--provider P] --size N --iters N
 *              --idle busy-spin|backoff|event [--engine] [--json] [--no-baselines]
 *
 * Each case starts both ends itself, as two processes pinned to cpu0 and cpu1 (taskset). Baselines are
 * measured in the same invocation: ../shared/bench/baselines.sh (resolved from the repository root), a
 * plain Node `net` TCP ping-pong on loopback and memcpy bandwidth measured in the addon; ratios are printed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../native.js';
import type { IdleStrategy } from '../types.js';
import { type Percentiles, sparsePercentiles } from './stats.js';
import { runWorker, type WorkerConfig } from './worker.js';

const HERE = fileURLToPath(import.meta.url);
const CAPACITY = 4 * 1024 * 1024;

interface Options {
  cmd: 'lat' | 'bw' | 'idle' | 'all';
  transport: 'shm' | 'fabric';
  provider: string;
  size: number;
  iters?: number;
  idle: IdleStrategy;
  engine: boolean;
  json: boolean;
  baselines: boolean;
  /** Runs per case and baseline; the median run is reported (default 3 for `all`, else 1). */
  repeat?: number;
}

const USAGE = `usage: rdmaq-perf lat|bw|idle|all [--transport shm|fabric] [--provider P] [--size N] [--iters N]
                  [--idle busy-spin|backoff|event] [--engine] [--json] [--no-baselines] [--repeat N]`;

function fail(msg: string): never {
  process.stderr.write(`rdmaq-perf: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv: string[]): Options {
  const cmd = argv[0];
  if (cmd !== 'lat' && cmd !== 'bw' && cmd !== 'idle' && cmd !== 'all')
    fail(`unknown command ${cmd ?? '(none)'}`);
  const o: Options = {
    cmd,
    transport: 'shm',
    provider: 'shm', // shm transport; for --transport fabric the default provider is net
    size: 64,
    idle: 'busy-spin',
    engine: false,
    json: false,
    baselines: true,
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    const int = () => {
      const v = Number(val());
      if (!Number.isInteger(v) || v < 0) fail(`${a} needs a non-negative integer`);
      return v;
    };
    if (a === '--transport') {
      const t = val();
      if (t !== 'shm' && t !== 'fabric') fail('--transport is shm or fabric');
      o.transport = t;
    } else if (a === '--provider') o.provider = val();
    else if (a === '--size') o.size = int();
    else if (a === '--iters') o.iters = int();
    else if (a === '--idle') {
      const v = val();
      if (v !== 'busy-spin' && v !== 'backoff' && v !== 'event')
        fail('--idle is busy-spin, backoff or event');
      o.idle = v;
    } else if (a === '--engine') o.engine = true;
    else if (a === '--json') o.json = true;
    else if (a === '--no-baselines') o.baselines = false;
    else if (a === '--repeat') o.repeat = Math.max(1, int());
    else fail(`unknown option ${a}`);
  }
  if (o.transport === 'shm' && o.provider !== 'shm') {
    fail(
      `--transport shm has one provider, shm (libfabric providers such as ${o.provider} go with --transport fabric)`,
    );
  }
  if (o.size > CAPACITY / 2 - 24)
    fail(`--size must be at most ${CAPACITY / 2 - 24} for the ${CAPACITY}-byte ring`);
  return o;
}

// ---- worker processes -----------------------------------------------------------------------------------

type Msg = { t: string; [k: string]: unknown };

class Worker {
  readonly child: ChildProcess;
  private queue: Msg[] = [];
  private waiting: ((m: Msg) => void) | undefined;
  stderr = '';

  /** `cpu` undefined: no pinning, the scheduler places the process (as it does for the C baselines). */
  constructor(cfg: WorkerConfig, cpu: number | undefined, wrap: string[] = []) {
    const node = [process.execPath, HERE, '__worker', JSON.stringify(cfg)];
    const pin =
      cpu !== undefined && existsSync('/usr/bin/taskset') ? ['/usr/bin/taskset', '-c', String(cpu)] : [];
    const argv = [...wrap, ...pin, ...node];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.child.on('message', (m: Msg) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(m);
      } else this.queue.push(m);
    });
  }

  next(timeoutMs = 120_000): Promise<Msg> {
    const q = this.queue.shift();
    if (q) return q.t === 'fatal' ? Promise.reject(new Error(String(q.message))) : Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker timed out; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`worker exited early; stderr: ${this.stderr.trim()}`));
      };
      this.child.once('exit', onExit);
      this.waiting = (m) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        if (m.t === 'fatal') reject(new Error(`${m.code ?? ''} ${String(m.message)}`));
        else resolve(m);
      };
    });
  }

  send(m: Msg): void {
    if (this.child.connected) this.child.send(m);
  }

  exited(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((r) => this.child.once('exit', () => r()));
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Runs a two-worker case: a (cpu0) and b (cpu1) with the listening/connect/run choreography. */
async function pairCase(
  a: WorkerConfig,
  b: WorkerConfig,
  wrap: string[] = [],
  pin = true,
): Promise<[Msg, Msg, Worker, Worker]> {
  const wa = new Worker(a, pin ? 0 : undefined, wrap);
  const wb = new Worker(b, pin ? 1 : undefined, wrap);
  try {
    await Promise.all([wa.next(), wb.next()]); // listening
    wa.send({ t: 'connect' });
    wb.send({ t: 'connect' });
    await Promise.all([wa.next(), wb.next()]); // connected
    wa.send({ t: 'run' });
    wb.send({ t: 'run' });
    const [ra, rb] = await Promise.all([wa.next(600_000), wb.next(600_000)]);
    wa.send({ t: 'exit' });
    wb.send({ t: 'exit' });
    await Promise.all([wa.exited(), wb.exited()]);
    return [ra, rb, wa, wb];
  } finally {
    wa.kill();
    wb.kill();
  }
}

// ---- cases -------------------------------------------------------------------------------------------------

interface CaseRow {
  bench: 'lat' | 'bw';
  transport: string;
  provider: string;
  size: number;
  idle: IdleStrategy;
  engine: boolean;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  msgs_per_s: number;
  gb_per_s: number;
  /** Only on the extra unpinned row of `all` (placement left to the scheduler, like the C baselines). */
  pinned?: false;
}

const us = (ns: number) => Math.round(ns) / 1000;
const round = (x: number, d = 3) => Number(x.toFixed(d));

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'rdmaq-perf-'));
}

async function latCase(
  o: Options,
  size: number,
  idle: IdleStrategy,
  engine: boolean,
  iters?: number,
  pin = true,
): Promise<CaseRow> {
  const n = iters ?? (idle === 'busy-spin' ? 200_000 : 20_000);
  const dir = tmp();
  try {
    const base = {
      size,
      iters: n,
      warmup: Math.min(10_000, Math.ceil(n / 10)),
      idle,
      engine,
      capacity: CAPACITY,
    };
    const sa = join(dir, 'a.sock');
    const sb = join(dir, 'b.sock');
    const [ra] = await pairCase(
      { ...base, role: 'lat-init', sockSelf: sa, sockPeer: sb },
      { ...base, role: 'lat-pong', sockSelf: sb, sockPeer: sa },
      [],
      pin,
    );
    const p: Percentiles = engine
      ? sparsePercentiles(ra.buckets as Array<[number, number]>, ra.maxNs as number)
      : (ra as unknown as Percentiles);
    const elapsed = ra.elapsedNs as number;
    const msgs = (2 * n) / (elapsed / 1e9); // one-way messages per second (ping + pong)
    return {
      bench: 'lat',
      transport: o.transport,
      provider: o.provider,
      size,
      idle,
      engine,
      p50_us: us(p.p50),
      p99_us: us(p.p99),
      p999_us: us(p.p999),
      max_us: us(p.max),
      msgs_per_s: Math.round(msgs),
      gb_per_s: round((msgs * size) / 1e9),
      ...(pin ? {} : { pinned: false }),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bwCase(
  o: Options,
  size: number,
  idle: IdleStrategy,
  engine: boolean,
  iters?: number,
): Promise<CaseRow> {
  const n = iters ?? (size <= 1024 ? 10_000_000 : Math.max(20_000, Math.floor(8e9 / size)));
  const dir = tmp();
  try {
    const base = { size, iters: n, warmup: 0, idle, engine, capacity: CAPACITY };
    const sock = join(dir, 'rx.sock');
    const [, rb] = await pairCase(
      { ...base, role: 'bw-send', sockPeer: sock },
      { ...base, role: 'bw-recv', sockSelf: sock },
    );
    const elapsed = rb.elapsedNs as number;
    const p = sparsePercentiles(rb.queue as Array<[number, number]>);
    return {
      bench: 'bw',
      transport: o.transport,
      provider: o.provider,
      size,
      idle,
      engine,
      p50_us: us(p.p50),
      p99_us: us(p.p99),
      p999_us: us(p.p999),
      max_us: us(p.max),
      msgs_per_s: Math.round(n / (elapsed / 1e9)),
      gb_per_s: round((rb.bytes as number) / elapsed),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
      size: 0,
      iters: 0,
      warmup: 0,
      idle: 'event' as const,
      engine: false,
      capacity: CAPACITY,
      seconds,
    };
    const sock = join(dir, 'rx.sock');
    const wrap = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'rdmaq-cpu %U %S'] : [];
    const [ra, rb, wa, wb] = await pairCase(
      { ...base, role: 'idle-tx', sockPeer: sock },
      { ...base, role: 'idle-rx', sockSelf: sock },
      wrap,
    );
    const cpu = (w: Worker) => {
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

// ---- baselines ---------------------------------------------------------------------------------------------

type Baseline = { baseline: string; size: number; [k: string]: unknown };

function repoRoot(): string | undefined {
  let d = dirname(HERE);
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, 'pnpm-workspace.yaml'))) return d;
    d = dirname(d);
  }
  return undefined;
}

async function scriptBaselines(size: number, iters: number, log: (s: string) => void): Promise<Baseline[]> {
  const root = repoRoot();
  const script = root ? resolve(root, '..', 'shared', 'bench', 'baselines.sh') : undefined;
  if (!script || !existsSync(script)) {
    log(
      `baselines.sh not found (looked for <repo>/../shared/bench/baselines.sh = ${script ?? '?'}): C baselines skipped`,
    );
    return [];
  }
  const out = await new Promise<string>((resolveOut) => {
    execFile(
      'bash',
      [script, '--size', String(size), '--iters', String(iters)],
      { timeout: 400_000 },
      (err, stdout) => {
        if (err) log(`baselines.sh ended with ${err.message.split('\n')[0]}`);
        resolveOut(stdout ?? '');
      },
    );
  });
  const rows: Baseline[] = [];
  for (const line of out.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { name: string; size?: number; [k: string]: unknown };
      const { name, ...rest } = j;
      rows.push({ baseline: name, ...rest, size: j.size ?? size });
    } catch {
      log(`unparsable baselines.sh line: ${line}`);
    }
  }
  return rows;
}

async function nodeTcpBaseline(size: number, iters = 20_000): Promise<Baseline> {
  const base = { size, iters, warmup: 2000, idle: 'event' as const, engine: false, capacity: CAPACITY };
  const echo = new Worker({ ...base, role: 'tcp-echo' }, 1);
  try {
    const l = await echo.next();
    const ping = new Worker({ ...base, role: 'tcp-ping', port: l.port as number }, 0);
    const r = await ping.next(300_000);
    echo.send({ t: 'exit' });
    return { baseline: 'node_net_tcp', size, one_way_us: us(r.p50 as number), p99_us: us(r.p99 as number) };
  } finally {
    echo.kill();
  }
}

/**
 * sockperf's TCP ping-pong with both ends pinned to cpu0/cpu1 like our cases (baselines.sh leaves them to the
 * scheduler, which puts a ping-pong pair on one core): the like-for-like peer of the pinned event case.
 */
async function sockperfPinnedBaseline(size: number, log: (s: string) => void): Promise<Baseline | undefined> {
  if (!existsSync('/usr/bin/taskset') || !existsSync('/usr/bin/sockperf')) {
    log('sockperf or taskset missing: sockperf_tcp_pinned skipped');
    return undefined;
  }
  const port = await new Promise<number>((res) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
  const server = spawn(
    '/usr/bin/taskset',
    ['-c', '1', 'sockperf', 'sr', '--tcp', '-i', '127.0.0.1', '-p', String(port)],
    {
      stdio: 'ignore',
    },
  );
  try {
    await new Promise((r) => setTimeout(r, 500));
    const out = await new Promise<string>((res) => {
      execFile(
        '/usr/bin/taskset',
        [
          '-c',
          '0',
          'sockperf',
          'pp',
          '--tcp',
          '-i',
          '127.0.0.1',
          '-p',
          String(port),
          '-t',
          '2',
          '-m',
          String(size),
        ],
        { timeout: 30_000 },
        (_err, stdout, stderr) => res(`${stdout}${stderr}`),
      );
    });
    const p50 = /percentile 50\.000 =\s*([\d.]+)/.exec(out);
    const p99 = /percentile 99\.000 =\s*([\d.]+)/.exec(out);
    if (!p50) {
      log('sockperf_tcp_pinned: no result');
      return undefined;
    }
    return {
      baseline: 'sockperf_tcp_pinned',
      size,
      one_way_us: Number(p50[1]),
      p99_us: Number(p99?.[1] ?? Number.NaN),
    };
  } finally {
    server.kill('SIGKILL');
  }
}

function memcpyBaseline(size: number): Baseline {
  return { baseline: 'memcpy', size, gb_per_s: round(native.memcpyBandwidth(size, 500, CAPACITY), 2) };
}

// ---- output -----------------------------------------------------------------------------------------------

function printRow(o: Options, row: CaseRow | Baseline | Record<string, unknown>): void {
  if (o.json) {
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  if ('bench' in row) {
    const r = row as CaseRow;
    const what = `${r.bench} ${r.transport}/${r.provider} ${r.size} B ${r.idle}${r.engine ? ' engine' : ' js'}${r.pinned === false ? ' unpinned' : ''}`;
    process.stdout.write(
      `${what.padEnd(40)} p50 ${r.p50_us} µs  p99 ${r.p99_us}  p99.9 ${r.p999_us}  max ${r.max_us}  ` +
        `${(r.msgs_per_s / 1e6).toFixed(2)} M msg/s  ${r.gb_per_s} GB/s\n`,
    );
  } else if ('baseline' in row) {
    const { baseline, ...rest } = row as Baseline;
    process.stdout.write(`baseline ${String(baseline).padEnd(31)} ${JSON.stringify(rest)}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(row)}\n`);
  }
}

function ratio(o: Options, name: string, value: number, target: string, ok: boolean | undefined): void {
  const row = { ratio: name, value: round(value, 2), target, met: ok };
  if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`);
  else
    process.stdout.write(
      `ratio ${name.padEnd(46)} ${Number.isFinite(value) ? round(value, 2) : 'n/a'}  (${ok === undefined ? target : `target ${target}`}) ${ok === undefined ? '' : ok ? 'MET' : 'MISSED'}\n`,
    );
}

const find = (bs: Baseline[], name: string, size: number) =>
  bs.find((b) => b.baseline === name && b.size === size && !('error' in b));

// ---- main -------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.argv[2] === '__worker') {
    await runWorker(JSON.parse(process.argv[3]!) as WorkerConfig);
    return;
  }
  const o = parse(process.argv.slice(2));
  if (o.transport === 'fabric') {
    // The fabric cases (issue 4) live in src/fabric/perf.ts, same rows and JSON fields.
    const { runFabricPerf } = await import('../fabric/perf.js');
    await runFabricPerf({
      cmd: o.cmd,
      provider: o.provider === 'shm' ? 'net' : o.provider,
      size: o.size,
      ...(o.iters === undefined ? {} : { iters: o.iters }),
      idle: o.idle,
      engine: o.engine,
      json: o.json,
      baselines: o.baselines,
      ...(o.repeat === undefined ? {} : { repeat: o.repeat }),
    });
    return;
  }
  const log = (s: string) => process.stderr.write(`rdmaq-perf: ${s}\n`);
  const repeat = o.repeat ?? (o.cmd === 'all' ? 5 : 1);
  /** Middle element by `key` (the median run; this VM's speed jumps between runs). */
  const median = <T>(items: T[], key: (t: T) => number): T => {
    const sorted = [...items].sort((a, b) => key(a) - key(b));
    return sorted[Math.floor((sorted.length - 1) / 2)]!;
  };
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
    addMemcpy(size);
  };
  const addMemcpy = (size: number) => {
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

  if (o.cmd === 'lat') {
    const r = await run(() => latCase(o, o.size, o.idle, o.engine, o.iters));
    await addBaselines(o.size);
    ratiosTo(r);
  } else if (o.cmd === 'bw') {
    const r = await run(() => bwCase(o, o.size, o.idle, o.engine, o.iters));
    await addBaselines(o.size);
    ratiosTo(r);
  } else if (o.cmd === 'idle') {
    printRow(o, await idleCase());
  } else {
    // The issue's targets, all in one run (64-byte records unless said). This VM's speed jumps from one
    // minute to the next, so the cases and the baselines are interleaved: each round runs every case once
    // and every baseline once, and the median round of each is compared.
    const cases = {
      latJs: () => latCase(o, 64, 'busy-spin', false),
      latEng: () => latCase(o, 64, 'busy-spin', true),
      latBackoff: () => latCase(o, 64, 'backoff', false),
      latEvent: () => latCase(o, 64, 'event', false),
      // The same, unpinned: the C baselines are not pinned either, and on a loaded VM placement decides.
      latEventFree: () => latCase(o, 64, 'event', false, undefined, false),
      bw64: () => bwCase(o, 64, 'busy-spin', false),
      bw64Eng: () => bwCase(o, 64, 'busy-spin', true),
      bw64k: () => bwCase(o, 65_536, 'busy-spin', false),
      bw64kEng: () => bwCase(o, 65_536, 'busy-spin', true),
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
    const v = (b: Baseline | undefined, k: string) => (b ? Number(b[k]) : Number.NaN);
    const fi = v(find(baselines, 'fi_pingpong_shm', 64), 'one_way_us');
    const ucxLat = v(find(baselines, 'ucx_am_lat_posix', 64), 'one_way_us');
    const ucxBw = v(find(baselines, 'ucx_am_bw_posix', 64), 'msgs_per_s');
    const sock = v(find(baselines, 'sockperf_tcp', 64), 'one_way_us');
    const nodeTcp = v(find(baselines, 'node_net_tcp', 64), 'one_way_us');
    const mem = v(find(baselines, 'memcpy', 65_536), 'gb_per_s');
    const le = (x: number, t: number) => (Number.isFinite(x) ? x <= t : undefined);
    const ge = (x: number, t: number) => (Number.isFinite(x) ? x >= t : undefined);
    ratio(o, 'lat js busy-spin p50 / fi_pingpong_shm', latJs.p50_us / fi, '<= 3', le(latJs.p50_us / fi, 3));
    ratio(
      o,
      'node_net_tcp / lat js busy-spin p50',
      nodeTcp / latJs.p50_us,
      '>= 30',
      ge(nodeTcp / latJs.p50_us, 30),
    );
    ratio(
      o,
      'lat engine p50 / ucx_am_lat_posix',
      latEng.p50_us / ucxLat,
      '<= 1',
      le(latEng.p50_us / ucxLat, 1),
    );
    ratio(
      o,
      'bw js 64 B msgs/s / ucx_am_bw_posix',
      bw64.msgs_per_s / ucxBw,
      '>= 0.7',
      ge(bw64.msgs_per_s / ucxBw, 0.7),
    );
    ratio(o, 'bw js 64 KiB GB/s / memcpy', bw64k.gb_per_s / mem, '>= 0.7', ge(bw64k.gb_per_s / mem, 0.7));
    ratio(o, 'lat event p50 / sockperf_tcp', latEvent.p50_us / sock, '<= 1', le(latEvent.p50_us / sock, 1));
    const sockPinned = v(find(baselines, 'sockperf_tcp_pinned', 64), 'one_way_us');
    ratio(
      o,
      'lat event p50 / sockperf_tcp_pinned (both pinned)',
      latEvent.p50_us / sockPinned,
      '<= 1',
      le(latEvent.p50_us / sockPinned, 1),
    );
    ratio(
      o,
      'lat event p50 unpinned / sockperf_tcp (unpinned)',
      latEventFree.p50_us / sock,
      '<= 1',
      le(latEventFree.p50_us / sock, 1),
    );
    ratio(
      o,
      'lat backoff p50 / lat busy-spin p50',
      latBackoff.p50_us / latJs.p50_us,
      'near 1 (<= 2)',
      le(latBackoff.p50_us / latJs.p50_us, 2),
    );
    const idleCpu = idle.rx_idle_cpu_s + idle.tx_idle_cpu_s;
    ratio(o, 'idle event link CPU s during 3 s idle (rx + tx)', idleCpu, '~0 (<= 0.03)', le(idleCpu, 0.03));
  }
}

main().catch((err: Error) => {
  process.stderr.write(`rdmaq-perf: ${err.message}\n`);
  process.exit(1);
});

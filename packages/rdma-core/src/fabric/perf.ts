/**
 * `rdmaq-perf … --transport fabric --provider P`: the fabric cases of the benchmark, with the same rows and
 * JSON as the shm cases (bench/transport/provider/size/idle/engine/p50_us/p99_us/p999_us/max_us/msgs_per_s/
 * gb_per_s), and the baselines measured in the same run: `fi_pingpong -p tcp` one-way latency and
 * the plain Node `net` streaming rate at the same size. Every case runs two processes pinned to cpu0 and
 * cpu1 (taskset), each end a real fabric link over loopback.
 *
 * Worker processes are this file run with `__fabric_worker <json>`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { samplePercentiles, sparsePercentiles } from '../perf/stats.js';
import type { IdleStrategy } from '../types.js';
import type { FabricListener } from './listener.js';
import { listenFabric } from './listener.js';
import { fabricNative } from './native.js';
import type { FabricReceiver } from './receiver.js';
import { connectFabric, type FabricSender } from './sender.js';

const HERE = fileURLToPath(import.meta.url);
const CAPACITY = 4 * 1024 * 1024;
const SECRET = 'rdmaq-perf-local-secret';

export interface FabricPerfOptions {
  cmd: 'lat' | 'bw' | 'idle' | 'all';
  provider: string;
  size: number;
  iters?: number;
  idle: IdleStrategy;
  /** Run the busy-spin loops inside C++ (fabricEngine*): what the N-API crossing costs. */
  engine: boolean;
  json: boolean;
  baselines: boolean;
  /** `all`: how many alternating runs of the latency cases and fi_pingpong (default 5; medians compared). */
  repeat?: number;
}

interface WorkerCfg {
  role:
    | 'lat-a'
    | 'lat-b'
    | 'bw-send'
    | 'bw-recv'
    | 'idle-send'
    | 'idle-recv'
    | 'net-send'
    | 'net-recv'
    | 'net-ping'
    | 'net-pong';
  provider: string;
  size: number;
  iters: number;
  warmup: number;
  idle: IdleStrategy;
  engine: boolean;
  seconds?: number;
}

type Msg = { t: string; [k: string]: unknown };

interface CaseRow {
  bench: 'lat' | 'bw';
  transport: 'fabric';
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
}

const us = (ns: number) => Math.round(ns) / 1000;
const round = (x: number, d = 3) => Number(x.toFixed(d));
const nowNs = () => performance.now() * 1e6;

// ---- orchestrator side --------------------------------------------------------------------------------------

class Worker {
  readonly child: ChildProcess;
  private queue: Msg[] = [];
  private waiting: ((m: Msg) => void) | undefined;
  stderr = '';
  constructor(cfg: WorkerCfg, cpu: number) {
    const node = [process.execPath, HERE, '__fabric_worker', JSON.stringify(cfg)];
    const argv = existsSync('/usr/bin/taskset') ? ['/usr/bin/taskset', '-c', String(cpu), ...node] : node;
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
  next(timeoutMs = 300_000): Promise<Msg> {
    const q = this.queue.shift();
    if (q) return q.t === 'fatal' ? Promise.reject(new Error(String(q.message))) : Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fabric worker timed out; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`fabric worker exited early; stderr: ${this.stderr.trim()}`));
      };
      this.child.once('exit', onExit);
      this.waiting = (m) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        if (m.t === 'fatal') reject(new Error(`${String(m.code ?? '')} ${String(m.message)}`));
        else resolve(m);
      };
    });
  }
  send(m: Msg): void {
    if (this.child.connected) this.child.send(m);
  }
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** a on cpu0, b on cpu1: both listen, learn each other's port, connect, run, report. */
async function pairCase(a: WorkerCfg, b: WorkerCfg): Promise<[Msg, Msg]> {
  const wa = new Worker(a, 0);
  const wb = new Worker(b, 1);
  try {
    const [la, lb] = await Promise.all([wa.next(), wb.next()]);
    wa.send({ t: 'connect', port: lb.port as number });
    wb.send({ t: 'connect', port: la.port as number });
    await Promise.all([wa.next(), wb.next()]);
    wa.send({ t: 'run' });
    wb.send({ t: 'run' });
    const r = await Promise.all([wa.next(900_000), wb.next(900_000)]);
    wa.send({ t: 'exit' });
    wb.send({ t: 'exit' });
    // Give them a moment to close their links cleanly, but never outlive us.
    setTimeout(() => {
      wa.kill();
      wb.kill();
    }, 2000).unref();
    return r;
  } catch (err) {
    wa.kill();
    wb.kill();
    throw err;
  }
}

async function latCase(
  o: FabricPerfOptions,
  size: number,
  idleAsked: IdleStrategy,
  engine: boolean,
  iters?: number,
): Promise<CaseRow> {
  // The engine loops spin: say so in the row rather than label a spinning run "event".
  const idle = engine ? 'busy-spin' : idleAsked;
  const n = iters ?? (idle === 'busy-spin' ? 100_000 : 20_000);
  const warmup = Math.min(5000, Math.ceil(n / 10));
  const base = { provider: o.provider, size, iters: n, warmup, idle, engine };
  const [ra] = await pairCase({ ...base, role: 'lat-a' }, { ...base, role: 'lat-b' });
  const msgs = (2 * n) / ((ra.elapsedNs as number) / 1e9);
  return {
    bench: 'lat',
    transport: 'fabric',
    provider: o.provider,
    size,
    idle,
    engine,
    p50_us: us(ra.p50 as number),
    p99_us: us(ra.p99 as number),
    p999_us: us(ra.p999 as number),
    max_us: us(ra.max as number),
    msgs_per_s: Math.round(msgs),
    gb_per_s: round((msgs * size) / 1e9),
  };
}

async function bwCase(
  o: FabricPerfOptions,
  size: number,
  idleAsked: IdleStrategy,
  engine: boolean,
  iters?: number,
): Promise<CaseRow> {
  const idle = engine ? 'busy-spin' : idleAsked;
  const n = iters ?? (size <= 1024 ? 2_000_000 : Math.max(20_000, Math.floor(4e9 / size)));
  const base = { provider: o.provider, size, iters: n, warmup: 0, idle, engine };
  const [, rb] = await pairCase({ ...base, role: 'bw-send' }, { ...base, role: 'bw-recv' });
  const elapsed = rb.elapsedNs as number;
  // Queue latency (send timestamp → delivery): every record from the receiver's histogram (JS), or every
  // 64th record sampled by the engine loop.
  const p = engine
    ? samplePercentiles(Float64Array.from(rb.queue as number[]))
    : sparsePercentiles(rb.queue as Array<[number, number]>);
  return {
    bench: 'bw',
    transport: 'fabric',
    provider: o.provider,
    size,
    idle,
    engine,
    p50_us: us(p.p50),
    p99_us: us(p.p99),
    p999_us: us(p.p999),
    max_us: us(p.max),
    msgs_per_s: Math.round(n / (elapsed / 1e9)),
    gb_per_s: round((n * size) / elapsed),
  };
}

/** An idle link (after a little traffic) for `seconds`: CPU of both processes, in % of one core. */
async function idleCase(o: FabricPerfOptions, idle: IdleStrategy, seconds = 3) {
  const base = { provider: o.provider, size: 64, iters: 100, warmup: 0, idle, engine: false, seconds };
  const [ra, rb] = await pairCase({ ...base, role: 'idle-send' }, { ...base, role: 'idle-recv' });
  const tx = ra.cpuS as number;
  const rx = rb.cpuS as number;
  return {
    name: `idle_${idle}_fabric_link`,
    provider: o.provider,
    seconds,
    rx_cpu_s: round(rx, 3),
    tx_cpu_s: round(tx, 3),
    core_pct: round(((rx + tx) / seconds) * 100, 2),
  };
}

type Baseline = { baseline: string; size: number; [k: string]: unknown };

/** fi_pingpong (fabtests) over loopback, server cpu0, client cpu1: one-way µs (usec/xfer). */
async function fiPingpong(provider: string, size: number, iters = 10_000): Promise<Baseline> {
  const name = `fi_pingpong_${provider.split(';')[0]}`;
  if (!existsSync('/usr/bin/fi_pingpong'))
    return { baseline: name, size, error: 'fi_pingpong not installed' };
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const args = ['-p', provider, '-e', 'rdm', '-S', String(size), '-I', String(iters), '-B', String(port)];
  const server = spawn('/usr/bin/taskset', ['-c', '0', '/usr/bin/fi_pingpong', ...args], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const out = await new Promise<string>((resolve) => {
      execFile(
        '/usr/bin/taskset',
        [
          '-c',
          '1',
          '/usr/bin/fi_pingpong',
          '-p',
          provider,
          '-e',
          'rdm',
          '-S',
          String(size),
          '-I',
          String(iters),
          '-P',
          String(port),
          '127.0.0.1',
        ],
        { timeout: 120_000 },
        (_err, stdout) => resolve(stdout ?? ''),
      );
    });
    const line = out.split('\n').find((l) => new RegExp(`^${size}\\s`).test(l.trim()));
    const cols = line?.trim().split(/\s+/);
    const usx = cols ? Number(cols[6]) : Number.NaN;
    if (!Number.isFinite(usx))
      return { baseline: name, size, error: `unparsable fi_pingpong output: ${out.slice(-200)}` };
    return { baseline: name, size, one_way_us: usx };
  } finally {
    server.kill('SIGKILL');
  }
}

/** Plain Node `net` streaming on loopback: one socket.write per message (back-pressure respected). */
async function nodeNetStream(size: number, iters = 1_000_000): Promise<Baseline> {
  const base = { provider: 'tcp', size, iters, warmup: 0, idle: 'busy-spin' as const, engine: false };
  const [, rb] = await pairCase({ ...base, role: 'net-send' }, { ...base, role: 'net-recv' });
  return {
    baseline: 'node_net_stream',
    size,
    msgs_per_s: Math.round(iters / ((rb.elapsedNs as number) / 1e9)),
  };
}

/**
 * Plain Node `net` ping-pong on loopback (TCP_NODELAY, ends pinned like ours): one-way p50 µs. The peer of a
 * sleeping fabric consumer: both wake from epoll in libuv for every message.
 */
async function nodeNetPingPong(size: number, iters = 20_000): Promise<Baseline> {
  const base = { provider: 'tcp', size, iters, warmup: 2000, idle: 'event' as const, engine: false };
  const [ra] = await pairCase({ ...base, role: 'net-ping' }, { ...base, role: 'net-pong' });
  return {
    baseline: 'node_net_pingpong',
    size,
    one_way_us: us(ra.p50 as number),
    p99_us: us(ra.p99 as number),
  };
}

/** `ucx_tag_lat_tcp_sleep` from ../shared/bench/baselines.sh: UCX's own event mode over TCP (one-way µs). */
async function ucxSleepBaseline(size: number): Promise<Baseline> {
  const here = dirname(HERE);
  // dist/fabric → package → packages → repository root → its parent holds shared/
  const script = resolve(here, '..', '..', '..', '..', '..', 'shared', 'bench', 'baselines.sh');
  if (!existsSync(script)) return { baseline: 'ucx_tag_lat_tcp_sleep', size, error: `no ${script}` };
  const out = await new Promise<string>((done) => {
    execFile(
      'bash',
      [script, '--size', String(size), '--iters', '10000'],
      { timeout: 300_000 },
      (_e, stdout) => done(stdout ?? ''),
    );
  });
  for (const line of out.split('\n')) {
    try {
      const j = JSON.parse(line) as { name?: string; one_way_us?: number };
      if (j.name === 'ucx_tag_lat_tcp_sleep' && Number.isFinite(j.one_way_us))
        return { baseline: 'ucx_tag_lat_tcp_sleep', size, one_way_us: j.one_way_us };
    } catch {
      // not a JSON line
    }
  }
  return { baseline: 'ucx_tag_lat_tcp_sleep', size, error: 'baselines.sh printed no ucx_tag_lat_tcp_sleep' };
}

function printRow(o: FabricPerfOptions, row: Record<string, unknown>): void {
  if (o.json) {
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  if ('bench' in row) {
    const r = row as unknown as CaseRow;
    const what = `${r.bench} ${r.transport}/${r.provider} ${r.size} B ${r.idle} ${r.engine ? 'engine' : 'js'}`;
    process.stdout.write(
      `${what.padEnd(40)} p50 ${r.p50_us} µs  p99 ${r.p99_us}  p99.9 ${r.p999_us}  max ${r.max_us}  ` +
        `${(r.msgs_per_s / 1e6).toFixed(2)} M msg/s  ${r.gb_per_s} GB/s\n`,
    );
  } else if ('baseline' in row) {
    const { baseline, ...rest } = row;
    process.stdout.write(`baseline ${String(baseline).padEnd(31)} ${JSON.stringify(rest)}\n`);
  } else process.stdout.write(`${JSON.stringify(row)}\n`);
}

function ratio(
  o: FabricPerfOptions,
  name: string,
  value: number,
  target: string,
  ok: boolean | undefined,
): void {
  const row = { ratio: name, value: round(value, 2), target, met: ok };
  if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`);
  else
    process.stdout.write(
      `ratio ${name.padEnd(46)} ${Number.isFinite(value) ? round(value, 2) : 'n/a'}  (target ${target}) ${ok === undefined ? '' : ok ? 'MET' : 'MISSED'}\n`,
    );
}

/** Runs the fabric cases of rdmaq-perf and prints them (rows, baselines, ratios). */
export async function runFabricPerf(o: FabricPerfOptions): Promise<void> {
  const show = (r: Record<string, unknown>) => printRow(o, r);
  if (o.cmd === 'lat') {
    show({ ...(await latCase(o, o.size, o.idle, o.engine, o.iters)) });
    if (o.baselines) show(await fiPingpong('tcp', o.size));
    return;
  }
  if (o.cmd === 'bw') {
    show({ ...(await bwCase(o, o.size, o.idle, o.engine, o.iters)) });
    if (o.baselines) show(await nodeNetStream(o.size));
    return;
  }
  if (o.cmd === 'idle') {
    show(await idleCase(o, o.idle === 'busy-spin' ? 'event' : o.idle));
    return;
  }
  // This VM's speed jumps between runs (and within one): the busy-spin latency cases (JS and engine) and
  // their baseline run `repeat` times each, interleaved, and the medians are compared.
  const repeat = Math.max(1, o.repeat ?? 5);
  const jsRuns: CaseRow[] = [];
  const engineRuns: CaseRow[] = [];
  const fiRuns: number[] = [];
  for (let k = 0; k < repeat; k++) {
    const js = await latCase(o, 64, 'busy-spin', false);
    show({ ...js, run: k + 1 });
    jsRuns.push(js);
    const en = await latCase(o, 64, 'busy-spin', true);
    show({ ...en, run: k + 1 });
    engineRuns.push(en);
    if (o.baselines) {
      const f = await fiPingpong('tcp', 64);
      show({ ...f, run: k + 1 });
      fiRuns.push(Number.isFinite(Number(f.one_way_us)) ? Number(f.one_way_us) : Number.NaN);
    }
  }
  const median = (xs: number[]): number => {
    const v = xs.filter(Number.isFinite).sort((x, y) => x - y);
    return v.length ? v[(v.length - 1) >> 1]! : Number.NaN;
  };
  const jsP50 = median(jsRuns.map((r) => r.p50_us));
  const engineP50 = median(engineRuns.map((r) => r.p50_us));
  // Event mode (sleeping on the CQ wait fd) beside busy-spin and the peers that also sleep in epoll: Node's
  // own net ping-pong and UCX's event mode. Interleaved, medians compared.
  const eventRuns: number[] = [];
  const spinRuns: number[] = [];
  const nodeRuns: number[] = [];
  for (let k = 0; k < repeat; k++) {
    const ev = await latCase(o, 64, 'event', false);
    show({ ...ev, run: k + 1 });
    eventRuns.push(ev.p50_us);
    const sp = await latCase(o, 64, 'busy-spin', false, 20_000);
    show({ ...sp, run: k + 1 });
    spinRuns.push(sp.p50_us);
    if (o.baselines) {
      const nn = await nodeNetPingPong(64);
      show({ ...nn, run: k + 1 });
      nodeRuns.push(Number(nn.one_way_us));
    }
  }
  show({ ...(await latCase(o, 64, 'backoff', false)) });
  const bw = await bwCase(o, 64, 'busy-spin', false);
  show({ ...bw });
  const bwEngine = await bwCase(o, 64, 'busy-spin', true);
  show({ ...bwEngine });
  show({ ...(await bwCase(o, 65_536, 'busy-spin', false)) });
  const idleB = await idleCase(o, 'backoff');
  show(idleB);
  const idleE = await idleCase(o, 'event');
  show(idleE);
  if (!o.baselines) return;
  const fiUs = median(fiRuns);
  show({ baseline: 'fi_pingpong_tcp', size: 64, one_way_us: fiUs, median_of: fiRuns.length });
  const net = await nodeNetStream(64);
  show(net);
  const netRate = Number(net.msgs_per_s);
  const le = (x: number, t: number) => (Number.isFinite(x) ? x <= t : undefined);
  const ge = (x: number, t: number) => (Number.isFinite(x) ? x >= t : undefined);
  // fi_pingpong prints the mean one-way time (usec/xfer); ours is the p50, as the target asks.
  ratio(
    o,
    `lat busy-spin js p50 / fi_pingpong_tcp, medians of ${repeat} (${o.provider})`,
    jsP50 / fiUs,
    '<= 1',
    le(jsP50 / fiUs, 1),
  );
  ratio(
    o,
    `lat busy-spin engine p50 / fi_pingpong_tcp, medians of ${repeat} (${o.provider})`,
    engineP50 / fiUs,
    '<= 1',
    le(engineP50 / fiUs, 1),
  );
  ratio(
    o,
    `bw 64 B js msgs/s / node_net_stream (${o.provider})`,
    bw.msgs_per_s / netRate,
    '>= 2',
    ge(bw.msgs_per_s / netRate, 2),
  );
  ratio(
    o,
    `bw 64 B engine msgs/s / node_net_stream (${o.provider})`,
    bwEngine.msgs_per_s / netRate,
    'info',
    undefined,
  );
  ratio(o, 'idle backoff link, % of a core', idleB.core_pct, '< 2', idleB.core_pct < 2);
  ratio(o, 'idle event link, % of a core', idleE.core_pct, '<= 0.1', idleE.core_pct <= 0.1);
  const evP50 = median(eventRuns);
  const spinP50 = median(spinRuns);
  const nodeP50 = median(nodeRuns);
  const ucx = await ucxSleepBaseline(64);
  show(ucx);
  const ucxUs = Number(ucx.one_way_us);
  const spinLimit = o.provider === 'net' ? 1.5 : 2.5;
  ratio(
    o,
    `lat event p50 / busy-spin p50, medians of ${repeat} (${o.provider})`,
    evP50 / spinP50,
    `<= ${spinLimit}`,
    le(evP50 / spinP50, spinLimit),
  );
  ratio(
    o,
    `lat event p50 / node_net_pingpong p50, medians of ${repeat} (${o.provider})`,
    evP50 / nodeP50,
    '<= 0.75',
    le(evP50 / nodeP50, 0.75),
  );
  ratio(
    o,
    `lat event p50 / ucx_tag_lat_tcp_sleep (${o.provider})`,
    evP50 / ucxUs,
    '<= 1',
    le(evP50 / ucxUs, 1),
  );
}

// ---- worker side ------------------------------------------------------------------------------------------------

const toParent = (m: Msg) => process.send?.(m);
/** Round trips (×10 records for streaming) per engine call: tens of ms, well inside the heartbeat period. */
const ENGINE_CHUNK = 2000;
/** JS busy-spin loops: how long one native poll spins on the CQ before the loop drives the sender. */
const POLL_SPIN_NS = 50_000;
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));
function next(t: string): Promise<Msg> {
  return new Promise((resolve) => {
    const on = (m: Msg) => {
      if (m.t !== t) return;
      process.off('message', on);
      resolve(m);
    };
    process.on('message', on);
  });
}

async function fabricSetup(cfg: WorkerCfg, inLink?: string, outLink?: string) {
  const l: FabricListener = await listenFabric({ port: 0, host: '127.0.0.1', secret: SECRET });
  const rx: FabricReceiver | undefined = inLink
    ? l.accept(inLink, { idle: cfg.idle, capacity: CAPACITY, batch: 1024 })
    : undefined;
  toParent({ t: 'listening', port: l.port });
  const c = await next('connect');
  const tx: FabricSender | undefined = outLink
    ? await connectFabric({
        linkId: outLink,
        host: '127.0.0.1',
        port: c.port as number,
        secret: SECRET,
        provider: cfg.provider,
        capacity: CAPACITY,
      })
    : undefined;
  toParent({ t: 'connected' });
  await next('run');
  return { l, rx, tx };
}

async function finish(res: Msg, close: Array<{ close(): Promise<void> }>): Promise<void> {
  toParent(res);
  await next('exit');
  for (const c of close) await c.close();
  process.exit(0);
}

async function latA(cfg: WorkerCfg): Promise<void> {
  const { l, rx, tx } = await fabricSetup(cfg, 'ba', 'ab');
  const total = cfg.warmup + cfg.iters;
  const samples = new Float64Array(cfg.iters);
  const payload = Buffer.alloc(cfg.size, 0x5a);
  const t0 = nowNs();
  if (cfg.engine) {
    // Chunks of ENGINE_CHUNK round trips, so heartbeats on the control connection keep flowing.
    for (let done = 0; done < total; ) {
      const n = Math.min(ENGINE_CHUNK, total - done);
      fabricNative.fabricEngineLatPing(
        tx!.nativeHandle,
        rx!.nativeHandle,
        cfg.size,
        n,
        samples,
        done - cfg.warmup,
      );
      done += n;
      await yieldToLoop();
    }
  } else if (cfg.idle === 'busy-spin') {
    const nop = () => {};
    for (let i = 0; i < total; i++) {
      // Let the event loop run now and then (control connection heartbeats: the liveness signal).
      if (i % ENGINE_CHUNK === ENGINE_CHUNK - 1) await yieldToLoop();
      const s = nowNs();
      while (!tx!.send(payload, true)) tx!.flush();
      // Spin on the reply's CQ only (inside the native poll, up to POLL_SPIN_NS per call); our own write
      // completions are reaped between calls (each CQ read drives the provider's progress, i.e. syscalls).
      while (rx!.poll(nop, 1, POLL_SPIN_NS) === 0) tx!.flush();
      if (i >= cfg.warmup) samples[i - cfg.warmup] = (nowNs() - s) / 2;
    }
  } else {
    await new Promise<void>((resolve) => {
      let i = 0;
      let s = nowNs();
      rx!.start(() => {
        if (i >= cfg.warmup) samples[i - cfg.warmup] = (nowNs() - s) / 2;
        i += 1;
        if (i === total) {
          rx!.stop();
          resolve();
          return;
        }
        s = nowNs();
        tx!.send(payload);
      });
      tx!.send(payload);
    });
  }
  const elapsedNs = nowNs() - t0;
  await finish({ t: 'result', ...samplePercentiles(samples), elapsedNs }, [tx!, l]);
}

async function latB(cfg: WorkerCfg): Promise<void> {
  const { l, rx, tx } = await fabricSetup(cfg, 'ab', 'ba');
  const total = cfg.warmup + cfg.iters;
  const payload = Buffer.alloc(cfg.size, 0xa5);
  if (cfg.engine) {
    let last = Date.now();
    for (let done = 0; done < total; ) {
      const n = Math.min(ENGINE_CHUNK, total - done);
      const k = fabricNative.fabricEngineLatPong(tx!.nativeHandle, rx!.nativeHandle, n, 20);
      done += k;
      if (k > 0) last = Date.now();
      else if (Date.now() - last > 10_000) throw new Error('engine pong: no ping for 10 s');
      await yieldToLoop();
    }
  } else if (cfg.idle === 'busy-spin') {
    // Echo from inside the handler: the reply leaves before the ping's ring space is released.
    const echo = () => {
      while (!tx!.send(payload, true)) tx!.flush();
    };
    for (let i = 0; i < total; i++) {
      if (i % ENGINE_CHUNK === ENGINE_CHUNK - 1) await yieldToLoop();
      while (rx!.poll(echo, 1, POLL_SPIN_NS) === 0) tx!.flush();
    }
  } else {
    await new Promise<void>((resolve) => {
      let i = 0;
      rx!.start(() => {
        tx!.send(payload);
        if (++i === total) {
          rx!.stop();
          resolve();
        }
      });
    });
  }
  // Let the last reply leave before reporting (manual progress).
  const end = Date.now() + 1000;
  while (Date.now() < end && tx!.stats().gauges.occupancyBytes > 0) {
    tx!.flush();
    await new Promise((r) => setImmediate(r));
  }
  await finish({ t: 'result' }, [tx!, l]);
}

async function bwSend(cfg: WorkerCfg): Promise<void> {
  const { l, tx } = await fabricSetup(cfg, undefined, 'bw');
  const payload = Buffer.alloc(cfg.size, 0x11);
  if (cfg.engine) {
    for (let done = 0; done < cfg.iters; ) {
      const n = Math.min(ENGINE_CHUNK * 10, cfg.iters - done);
      done += fabricNative.fabricEngineBwSend(tx!.nativeHandle, cfg.size, n);
      await yieldToLoop();
    }
  } else {
    for (let i = 0; i < cfg.iters; ) {
      if (tx!.send(payload)) i++;
      else await tx!.whenWritable(cfg.size);
    }
  }
  await tx!.drain(600_000);
  await finish({ t: 'result' }, [tx!, l]);
}

async function bwRecv(cfg: WorkerCfg): Promise<void> {
  const { l, rx } = await fabricSetup(cfg, 'bw', undefined);
  let n = 0;
  let t0 = 0;
  if (cfg.engine) {
    const queue = new Float64Array(Math.ceil(cfg.iters / 64));
    // The first record starts the clock (as in the JS case): wait for it alone.
    while (n === 0) {
      n += fabricNative.fabricEngineBwRecv(rx!.nativeHandle, 1, 20, queue, 0);
      if (n === 0) await yieldToLoop();
    }
    t0 = nowNs();
    while (n < cfg.iters) {
      n += fabricNative.fabricEngineBwRecv(
        rx!.nativeHandle,
        Math.min(ENGINE_CHUNK * 10, cfg.iters - n),
        20,
        queue,
        n,
      );
      await yieldToLoop();
    }
    const elapsedNs = nowNs() - t0;
    await finish({ t: 'result', elapsedNs, queue: Array.from(queue) }, [l]);
    return;
  }
  await new Promise<void>((resolve) => {
    rx!.start(() => {
      if (n === 0) t0 = nowNs();
      if (++n === cfg.iters) {
        rx!.stop();
        resolve();
      }
    });
  });
  const elapsedNs = nowNs() - t0;
  await finish({ t: 'result', elapsedNs, queue: rx!.stats().latency.queue }, [l]);
}

async function idleSend(cfg: WorkerCfg): Promise<void> {
  const { l, tx } = await fabricSetup(cfg, undefined, 'idle');
  for (let i = 0; i < cfg.iters; i++) tx!.send(Buffer.alloc(cfg.size));
  await tx!.drain(30_000);
  await new Promise((r) => setTimeout(r, 500)); // the receiver settles into its idle state
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, (cfg.seconds ?? 3) * 1000));
  const c = process.cpuUsage(c0);
  await finish({ t: 'result', cpuS: (c.user + c.system) / 1e6 }, [tx!, l]);
}

async function idleRecv(cfg: WorkerCfg): Promise<void> {
  const { l, rx } = await fabricSetup(cfg, 'idle', undefined);
  let n = 0;
  rx!.start(() => {
    n++;
  });
  while (n < cfg.iters) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 500));
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, (cfg.seconds ?? 3) * 1000));
  const c = process.cpuUsage(c0);
  await finish({ t: 'result', cpuS: (c.user + c.system) / 1e6 }, [l]);
}

async function netRecv(cfg: WorkerCfg): Promise<void> {
  const server = createServer();
  // Listen for the connection before anyone can connect (the sender connects as soon as it is told to).
  const conn = new Promise<Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  toParent({ t: 'listening', port: (server.address() as { port: number }).port });
  await next('connect');
  toParent({ t: 'connected' });
  const want = cfg.iters * cfg.size;
  await next('run');
  const sock = await conn;
  let got = 0;
  let t0 = 0;
  await new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      if (got === 0) t0 = nowNs();
      got += d.length;
      if (got >= want) resolve();
    });
  });
  const elapsedNs = nowNs() - t0;
  sock.destroy();
  server.close();
  await finish({ t: 'result', elapsedNs }, []);
}

/** Node net ping-pong, answering end: echoes every `size` bytes it receives. */
async function netPong(cfg: WorkerCfg): Promise<void> {
  const server = createServer();
  const conn = new Promise<Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  toParent({ t: 'listening', port: (server.address() as { port: number }).port });
  await next('connect');
  toParent({ t: 'connected' });
  await next('run');
  const sock = await conn;
  sock.setNoDelay(true);
  const total = cfg.warmup + cfg.iters;
  const reply = Buffer.alloc(cfg.size, 0x33);
  let got = 0;
  let answered = 0;
  await new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      got += d.length;
      while (got >= cfg.size) {
        got -= cfg.size;
        sock.write(reply);
        if (++answered === total) resolve();
      }
    });
  });
  await finish({ t: 'result' }, [
    { close: async () => void sock.destroy() },
    { close: async () => void server.close() },
  ]);
}

/** Node net ping-pong, measuring end: one-way = round trip / 2. */
async function netPing(cfg: WorkerCfg): Promise<void> {
  toParent({ t: 'listening', port: 0 });
  const c = await next('connect');
  const sock = await new Promise<Socket>((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port: c.port as number }, () => resolve(s));
  });
  sock.setNoDelay(true);
  toParent({ t: 'connected' });
  await next('run');
  const total = cfg.warmup + cfg.iters;
  const samples = new Float64Array(cfg.iters);
  const payload = Buffer.alloc(cfg.size, 0x22);
  let got = 0;
  let i = 0;
  let s = nowNs();
  await new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      got += d.length;
      while (got >= cfg.size) {
        got -= cfg.size;
        if (i >= cfg.warmup) samples[i - cfg.warmup] = (nowNs() - s) / 2;
        if (++i === total) return resolve();
        s = nowNs();
        sock.write(payload);
      }
    });
    sock.write(payload);
  });
  sock.destroy();
  await finish({ t: 'result', ...samplePercentiles(samples) }, []);
}

async function netSend(cfg: WorkerCfg): Promise<void> {
  toParent({ t: 'listening', port: 0 });
  const c = await next('connect');
  const sock = await new Promise<Socket>((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port: c.port as number }, () => resolve(s));
  });
  sock.setNoDelay(true);
  toParent({ t: 'connected' });
  await next('run');
  const payload = Buffer.alloc(cfg.size, 0x22);
  for (let i = 0; i < cfg.iters; i++) {
    if (!sock.write(payload)) await new Promise((r) => sock.once('drain', r));
  }
  await new Promise<void>((r) => sock.end(() => r()));
  await finish({ t: 'result' }, []);
}

async function worker(cfg: WorkerCfg): Promise<void> {
  const roles: Record<WorkerCfg['role'], (c: WorkerCfg) => Promise<void>> = {
    'lat-a': latA,
    'lat-b': latB,
    'bw-send': bwSend,
    'bw-recv': bwRecv,
    'idle-send': idleSend,
    'idle-recv': idleRecv,
    'net-send': netSend,
    'net-recv': netRecv,
    'net-ping': netPing,
    'net-pong': netPong,
  };
  await roles[cfg.role](cfg);
}

if (process.argv[2] === '__fabric_worker') {
  // The orchestrator died (its IPC channel closed): do not spin on alone.
  process.on('disconnect', () => process.exit(1));
  worker(JSON.parse(process.argv[3]!) as WorkerCfg).catch((err: Error & { code?: string }) => {
    toParent({ t: 'fatal', code: err.code ?? '', message: err.message });
    process.exit(1);
  });
}

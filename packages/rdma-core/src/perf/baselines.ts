/**
 * What rdmaq-perf compares against, measured in the same run: the C baselines of ../shared/bench/baselines.sh
 * (resolved from the repository root; fi_pingpong, UCX, sockperf …), fabtests' fi_pingpong per provider,
 * sockperf pinned like our cases, plain Node `net` ping-pong and streaming, and memcpy bandwidth.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../native.js';
import { PerfWorker, pairCase } from './ipc.js';
import { type Baseline, round, us } from './report.js';

export type Log = (s: string) => void;

const CAPACITY = 4 * 1024 * 1024;

function repoRoot(): string | undefined {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, 'pnpm-workspace.yaml'))) return d;
    d = dirname(d);
  }
  return undefined;
}

/** Where baselines.sh lives: <repository>/../shared/bench/baselines.sh (outside the repository). */
export function baselinesScript(): string | undefined {
  const root = repoRoot();
  return root ? resolve(root, '..', 'shared', 'bench', 'baselines.sh') : undefined;
}

/** Runs baselines.sh once at `size` and returns its JSON lines as rows (failed ones keep their `error`). */
export async function scriptBaselines(size: number, iters: number, log: Log): Promise<Baseline[]> {
  const script = baselinesScript();
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

/** One named row of baselines.sh (e.g. `ucx_tag_lat_tcp_sleep`), or a row that says why there is none. */
export async function scriptBaseline(name: string, size: number, iters: number, log: Log): Promise<Baseline> {
  const row = (await scriptBaselines(size, iters, log)).find((b) => b.baseline === name);
  return row ?? { baseline: name, size, error: `baselines.sh printed no ${name}` };
}

/** Node `net` TCP ping-pong on loopback (echo server on cpu1, pinger on cpu0): one-way p50 µs. */
export async function nodeTcpBaseline(size: number, iters = 20_000): Promise<Baseline> {
  const base = {
    transport: 'shm',
    size,
    iters,
    warmup: 2000,
    idle: 'event',
    engine: false,
    capacity: CAPACITY,
  } as const;
  const echo = new PerfWorker({ ...base, role: 'tcp-echo' }, { cpu: 1 });
  try {
    const l = await echo.next();
    const ping = new PerfWorker({ ...base, role: 'tcp-ping', port: l.port as number }, { cpu: 0 });
    const r = await ping.next(300_000);
    echo.send({ t: 'exit' });
    return { baseline: 'node_net_tcp', size, one_way_us: us(r.p50 as number), p99_us: us(r.p99 as number) };
  } finally {
    echo.kill();
  }
}

/**
 * Plain Node `net` ping-pong on loopback (TCP_NODELAY, ends pinned like ours, a reply per message): one-way
 * p50 µs. The peer of a sleeping fabric consumer: both wake from epoll in libuv for every message.
 */
export async function nodeNetPingPong(size: number, iters = 20_000): Promise<Baseline> {
  const base = {
    transport: 'fabric',
    provider: 'tcp',
    size,
    iters,
    warmup: 2000,
    idle: 'event',
    engine: false,
  };
  const [ra] = await pairCase({ ...base, role: 'net-ping' }, { ...base, role: 'net-pong' });
  return {
    baseline: 'node_net_pingpong',
    size,
    one_way_us: us(ra.p50 as number),
    p99_us: us(ra.p99 as number),
  };
}

/** Plain Node `net` streaming on loopback: one socket.write per message (back-pressure respected). */
export async function nodeNetStream(size: number, iters = 1_000_000): Promise<Baseline> {
  const base = {
    transport: 'fabric',
    provider: 'tcp',
    size,
    iters,
    warmup: 0,
    idle: 'busy-spin',
    engine: false,
  };
  const [, rb] = await pairCase({ ...base, role: 'net-send' }, { ...base, role: 'net-recv' });
  return {
    baseline: 'node_net_stream',
    size,
    msgs_per_s: Math.round(iters / ((rb.elapsedNs as number) / 1e9)),
  };
}

function freePort(): Promise<number> {
  return new Promise<number>((res) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Runs `file args` and hands back stdout + stderr (whatever the exit status). */
function output(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise<string>((res) => {
    execFile(file, args, { timeout: timeoutMs }, (_err, stdout, stderr) => res(`${stdout}${stderr}`));
  });
}

/**
 * sockperf's TCP ping-pong with both ends pinned to cpu0/cpu1 like our cases (baselines.sh leaves them to the
 * scheduler, which puts a ping-pong pair on one core): the like-for-like peer of the pinned event case.
 */
export async function sockperfPinnedBaseline(size: number, log: Log): Promise<Baseline | undefined> {
  if (!existsSync('/usr/bin/taskset') || !existsSync('/usr/bin/sockperf')) {
    log('sockperf or taskset missing: sockperf_tcp_pinned skipped');
    return undefined;
  }
  const port = String(await freePort());
  const server = spawn(
    '/usr/bin/taskset',
    ['-c', '1', 'sockperf', 'sr', '--tcp', '-i', '127.0.0.1', '-p', port],
    {
      stdio: 'ignore',
    },
  );
  try {
    await new Promise((r) => setTimeout(r, 500));
    const args = ['-c', '0', 'sockperf', 'pp', '--tcp', '-i', '127.0.0.1', '-p', port, '-t', '2', '-m'];
    const out = await output('/usr/bin/taskset', [...args, String(size)], 30_000);
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

/** fi_pingpong (fabtests) over loopback, server cpu0, client cpu1: one-way µs (usec/xfer). */
export async function fiPingpong(provider: string, size: number, iters = 10_000): Promise<Baseline> {
  const name = `fi_pingpong_${provider.split(';')[0]}`;
  if (!existsSync('/usr/bin/fi_pingpong'))
    return { baseline: name, size, error: 'fi_pingpong not installed' };
  const port = String(20_000 + Math.floor(Math.random() * 20_000));
  const args = ['-p', provider, '-e', 'rdm', '-S', String(size), '-I', String(iters)];
  const server = spawn('/usr/bin/taskset', ['-c', '0', '/usr/bin/fi_pingpong', ...args, '-B', port], {
    stdio: 'ignore',
  });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const client = ['-c', '1', '/usr/bin/fi_pingpong', ...args, '-P', port, '127.0.0.1'];
    const out = await new Promise<string>((done) => {
      execFile('/usr/bin/taskset', client, { timeout: 120_000 }, (_err, stdout) => done(stdout ?? ''));
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

/** memcpy bandwidth measured in the addon, over a ring-sized buffer. */
export function memcpyBaseline(size: number): Baseline {
  return { baseline: 'memcpy', size, gb_per_s: round(native.memcpyBandwidth(size, 500, CAPACITY), 2) };
}

/** The baseline named `name` at `size` among `bs` that measured something. */
export function findBaseline(bs: Baseline[], name: string, size: number): Baseline | undefined {
  return bs.find((b) => b.baseline === name && b.size === size && !('error' in b));
}

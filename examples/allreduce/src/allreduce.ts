#!/usr/bin/env node
/**
 * rdmaq-allreduce — ring all-reduce of a gradient-sized Float32 buffer among N hosts, the collective a
 * data-parallel training job runs after every backward pass, written against the public API of
 * @rdmaq/rdma-core only (listen / accept / connect / claim / commit / start, setAppName).
 *
 * Every rank listens for its upstream neighbour (rank r-1) and links directly to its downstream neighbour
 * (rank r+1) over the fabric transport: a ring of N links, no agent in the path. One iteration:
 *   - reduce-scatter, N-1 steps: send segment (r - s) in chunks, add what arrives into segment (r - s - 1);
 *   - all-gather, N-1 steps: forward the reduced segment (r + 1 - s), copy what arrives into segment (r - s);
 *   - check every element against the sum computed locally (values are small integers: exact in float32);
 *   - "compute" for --compute-ms (sleep), as a training step would before the next all-reduce.
 * Each rank moves 2 (N-1)/N × size bytes per iteration each way, in records of up to --chunk bytes.
 *
 *   rdmaq-allreduce --rank R --hosts H0:P0,H1:P1,... [options]   one rank (run one per host)
 *   rdmaq-allreduce --local N [options]                           N ranks on 127.0.0.1 (child processes)
 *
 * The process names itself with setAppName (default "allreduce", --app), so the rdmaq agent on its host
 * reports its links labelled app="allreduce", and rdmaq-stat shows them under that name.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  connect,
  type FabricReceiver,
  type FabricSender,
  type IdleStrategy,
  listen,
  setAppName,
  statsFileInfo,
} from '@rdmaq/rdma-core';

const HEADER = 16; // u32 iteration, u16 phase, u16 step, u32 first float, u32 float count
const RS = 0; // reduce-scatter
const AG = 1; // all-gather

const USAGE = `usage:
  rdmaq-allreduce --rank R --hosts H0:P0,H1:P1,... [options]   one rank (one per host)
  rdmaq-allreduce --local N [options]                           N ranks on 127.0.0.1

options:
  --size BYTES        gradient buffer per rank (default 16MiB; KiB/MiB/GiB suffixes)
  --chunk BYTES       largest record (default 256KiB)
  --ring BYTES        ring capacity of each link, power of two (default 8MiB)
  --iterations N      all-reduces to run, 0 = until SIGINT/SIGTERM (default 0)
  --compute-ms MS     pause between all-reduces, the "training step" (default 500)
  --provider NAME     libfabric provider (default tcp;ofi_rxm)
  --idle STRATEGY     receiver idle strategy: event | backoff | busy-spin (default event)
  --secret-file PATH  cluster secret for the fabric handshake (or RDMAQ_SECRET, or RDMAQ_SECRET_FILE)
  --app NAME          application name in the statistics file (default allreduce; RDMAQ_APP_NAME)
  --log-every N       print every Nth all-reduce (default 1)
  --timeout-s S       give up (exit 1) when one all-reduce takes longer (default 300)
  --json              one JSON object per line instead of text`;

function fail(msg: string, code = 2): never {
  console.error(`rdmaq-allreduce: ${msg}`);
  process.exit(code);
}

function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|K|M|G)?$/i.exec(s.trim());
  if (!m) throw new Error(`${s} is not a size (e.g. 16MiB)`);
  const unit = (m[2] ?? 'B').toUpperCase()[0];
  const mult = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

/** Rank `rank`'s gradient value at element j in iteration `it`: a small integer (sums are exact in f32). */
function gradValue(it: number, rank: number, j: number): number {
  return ((j * 7 + rank * 13 + it * 5) % 251) - 125;
}

/** Bounds of segment s of n floats split among `ranks` ranks: [start, end). */
function segment(s: number, n: number, ranks: number): [number, number] {
  return [Math.floor((s * n) / ranks), Math.floor(((s + 1) * n) / ranks)];
}

const { values: opts } = parseArgs({
  options: {
    rank: { type: 'string' },
    hosts: { type: 'string' },
    local: { type: 'string' },
    size: { type: 'string', default: '16MiB' },
    chunk: { type: 'string', default: '256KiB' },
    ring: { type: 'string', default: '8MiB' },
    iterations: { type: 'string', default: '0' },
    'compute-ms': { type: 'string', default: '500' },
    provider: { type: 'string', default: 'tcp;ofi_rxm' },
    idle: { type: 'string', default: 'event' },
    'secret-file': { type: 'string' },
    app: { type: 'string' },
    'log-every': { type: 'string', default: '1' },
    'timeout-s': { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
if (opts.local !== undefined) await runLocal(Number(opts.local));
else await runRank();

function log(ev: Record<string, unknown>, textLine: string): void {
  if (opts.json) process.stdout.write(`${JSON.stringify(ev)}\n`);
  else console.log(textLine);
}

function readSecret(): string {
  const file = opts['secret-file'] ?? process.env.RDMAQ_SECRET_FILE;
  if (file) return readFileSync(file, 'utf8').trim();
  const s = process.env.RDMAQ_SECRET;
  if (s) return s;
  return fail('no secret: --secret-file PATH, RDMAQ_SECRET or RDMAQ_SECRET_FILE (the same on every rank)');
}

async function runRank(): Promise<void> {
  const hosts = (opts.hosts ?? '').split(',').filter(Boolean);
  const ranks = hosts.length;
  const rank = Number(opts.rank);
  if (ranks < 2) fail(`--hosts needs at least two host:port entries\n${USAGE}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= ranks) fail(`--rank must be 0..${ranks - 1}`);
  const addr = hosts.map((h) => {
    const i = h.lastIndexOf(':');
    const port = Number(h.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) fail(`${h} is not host:port`);
    return { host: h.slice(0, i), port };
  });
  const size = parseBytes(opts.size);
  const chunk = parseBytes(opts.chunk);
  const ring = parseBytes(opts.ring);
  const iterations = Number(opts.iterations);
  const computeMs = Number(opts['compute-ms']);
  const idle = opts.idle as IdleStrategy;
  if (!['event', 'backoff', 'busy-spin'].includes(idle)) fail('--idle must be event, backoff or busy-spin');
  if (size < 4 * ranks || size % 4) fail('--size must be a multiple of 4 with at least one float per rank');
  if (chunk < 64 || chunk % 4 || HEADER + chunk > ring / 2 - 64)
    fail('--chunk must be a multiple of 4, at least 64 and below half the ring');
  const secret = readSecret();
  const app = opts.app ?? process.env.RDMAQ_APP_NAME ?? 'allreduce';
  // The label the agent and rdmaq-stat show for this process's links (default would be the command line).
  setAppName(app);

  const floats = size / 4;
  const chunkFloats = chunk / 4;
  const grad = new Float32Array(floats);
  const gradBytes = Buffer.from(grad.buffer, grad.byteOffset, grad.byteLength);
  const scratch = new Float32Array(chunkFloats);
  const prev = (rank - 1 + ranks) % ranks;
  const next = (rank + 1) % ranks;
  const me = addr[rank]!;
  const down = addr[next]!;

  // ---- receiving end: the link from rank r-1 ----
  const listener = await listen({
    socketPath: join(tmpdir(), `rdmaq-allreduce-${process.pid}.sock`),
    tcp: { host: me.host, port: me.port, secret, provider: opts.provider },
  });
  listener.on('error', (e: Error) =>
    log({ ev: 'listenerError', message: e.message }, `listener: ${e.message}`),
  );
  const rx: FabricReceiver = listener.accept(`ring-r${prev}->r${rank}`, {
    transport: 'fabric',
    capacity: ring,
    idle,
  });

  let cur = -1;
  let stopping = false;
  // Assigned below, once both links exist; a record arriving before that can only be a current one.
  let stop: (code: number) => Promise<void> = async (code) => process.exit(code);
  /** Floats received in the current iteration, per phase and step. */
  const got = [new Array<number>(ranks).fill(0), new Array<number>(ranks).fill(0)];
  /** Records of the next iteration that arrived before this one ended (upstream runs ahead): copies. */
  const early: Buffer[] = [];
  let waiter: { phase: number; step: number; want: number; resolve: () => void } | undefined;

  const apply = (b: Buffer, off: number, len: number): void => {
    const phase = b.readUInt16LE(off + 4);
    const step = b.readUInt16LE(off + 6);
    const first = b.readUInt32LE(off + 8);
    const n = b.readUInt32LE(off + 12);
    if (phase > AG || step >= ranks - 1 || n * 4 !== len - HEADER || first + n > floats)
      throw new Error(`bad record: phase ${phase} step ${step} first ${first} n ${n} len ${len}`);
    const at = b.byteOffset + off + HEADER;
    let v: Float32Array;
    if (at % 4 === 0) v = new Float32Array(b.buffer, at, n);
    else {
      b.copy(Buffer.from(scratch.buffer, 0, n * 4), 0, off + HEADER, off + len);
      v = scratch.subarray(0, n);
    }
    if (phase === RS) for (let i = 0; i < n; i++) grad[first + i]! += v[i]!;
    else grad.set(v, first);
    const g = got[phase]!;
    g[step]! += n;
    const w = waiter;
    if (w && w.phase === phase && w.step === step && g[step]! >= w.want) {
      waiter = undefined;
      w.resolve();
    }
  };
  rx.start((b, off, len) => {
    const it = b.readUInt32LE(off);
    if (it === cur) apply(b, off, len);
    else if (it > cur) early.push(Buffer.from(b.subarray(off, off + len)));
    else {
      // An older iteration: the upstream rank restarted. Like any collective, the job restarts as a whole.
      log(
        { ev: 'peerRestarted', rank, iteration: cur, got: it },
        `rank ${rank}: upstream rank ${prev} restarted (iteration ${it} < ${cur}): exiting, the job must restart`,
      );
      void stop(3);
    }
  });

  // ---- sending end: the link to rank r+1 (retried until that rank listens) ----
  const tx: FabricSender = await connectWithRetry({
    linkId: `ring-r${rank}->r${next}`,
    host: down.host,
    port: down.port,
    secret,
    provider: opts.provider,
    capacity: ring,
  });
  tx.on('error', (e: Error) => log({ ev: 'senderError', message: e.message }, `sender: ${e.message}`));
  log(
    { ev: 'ready', rank, ranks, app, statsFile: statsFileInfo().path, size, chunk },
    `rank ${rank}/${ranks} (${app}): linked r${prev} -> r${rank} -> r${next} over ${opts.provider}; ` +
      `statistics file ${statsFileInfo().path || '(off)'}`,
  );

  stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await tx.drain(2000).catch(() => false);
    await tx.close().catch(() => {});
    await listener.close().catch(() => {});
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const sendSegment = async (it: number, phase: number, step: number, seg: number) => {
    const [s0, s1] = segment(seg, floats, ranks);
    for (let first = s0; first < s1; first += chunkFloats) {
      const n = Math.min(chunkFloats, s1 - first);
      const len = HEADER + n * 4;
      let off = tx.claim(len);
      while (off < 0) {
        await tx.whenWritable(len);
        off = tx.claim(len);
      }
      const b = tx.buffer;
      b.writeUInt32LE(it, off);
      b.writeUInt16LE(phase, off + 4);
      b.writeUInt16LE(step, off + 6);
      b.writeUInt32LE(first, off + 8);
      b.writeUInt32LE(n, off + 12);
      gradBytes.copy(b, off + HEADER, first * 4, (first + n) * 4);
      tx.commit();
    }
  };
  const received = (phase: number, step: number, seg: number) => {
    const [s0, s1] = segment(seg, floats, ranks);
    const want = s1 - s0;
    if (got[phase]![step]! >= want) return Promise.resolve();
    return new Promise<void>((resolve) => {
      waiter = { phase, step, want, resolve };
    });
  };

  const wire = 2 * (ranks - 1) * Math.floor(floats / ranks) * 4;
  const logEvery = Math.max(1, Number(opts['log-every']) || 1);
  const timeoutMs = Math.max(1, Number(opts['timeout-s']) || 300) * 1000;
  let totalMs = 0;
  for (let it = 0; iterations === 0 || it < iterations; it++) {
    if (stopping) return;
    // The "backward pass": this rank's gradient for iteration `it`.
    for (let j = 0; j < floats; j++) grad[j] = gradValue(it, rank, j);
    cur = it;
    for (const g of got) g.fill(0);
    for (const e of early.splice(0)) {
      if (e.readUInt32LE(0) === it) apply(e, 0, e.length);
      else early.push(e);
    }
    const t0 = performance.now();
    const watchdog = setTimeout(() => {
      log(
        { ev: 'timeout', rank, iteration: it },
        `rank ${rank}: all-reduce ${it} made no end in ${timeoutMs / 1000} s (a rank is gone or the path is cut): exiting`,
      );
      void stop(1);
    }, timeoutMs);
    for (let s = 0; s < ranks - 1; s++) {
      await sendSegment(it, RS, s, (rank - s + ranks) % ranks);
      await received(RS, s, (rank - s - 1 + ranks) % ranks);
    }
    for (let s = 0; s < ranks - 1; s++) {
      await sendSegment(it, AG, s, (rank - s + 1 + ranks) % ranks);
      await received(AG, s, (rank - s + ranks) % ranks);
    }
    clearTimeout(watchdog);
    const ms = performance.now() - t0;
    totalMs += ms;
    // Every element must be the sum of all ranks' values.
    let bad = -1;
    for (let j = 0; j < floats && bad < 0; j++) {
      let want = 0;
      for (let q = 0; q < ranks; q++) want += gradValue(it, q, j);
      if (grad[j] !== want) bad = j;
    }
    if (bad >= 0) {
      let want = 0;
      for (let q = 0; q < ranks; q++) want += gradValue(it, q, bad);
      log(
        { ev: 'mismatch', rank, iteration: it, index: bad, got: grad[bad], want },
        `rank ${rank}: iteration ${it}: element ${bad} is ${grad[bad]}, expected ${want}`,
      );
      await stop(1);
      return;
    }
    const gbps = (wire * 8) / (ms * 1e6);
    if (it % logEvery === 0)
      log(
        {
          ev: 'iteration',
          rank,
          iteration: it,
          ms: Number(ms.toFixed(2)),
          gbps: Number(gbps.toFixed(3)),
          ok: true,
        },
        `rank ${rank}: all-reduce ${it} of ${opts.size} in ${ms.toFixed(1)} ms (${gbps.toFixed(2)} Gbit/s each way), sum checked`,
      );
    if (computeMs > 0) await new Promise((r) => setTimeout(r, computeMs));
  }
  const ts = tx.stats();
  const rs = rx.stats();
  log(
    {
      ev: 'done',
      rank,
      iterations,
      app: statsFileInfo().app,
      meanMs: Number((totalMs / Math.max(1, iterations)).toFixed(2)),
      sent: { records: ts.counters.records, bytes: ts.counters.bytes },
      received: { records: rs.counters.records, bytes: rs.counters.bytes },
    },
    `rank ${rank}: ${iterations} all-reduces, mean ${(totalMs / Math.max(1, iterations)).toFixed(1)} ms; ` +
      `sent ${ts.counters.records} records / ${ts.counters.bytes} B, received ${rs.counters.records} / ${rs.counters.bytes} B`,
  );
  await stop(0);
}

async function connectWithRetry(o: {
  linkId: string;
  host: string;
  port: number;
  secret: string;
  provider: string;
  capacity: number;
}): Promise<FabricSender> {
  const deadline = Date.now() + 120_000;
  let last = '';
  for (;;) {
    try {
      return await connect({ transport: 'fabric', ...o, connectTimeoutMs: 5000 });
    } catch (e) {
      const msg = (e as Error).message;
      if (Date.now() > deadline) fail(`cannot link to ${o.host}:${o.port}: ${msg}`, 1);
      if (msg !== last)
        log(
          { ev: 'waiting', peer: `${o.host}:${o.port}`, reason: msg },
          `waiting for ${o.host}:${o.port}: ${msg}`,
        );
      last = msg;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** A free TCP port on 127.0.0.1 (closed again at once: the rank binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function runLocal(n: number): Promise<void> {
  if (!Number.isInteger(n) || n < 2 || n > 16) fail('--local needs 2..16 ranks');
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const hosts = ports.map((p) => `127.0.0.1:${p}`).join(',');
  const pass: string[] = [];
  for (const k of [
    'size',
    'chunk',
    'ring',
    'iterations',
    'compute-ms',
    'provider',
    'idle',
    'app',
    'log-every',
    'timeout-s',
  ] as const) {
    const v = opts[k];
    if (v !== undefined) pass.push(`--${k}`, v);
  }
  if (opts.json) pass.push('--json');
  const env = { ...process.env };
  if (!opts['secret-file'] && !env.RDMAQ_SECRET && !env.RDMAQ_SECRET_FILE)
    env.RDMAQ_SECRET = randomBytes(24).toString('hex');
  if (opts['secret-file']) pass.push('--secret-file', opts['secret-file']);
  const self = fileURLToPath(import.meta.url);
  const kids: ChildProcess[] = [];
  const forward = (sig: NodeJS.Signals) => {
    for (const c of kids) if (c.exitCode === null) c.kill(sig);
  };
  process.on('SIGINT', () => forward('SIGINT'));
  process.on('SIGTERM', () => forward('SIGTERM'));
  const codes = await Promise.all(
    ports.map((_, r) => {
      const c = spawn(process.execPath, [self, '--rank', String(r), '--hosts', hosts, ...pass], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      kids.push(c);
      createInterface({ input: c.stdout! }).on('line', (l) =>
        process.stdout.write(opts.json ? `${l}\n` : `[r${r}] ${l}\n`),
      );
      createInterface({ input: c.stderr! }).on('line', (l) => process.stderr.write(`[r${r}] ${l}\n`));
      return new Promise<number>((resolve) => c.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1))));
    }),
  );
  process.exit(codes.every((c) => c === 0) ? 0 : 1);
}

/**
 * One end of an rdmaq-perf case over the fabric transport (and the plain Node `net` baselines), run in its
 * own process pinned to a core (perf/ipc.ts starts it): listening {port} → connect {port} → connected → run →
 * result. Each end is a real fabric link over loopback; the busy-spin and engine loops use what only the
 * fabric ends have (send with flush, flush(), the fabricEngine* loops).
 */
import { createServer, connect as netConnect, type Socket } from 'node:net';
import type { FabricListener } from '../fabric/listener.js';
import { listenFabric } from '../fabric/listener.js';
import { fabricNative } from '../fabric/native.js';
import type { FabricReceiver } from '../fabric/receiver.js';
import { connectFabric, type FabricSender } from '../fabric/sender.js';
import type { IdleStrategy } from '../types.js';
import { type Msg, nextMessage, report, toParent } from './ipc.js';
import { answerLoop, nowNs, pingLoop } from './loops.js';
import { samplePercentiles, sparsePercentiles } from './stats.js';

export const FABRIC_PERF_CAPACITY = 4 * 1024 * 1024;
const SECRET = 'rdmaq-perf-local-secret';

export interface FabricWorkerConfig {
  transport: 'fabric';
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
  checksum?: boolean;
}

/** Round trips (×10 records for streaming) per engine call: tens of ms, well inside the heartbeat period. */
const ENGINE_CHUNK = 2000;
/** JS busy-spin loops: how long one native poll spins on the CQ before the loop drives the sender. */
const POLL_SPIN_NS = 50_000;
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));
const next = nextMessage;

async function fabricSetup(cfg: FabricWorkerConfig, inLink?: string, outLink?: string) {
  const l: FabricListener = await listenFabric({ port: 0, host: '127.0.0.1', secret: SECRET });
  const rx: FabricReceiver | undefined = inLink
    ? l.accept(inLink, { idle: cfg.idle, capacity: FABRIC_PERF_CAPACITY, batch: 1024 })
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
        capacity: FABRIC_PERF_CAPACITY,
        checksum: cfg.checksum === true,
      })
    : undefined;
  toParent({ t: 'connected' });
  await next('run');
  return { l, rx, tx };
}

/** Reports, waits for the orchestrator's exit, closes the link ends and leaves. */
async function finish(res: Msg, close: Array<{ close(): Promise<void> }>): Promise<void> {
  await report(res);
  for (const c of close) await c.close();
  process.exit(0);
}

async function latA(cfg: FabricWorkerConfig): Promise<void> {
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
    await pingLoop(rx!, tx!, payload, cfg.warmup, total, samples);
  }
  const elapsedNs = nowNs() - t0;
  await finish({ t: 'result', ...samplePercentiles(samples), elapsedNs }, [tx!, l]);
}

async function latB(cfg: FabricWorkerConfig): Promise<void> {
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
    await answerLoop(rx!, total, () => tx!.send(payload));
  }
  // Let the last reply leave before reporting (manual progress).
  const end = Date.now() + 1000;
  while (Date.now() < end && tx!.stats().gauges.occupancyBytes > 0) {
    tx!.flush();
    await new Promise((r) => setImmediate(r));
  }
  await finish({ t: 'result' }, [tx!, l]);
}

async function bwSend(cfg: FabricWorkerConfig): Promise<void> {
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

async function bwRecv(cfg: FabricWorkerConfig): Promise<void> {
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
    // Queue latency: every 64th record, sampled by the engine loop.
    const p = samplePercentiles(queue);
    await finish({ t: 'result', elapsedNs, bytes: cfg.iters * cfg.size, ...p }, [l]);
    return;
  }
  await answerLoop(rx!, cfg.iters, () => {
    if (n++ === 0) t0 = nowNs();
  });
  const elapsedNs = nowNs() - t0;
  const p = sparsePercentiles(rx!.stats().latency.queue);
  await finish({ t: 'result', elapsedNs, bytes: cfg.iters * cfg.size, ...p }, [l]);
}

async function idleSend(cfg: FabricWorkerConfig): Promise<void> {
  const { l, tx } = await fabricSetup(cfg, undefined, 'idle');
  for (let i = 0; i < cfg.iters; i++) tx!.send(Buffer.alloc(cfg.size));
  await tx!.drain(30_000);
  await new Promise((r) => setTimeout(r, 500)); // the receiver settles into its idle state
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, (cfg.seconds ?? 3) * 1000));
  const c = process.cpuUsage(c0);
  await finish({ t: 'result', cpuS: (c.user + c.system) / 1e6 }, [tx!, l]);
}

async function idleRecv(cfg: FabricWorkerConfig): Promise<void> {
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

async function netRecv(cfg: FabricWorkerConfig): Promise<void> {
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
async function netPong(cfg: FabricWorkerConfig): Promise<void> {
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

/** The connecting end of a Node `net` baseline: connects to the peer's port, then waits for `run`. */
async function netClient(): Promise<Socket> {
  toParent({ t: 'listening', port: 0 });
  const c = await next('connect');
  const sock = await new Promise<Socket>((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port: c.port as number }, () => resolve(s));
  });
  sock.setNoDelay(true);
  toParent({ t: 'connected' });
  await next('run');
  return sock;
}

/** Node net ping-pong, measuring end: one-way = round trip / 2. */
async function netPing(cfg: FabricWorkerConfig): Promise<void> {
  const sock = await netClient();
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

async function netSend(cfg: FabricWorkerConfig): Promise<void> {
  const sock = await netClient();
  const payload = Buffer.alloc(cfg.size, 0x22);
  for (let i = 0; i < cfg.iters; i++) {
    if (!sock.write(payload)) await new Promise((r) => sock.once('drain', r));
  }
  await new Promise<void>((r) => sock.end(() => r()));
  await finish({ t: 'result' }, []);
}

/** Runs the role of `cfg` in this (worker) process; the process exits when the orchestrator says so. */
export async function runFabricWorker(cfg: FabricWorkerConfig): Promise<void> {
  const roles: Record<FabricWorkerConfig['role'], (c: FabricWorkerConfig) => Promise<void>> = {
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

/**
 * One end of an rdmaq-perf case over the shm transport, run in its own process pinned to a core (perf/ipc.ts
 * starts it): listening → connect → connected → run → result. The busy-spin and engine loops use what only
 * the shm ends have (pollBatch, claimBatch, the native engine loops); the rest is the common API.
 */
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { connect, listen, type Receiver, type Sender } from '../index.js';
import { native } from '../native.js';
import type { IdleStrategy } from '../types.js';
import { type Msg, nextMessage, report, reportFatal, toParent } from './ipc.js';
import { answerLoop, nowNs, pingLoop } from './loops.js';
import { samplePercentiles, sparsePercentiles } from './stats.js';

export interface WorkerConfig {
  transport: 'shm';
  role: 'lat-init' | 'lat-pong' | 'bw-send' | 'bw-recv' | 'tcp-echo' | 'tcp-ping' | 'idle-rx' | 'idle-tx';
  /** Listener socket of this worker (receiving end), and of the peer. */
  sockSelf?: string;
  sockPeer?: string;
  size: number;
  iters: number;
  warmup: number;
  idle: IdleStrategy;
  engine: boolean;
  capacity: number;
  checksum?: boolean;
  port?: number;
  seconds?: number;
}

const send = (m: Msg) => toParent(m);
const next = nextMessage;
/** Busy-spin loops: how long one native pollBatch waits for a record before returning to JS (1 ms). */
const SPIN_NS = 1_000_000;

/** Common choreography: listen (if receiving), wait, connect (if sending), wait, run. */
async function setup(cfg: WorkerConfig, inLink: string | undefined, outLink: string | undefined) {
  let rx: Receiver | undefined;
  let tx: Sender | undefined;
  const l = cfg.sockSelf ? await listen({ socketPath: cfg.sockSelf, capacity: cfg.capacity }) : undefined;
  if (l && inLink) rx = l.accept(inLink, { idle: cfg.idle, batch: 1024 });
  send({ t: 'listening' });
  await next('connect');
  if (outLink && cfg.sockPeer)
    tx = await connect({ linkId: outLink, socketPath: cfg.sockPeer, checksum: cfg.checksum === true });
  send({ t: 'connected' });
  await next('run');
  return { l, rx, tx };
}

async function latInit(cfg: WorkerConfig): Promise<void> {
  const { l, rx, tx } = await setup(cfg, 'pong', 'ping');
  const total = cfg.warmup + cfg.iters;
  const samples = new Float64Array(cfg.iters);
  const payload = Buffer.alloc(cfg.size, 0x5a);
  let elapsed = 0;
  if (cfg.engine) {
    const r = native.engineLatPing(tx!.nativeHandle, rx!.nativeHandle, cfg.size, cfg.iters, cfg.warmup);
    const p = sparsePercentiles(r.buckets, r.maxNs);
    await report({ t: 'result', ...p, count: r.count, elapsedNs: r.elapsedNs });
    await tx!.close();
    await l!.close();
    return;
  }
  if (cfg.idle === 'busy-spin') {
    // JS to JS: a synchronous loop, send then spin on a batched poll of one record.
    const out = new Float64Array(3);
    const t0 = nowNs();
    for (let i = 0; i < total; i++) {
      const s = nowNs();
      while (!tx!.send(payload)) {} // never full in a ping-pong; no closure on the hot path
      while (rx!.pollBatch(out, 1, SPIN_NS) === 0) {}
      const e = nowNs();
      if (i >= cfg.warmup) samples[i - cfg.warmup] = (e - s) / 2;
    }
    rx!.release();
    elapsed = nowNs() - t0;
  } else {
    // backoff / event: driven by the event loop through start(); the echo handler sends the next ping.
    const t0 = nowNs();
    await pingLoop(rx!, tx!, payload, cfg.warmup, total, samples);
    elapsed = nowNs() - t0;
  }
  const p = samplePercentiles(samples);
  await report({ t: 'result', ...p, count: cfg.iters, elapsedNs: elapsed });
  await tx!.close();
  await l!.close();
}

async function latPong(cfg: WorkerConfig): Promise<void> {
  const { l, rx, tx } = await setup(cfg, 'ping', 'pong');
  const total = cfg.warmup + cfg.iters;
  if (cfg.engine) {
    native.engineLatPong(tx!.nativeHandle, rx!.nativeHandle, total);
  } else {
    // One native call per echo (send copies ring → ring); claim + copy + commit would be three.
    const echo = (buf: Buffer, off: number, len: number) => {
      const view = buf.subarray(off, off + len);
      while (!tx!.send(view)) {}
    };
    if (cfg.idle === 'busy-spin') {
      const out = new Float64Array(3 * 64);
      const ring = rx!.buffer;
      let done = 0;
      while (done < total) {
        const n = rx!.pollBatch(out, 64, SPIN_NS);
        for (let k = 0; k < n; k++) echo(ring, out[3 * k]!, out[3 * k + 1]!);
        done += n;
      }
      rx!.release();
    } else {
      await answerLoop(rx!, total, echo);
    }
  }
  await report({ t: 'result' });
  await tx!.close();
  await l!.close();
}

async function bwSend(cfg: WorkerConfig): Promise<void> {
  const { tx } = await setup(cfg, undefined, 'stream');
  const t0 = native.nowNs();
  if (cfg.engine) {
    native.engineBwSend(tx!.nativeHandle, cfg.size, cfg.iters);
  } else {
    // Batched zero-copy claims straight into the ring: one N-API call per batch, not per record.
    const payload = Buffer.alloc(cfg.size, 0xa5);
    const buf = tx!.buffer;
    const offs = tx!.batchOffsets;
    const perCommit = Math.max(1, Math.min(1024, Math.floor(tx!.capacity / 4 / (24 + cfg.size))));
    let sent = 0;
    while (sent < cfg.iters) {
      // At most a quarter ring per commit: the receiver drains one part while we fill the next.
      const n = tx!.claimBatch(Math.min(perCommit, cfg.iters - sent), cfg.size);
      if (n === 0) {
        if (cfg.idle === 'busy-spin') continue;
        await tx!.whenWritable(cfg.size);
        continue;
      }
      for (let k = 0; k < n; k++) payload.copy(buf, offs[k]!);
      tx!.commit();
      sent += n;
    }
  }
  const elapsed = native.nowNs() - t0;
  await report({ t: 'result', elapsedNs: elapsed });
  await tx!.close();
}

async function bwRecv(cfg: WorkerConfig): Promise<void> {
  const { l, rx } = await setup(cfg, 'stream', undefined);
  let first = 0;
  let last = 0;
  let bytes = 0;
  if (cfg.engine) {
    const r = native.engineBwRecv(rx!.nativeHandle, cfg.iters);
    const stats = rx!.stats();
    await report({
      t: 'result',
      elapsedNs: r.elapsedNs,
      bytes: r.bytes,
      count: cfg.iters,
      ...sparsePercentiles(stats.latency.queue),
    });
    await l!.close();
    return;
  }
  if (cfg.idle === 'busy-spin') {
    const out = new Float64Array(3 * 1024);
    let got = 0;
    while (got < cfg.iters) {
      const n = rx!.pollBatch(out, 1024);
      if (n === 0) continue;
      if (got === 0) first = native.nowNs();
      for (let k = 0; k < n; k++) bytes += out[3 * k + 1]!;
      got += n;
    }
    rx!.release();
    last = native.nowNs();
  } else {
    await new Promise<void>((resolve) => {
      let got = 0;
      rx!.start((_b, _o, len) => {
        if (got === 0) first = native.nowNs();
        bytes += len;
        got += 1;
        if (got === cfg.iters) {
          last = native.nowNs();
          rx!.stop();
          resolve();
        }
      });
    });
  }
  const stats = rx!.stats();
  await report({
    t: 'result',
    elapsedNs: last - first,
    bytes,
    count: cfg.iters,
    ...sparsePercentiles(stats.latency.queue),
  });
  await l!.close();
}

async function tcpEcho(_cfg: WorkerConfig): Promise<void> {
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('data', (d) => sock.write(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  send({ t: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
  await next('exit');
  server.close();
}

async function tcpPing(cfg: WorkerConfig): Promise<void> {
  const sock: Socket = await new Promise((resolve, reject) => {
    const s = netConnect(cfg.port!, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  sock.setNoDelay(true);
  const total = cfg.warmup + cfg.iters;
  const samples = new Float64Array(cfg.iters);
  const payload = Buffer.alloc(cfg.size, 1);
  await new Promise<void>((resolve) => {
    let i = 0;
    let got = 0;
    let s = native.nowNs();
    sock.on('data', (d) => {
      got += d.length;
      if (got < cfg.size) return; // a ping-pong message may arrive in pieces
      got -= cfg.size;
      const e = native.nowNs();
      if (i >= cfg.warmup) samples[i - cfg.warmup] = (e - s) / 2;
      i += 1;
      if (i === total) {
        resolve();
        return;
      }
      s = native.nowNs();
      sock.write(payload);
    });
    sock.write(payload);
  });
  sock.destroy();
  send({ t: 'result', ...samplePercentiles(samples) });
}

/** Idle link: connect, then do nothing for `seconds` (the orchestrator measures CPU time). */
async function idleEnd(cfg: WorkerConfig): Promise<void> {
  const { l, rx, tx } = await setup(
    cfg,
    cfg.role === 'idle-rx' ? 'idle' : undefined,
    cfg.role === 'idle-tx' ? 'idle' : undefined,
  );
  rx?.start(() => {});
  // CPU used by this process during the idle window only (start-up excluded); /usr/bin/time gives the total.
  await new Promise((r) => setTimeout(r, 200));
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, (cfg.seconds ?? 3) * 1000));
  const c = process.cpuUsage(c0);
  rx?.stop();
  await report({ t: 'result', idleCpuS: (c.user + c.system) / 1e6 });
  await tx?.close();
  await l?.close();
}

export async function runWorker(cfg: WorkerConfig): Promise<void> {
  const roles = {
    'lat-init': latInit,
    'lat-pong': latPong,
    'bw-send': bwSend,
    'bw-recv': bwRecv,
    'tcp-echo': tcpEcho,
    'tcp-ping': tcpPing,
    'idle-rx': idleEnd,
    'idle-tx': idleEnd,
  } as const;
  try {
    await roles[cfg.role](cfg);
  } catch (err) {
    reportFatal(err);
  }
  // Leave once the orchestrator got the result (IPC flushes on disconnect).
  process.disconnect?.();
}

/**
 * The lat and bw cases of rdmaq-perf, one implementation parameterised by transport: a `BenchTransport` says
 * how its two worker processes are configured and how many iterations a case runs by default; the case
 * itself (start both ends, run, turn the report into a row) is the same for shm and fabric.
 *
 * Worker reports (perf/worker.ts, perf/fabric-worker.ts): the measuring end of `lat` sends its one-way
 * percentiles (ns) and elapsedNs; the receiving end of `bw` sends elapsedNs, bytes and the queue latency
 * percentiles (ns).
 */
import type { IdleStrategy, Transport } from '../types.js';
import { type Msg, pairCase } from './ipc.js';
import { type CaseRow, caseRow } from './report.js';
import type { Percentiles } from './stats.js';

/** What every worker of a case is told, whatever the transport. */
export interface EndParams {
  size: number;
  iters: number;
  warmup: number;
  idle: IdleStrategy;
  engine: boolean;
  /** Senders seal every record with a CRC32C of its payload (SenderOptions.checksum). */
  checksum?: boolean;
}

export interface BenchTransport {
  readonly transport: Transport;
  readonly provider: string;
  /** The engine loops spin whatever strategy was asked: the row then says busy-spin. */
  readonly engineSpins: boolean;
  latIters(idle: IdleStrategy): number;
  latWarmup(iters: number): number;
  bwIters(size: number): number;
  /** Worker configurations of both ends (a on cpu0 measures lat, b on cpu1 receives bw), and their clean-up. */
  ends(kind: 'lat' | 'bw', p: EndParams): { a: object; b: object; cleanup: () => void };
}

/** The same transport with every record sealed (--checksum): its rows name the provider `<provider>+crc32c`. */
export function withChecksum(t: BenchTransport): BenchTransport {
  return {
    ...t,
    provider: `${t.provider}+crc32c`,
    ends: (kind, p) => t.ends(kind, { ...p, checksum: true }),
  };
}

function percentiles(m: Msg): Percentiles {
  return { p50: Number(m.p50), p99: Number(m.p99), p999: Number(m.p999), max: Number(m.max) };
}

/** Ping-pong: one-way latency = round trip / 2, measured by end a. */
export async function latCase(
  t: BenchTransport,
  size: number,
  idleAsked: IdleStrategy,
  engine: boolean,
  iters?: number,
  pin = true,
): Promise<CaseRow> {
  const idle = engine && t.engineSpins ? 'busy-spin' : idleAsked;
  const n = iters ?? t.latIters(idle);
  const ends = t.ends('lat', { size, iters: n, warmup: t.latWarmup(n), idle, engine });
  try {
    const [ra] = await pairCase(ends.a, ends.b, { pin });
    const msgs = (2 * n) / (Number(ra.elapsedNs) / 1e9); // one-way messages per second (ping + pong)
    const row = caseRow(
      { bench: 'lat', transport: t.transport, provider: t.provider, size, idle, engine },
      percentiles(ra),
      msgs,
      (msgs * size) / 1e9,
    );
    return pin ? row : { ...row, pinned: false };
  } finally {
    ends.cleanup();
  }
}

/** Streaming: a sends `iters` records of `size` bytes, b receives them and reports rate and queue latency. */
export async function bwCase(
  t: BenchTransport,
  size: number,
  idleAsked: IdleStrategy,
  engine: boolean,
  iters?: number,
): Promise<CaseRow> {
  const idle = engine && t.engineSpins ? 'busy-spin' : idleAsked;
  const n = iters ?? t.bwIters(size);
  const ends = t.ends('bw', { size, iters: n, warmup: 0, idle, engine });
  try {
    const [, rb] = await pairCase(ends.a, ends.b);
    const elapsed = Number(rb.elapsedNs);
    return caseRow(
      { bench: 'bw', transport: t.transport, provider: t.provider, size, idle, engine },
      percentiles(rb),
      n / (elapsed / 1e9),
      Number(rb.bytes) / elapsed,
    );
  } finally {
    ends.cleanup();
  }
}

/** What the command line asked for (cli.ts parses it). */
export interface PerfOptions {
  cmd: 'lat' | 'bw' | 'idle' | 'all';
  transport: Transport;
  /** `shm` for the shm transport; a libfabric provider (default `net`) for fabric. */
  provider: string;
  size: number;
  iters?: number;
  idle: IdleStrategy;
  engine: boolean;
  json: boolean;
  baselines: boolean;
  /** Seal every record with a CRC32C (SenderOptions.checksum): what the option costs. */
  checksum: boolean;
  /** Runs per case and baseline (medians reported); default 5 for `all`, else 1. */
  repeat?: number;
}

/** rdmaq-perf's output: the rows every transport prints (text or one JSON object a line) and the ratios. */
import type { IdleStrategy, Transport } from '../types.js';
import type { Percentiles } from './stats.js';

/** One lat or bw case: the JSON fields other tools read (test/perf-cli.test.ts holds the contract). */
export interface CaseRow {
  bench: 'lat' | 'bw';
  transport: Transport;
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
  /** Only on the extra unpinned row of shm `all` (placement left to the scheduler, like the C baselines). */
  pinned?: false;
  /** Which of several interleaved runs (fabric `all`). */
  run?: number;
}

export type Baseline = { baseline: string; size: number; [k: string]: unknown };

export interface OutputOptions {
  json: boolean;
}

export const us = (ns: number): number => Math.round(ns) / 1000;
export const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** The row of a case from its percentiles (ns), message rate and payload size. */
export function caseRow(
  what: Pick<CaseRow, 'bench' | 'transport' | 'provider' | 'size' | 'idle' | 'engine'>,
  p: Percentiles,
  msgsPerS: number,
  gbPerS: number,
): CaseRow {
  return {
    ...what,
    p50_us: us(p.p50),
    p99_us: us(p.p99),
    p999_us: us(p.p999),
    max_us: us(p.max),
    msgs_per_s: Math.round(msgsPerS),
    gb_per_s: round(gbPerS),
  };
}

/** Middle element by `key` (the median run; this VM's speed jumps between runs). */
export function median<T>(items: T[], key: (t: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Median of the finite numbers (NaN when none). */
export function medianOf(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return v.length ? v[(v.length - 1) >> 1]! : Number.NaN;
}

export function printRow(o: OutputOptions, row: CaseRow | Baseline | Record<string, unknown>): void {
  if (o.json) {
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  if ('bench' in row) {
    const r = row as CaseRow;
    const what = `${r.bench} ${r.transport}/${r.provider} ${r.size} B ${r.idle}${r.engine ? ' engine' : ' js'}${r.pinned === false ? ' unpinned' : ''}`;
    process.stdout.write(
      `${what.padEnd(40)} p50 ${r.p50_us} µs  p99 ${r.p99_us}  p99.9 ${r.p999_us}  max ${r.max_us}  ` +
        `${(r.msgs_per_s / 1e6).toFixed(2)} M msg/s  ${r.gb_per_s} GB/s${r.run === undefined ? '' : `  (run ${r.run})`}\n`,
    );
  } else if ('baseline' in row) {
    const { baseline, ...rest } = row as Baseline;
    process.stdout.write(`baseline ${String(baseline).padEnd(31)} ${JSON.stringify(rest)}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(row)}\n`);
  }
}

/** A figure against its target: `met` true/false, or undefined where the target is informative only. */
export function ratio(
  o: OutputOptions,
  name: string,
  value: number,
  target: string,
  ok: boolean | undefined,
): void {
  const row = { ratio: name, value: round(value, 2), target, met: ok };
  if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`);
  else
    process.stdout.write(
      `ratio ${name.padEnd(46)} ${Number.isFinite(value) ? round(value, 2) : 'n/a'}  (${ok === undefined ? target : `target ${target}`}) ${ok === undefined ? '' : ok ? 'MET' : 'MISSED'}\n`,
    );
}

/** `x <= t` / `x >= t`, undefined when x is not a number (a baseline missing). */
export const atMost = (x: number, t: number): boolean | undefined =>
  Number.isFinite(x) ? x <= t : undefined;
export const atLeast = (x: number, t: number): boolean | undefined =>
  Number.isFinite(x) ? x >= t : undefined;

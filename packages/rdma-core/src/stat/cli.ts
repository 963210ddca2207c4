#!/usr/bin/env node
import { sparsePercentiles } from '../perf/stats.js';
/**
 * rdmaq-stat — every rdmaq link on this host, from the processes' statistics files (like AeronStat or top).
 * Needs no agent: it reads /dev/shm/rdmaq-stats-* (RDMAQ_STATS_DIR, or --dir) directly.
 *
 *   rdmaq-stat                 refresh every second (--interval ms), rates from the deltas between refreshes
 *   rdmaq-stat --once          one table and exit
 *   rdmaq-stat --json          one JSON snapshot ({files, problems, swept}) and exit
 *   rdmaq-stat --no-sweep      do not remove the files of dead processes
 */
import { type StatsFileSnapshot, type StatsLink, StatsReader } from '../stats-file.js';

interface Args {
  dir?: string;
  json: boolean;
  once: boolean;
  intervalMs: number;
  sweep: boolean;
  fs: boolean;
}

const USAGE =
  'usage: rdmaq-stat [--json] [--once] [--interval ms] [--dir path] [--no-sweep] [--fs]\n' +
  '  --json      one JSON snapshot of every file and exit\n' +
  '  --once      one table and exit (default: refresh every --interval ms, 1000)\n' +
  '  --dir       directory of the statistics files (default RDMAQ_STATS_DIR or /dev/shm)\n' +
  '  --no-sweep  leave the files of dead processes in place\n' +
  '  --fs        read with plain file reads instead of the addon mapping\n';

export function parseArgs(argv: string[]): Args {
  const a: Args = { json: false, once: false, intervalMs: 1000, sweep: true, fs: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--json') a.json = true;
    else if (k === '--once') a.once = true;
    else if (k === '--no-sweep') a.sweep = false;
    else if (k === '--fs') a.fs = true;
    else if (k === '--dir') {
      const v = argv[++i];
      if (!v) throw new Error('--dir needs a path');
      a.dir = v;
    } else if (k === '--interval') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 100 || v > 60_000)
        throw new Error('--interval needs a whole number of ms in 100..60000');
      a.intervalMs = v;
    } else if (k === '--help' || k === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

function si(n: number, unit = ''): string {
  if (!Number.isFinite(n)) return '-';
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(2)}G${unit}`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(2)}M${unit}`;
  if (abs >= 1e3) return `${(n / 1e3).toFixed(1)}k${unit}`;
  return `${Math.round(n)}${unit}`;
}

function ns(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)}s`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}ms`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}µs`;
  return `${Math.round(v)}ns`;
}

const key = (f: StatsFileSnapshot, l: StatsLink) => `${f.pid}:${f.startTime}:${l.slot}:${l.generation}`;

export function table(
  files: StatsFileSnapshot[],
  prev: Map<string, { t: number; records: number; bytes: number }>,
  now: number,
): string {
  const rows: string[][] = [
    [
      'APP',
      'PID',
      'LINK',
      'DIR',
      'TRANSPORT',
      'PEER',
      'STATE',
      'RECORDS',
      'REC/S',
      'BYTES/S',
      'OCC',
      'P50',
      'P99',
      'P99.9',
      'ERRORS',
    ],
  ];
  const next = new Map<string, { t: number; records: number; bytes: number }>();
  for (const f of files) {
    for (const l of f.links) {
      const k = key(f, l);
      const p = prev.get(k);
      const dt = p ? (now - p.t) / 1000 : 0;
      const rate = p && dt > 0 ? (l.counters.records - p.records) / dt : Number.NaN;
      const brate = p && dt > 0 ? (l.counters.bytes - p.bytes) / dt : Number.NaN;
      next.set(k, { t: now, records: l.counters.records, bytes: l.counters.bytes });
      const lat = l.direction === 'rx' ? l.latency.queue : l.latency.rtt;
      const pc = sparsePercentiles(lat);
      const errs = Object.values(l.counters.errors).reduce((a, b) => a + b, 0);
      const occ = l.gauges.capacityBytes ? (100 * l.gauges.occupancyBytes) / l.gauges.capacityBytes : 0;
      rows.push([
        f.app.slice(0, 24),
        String(f.pid),
        l.linkId.slice(0, 28),
        l.direction,
        l.transport === 'shm' ? 'shm' : `fabric/${l.provider}`,
        l.peer.slice(0, 22),
        l.state,
        si(l.counters.records),
        si(rate),
        si(brate, 'B'),
        `${occ.toFixed(0)}%`,
        ns(pc.p50),
        ns(pc.p99),
        ns(pc.p999),
        String(errs),
      ]);
    }
  }
  prev.clear();
  for (const [k, v] of next) prev.set(k, v);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

export function main(argv: string[]): void {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`rdmaq-stat: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const reader = new StatsReader({
    ...(args.dir ? { dir: args.dir } : {}),
    sweep: args.sweep,
    ...(args.fs ? { native: false } : {}),
  });
  if (args.json) {
    const s = reader.scan();
    process.stdout.write(`${JSON.stringify({ dir: reader.dir, ...s })}\n`);
    reader.close();
    return;
  }
  const prev = new Map<string, { t: number; records: number; bytes: number }>();
  const draw = () => {
    const s = reader.scan();
    const now = Date.now();
    const links = s.files.reduce((a, f) => a + f.links.length, 0);
    let text = `rdmaq-stat  ${new Date(now).toISOString()}  ${reader.dir}  ${s.files.length} processes, ${links} links (${reader.mode} read)\n\n`;
    text += `${table(s.files, prev, now)}\n`;
    for (const p of s.problems) text += `\n! ${p.path}: ${p.reason}`;
    for (const f of s.files) {
      for (const b of f.badSlots) text += `\n! ${f.path} slot ${b.slot}: ${b.reason}`;
      if (f.droppedLinks)
        text += `\n! ${f.path}: ${f.droppedLinks} links found no free slot (RDMAQ_STATS_SLOTS)`;
    }
    for (const w of s.swept) text += `\n- swept ${w} (process gone)`;
    if (!args.once) process.stdout.write('\x1b[H\x1b[2J');
    process.stdout.write(`${text}\n`);
  };
  draw();
  if (args.once) {
    reader.close();
    return;
  }
  setInterval(draw, args.intervalMs);
}

main(process.argv.slice(2));

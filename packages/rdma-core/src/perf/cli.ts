#!/usr/bin/env node
/**
 * rdmaq-perf — perftest-style benchmarks of the rdmaq queue (ib_write_lat / ib_write_bw in spirit).
 *
 *   rdmaq-perf lat|bw|idle|all [--transport shm|fabric] [--provider P] [--size N] [--iters N]
 *              [--idle busy-spin|backoff|event] [--engine] [--checksum] [--json] [--no-baselines] [--repeat N]
 *
 * One tool for both transports: the cases (perf/cases.ts) are parameterised by a BenchTransport (perf/shm.ts,
 * perf/fabric.ts); each case starts both ends itself, as two processes pinned to cpu0 and cpu1 (perf/ipc.ts),
 * which are this file run with `__worker <json>`. Baselines are measured in the same invocation
 * (perf/baselines.ts: ../shared/bench/baselines.sh from the repository root, Node `net`, memcpy …) and ratios
 * are printed.
 */
import { parseArgs } from 'node:util';
import type { IdleStrategy, Transport } from '../types.js';
import type { PerfOptions } from './cases.js';
import type { FabricWorkerConfig } from './fabric-worker.js';
import { reportFatal, WORKER_ARG } from './ipc.js';
import type { WorkerConfig } from './worker.js';

const CAPACITY = 4 * 1024 * 1024;

const USAGE = `usage: rdmaq-perf lat|bw|idle|all [--transport shm|fabric] [--provider P] [--size N] [--iters N]
                  [--idle busy-spin|backoff|event] [--engine] [--checksum] [--json] [--no-baselines] [--repeat N]`;

const HELP = `${USAGE}

Benchmarks of the rdmaq queue, both ends as processes pinned to cpu0 and cpu1, with baselines measured in
the same run and the ratios the design targets.

commands:
  lat    ping-pong, one-way latency (round trip / 2) and message rate
  bw     streaming, message rate, GB/s and queue latency (send timestamp -> delivery)
  idle   CPU used by an idle link
  all    every case and baseline of the transport, interleaved over --repeat rounds; medians and ratios

options:
  --transport shm|fabric   default shm (same host, /dev/shm); fabric runs libfabric over loopback
  --provider P             fabric: libfabric provider (default net; e.g. "tcp;ofi_rxm"); shm: only shm
  --size N                 payload bytes (default 64; at most ${CAPACITY / 2 - 24})
  --iters N                iterations of lat/bw (default: per transport and idle strategy)
  --idle S                 receiver idle strategy: busy-spin (default), backoff or event
  --checksum               senders seal every record with a CRC32C of its payload (rows say <provider>+crc32c)
  --engine                 run the busy-spin loops inside C++ (what the N-API crossing costs)
  --json                   one JSON object per line (rows, baselines, ratios)
  --no-baselines           skip the baselines (and the ratios that need them)
  --repeat N               runs per case and baseline, medians reported (default 5 for all, else 1)
  -h, --help               this text
`;

function fail(msg: string): never {
  process.stderr.write(`rdmaq-perf: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function count(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) fail(`--${name} needs a non-negative integer`);
  return n;
}

/** The command line → options; exits 2 with the usage on anything it does not understand. */
export function parse(argv: string[]): PerfOptions | 'help' {
  let parsed: ReturnType<typeof parseOnly>;
  try {
    parsed = parseOnly(argv);
  } catch (err) {
    fail((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  const [cmd, ...extra] = positionals;
  if (cmd !== 'lat' && cmd !== 'bw' && cmd !== 'idle' && cmd !== 'all')
    fail(`unknown command ${cmd ?? '(none)'}`);
  if (extra.length > 0) fail(`unexpected argument ${extra[0]}`);
  const transport = v.transport ?? 'shm';
  if (transport !== 'shm' && transport !== 'fabric') fail('--transport is shm or fabric');
  const idle = v.idle ?? 'busy-spin';
  if (idle !== 'busy-spin' && idle !== 'backoff' && idle !== 'event')
    fail('--idle is busy-spin, backoff or event');
  const provider = v.provider ?? (transport === 'shm' ? 'shm' : 'net');
  if (transport === 'shm' && provider !== 'shm') {
    fail(
      `--transport shm has one provider, shm (libfabric providers such as ${provider} go with --transport fabric)`,
    );
  }
  const size = count('size', v.size) ?? 64;
  if (size > CAPACITY / 2 - 24)
    fail(`--size must be at most ${CAPACITY / 2 - 24} for the ${CAPACITY}-byte ring`);
  const iters = count('iters', v.iters);
  const repeat = count('repeat', v.repeat);
  return {
    cmd,
    transport: transport as Transport,
    provider,
    size,
    ...(iters === undefined ? {} : { iters }),
    idle: idle as IdleStrategy,
    engine: v.engine ?? false,
    json: v.json ?? false,
    baselines: !(v['no-baselines'] ?? false),
    checksum: v.checksum ?? false,
    ...(repeat === undefined ? {} : { repeat: Math.max(1, repeat) }),
  };
}

function parseOnly(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      transport: { type: 'string' },
      provider: { type: 'string' },
      size: { type: 'string' },
      iters: { type: 'string' },
      idle: { type: 'string' },
      engine: { type: 'boolean' },
      json: { type: 'boolean' },
      'no-baselines': { type: 'boolean' },
      checksum: { type: 'boolean' },
      repeat: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

async function worker(cfg: WorkerConfig | FabricWorkerConfig): Promise<void> {
  if (cfg.transport === 'fabric') {
    // The orchestrator died (its IPC channel closed): do not spin on alone.
    process.on('disconnect', () => process.exit(1));
    const { runFabricWorker } = await import('./fabric-worker.js');
    try {
      await runFabricWorker(cfg);
    } catch (err) {
      reportFatal(err);
      process.exit(1);
    }
    return;
  }
  const { runWorker } = await import('./worker.js');
  await runWorker(cfg);
}

async function main(): Promise<void> {
  if (process.argv[2] === WORKER_ARG) {
    await worker(JSON.parse(process.argv[3]!) as WorkerConfig | FabricWorkerConfig);
    return;
  }
  const o = parse(process.argv.slice(2));
  if (o === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const log = (s: string) => process.stderr.write(`rdmaq-perf: ${s}\n`);
  if (o.transport === 'fabric') {
    const { runFabricPerf } = await import('./fabric.js');
    await runFabricPerf(o, log);
  } else {
    const { runShmPerf } = await import('./shm.js');
    await runShmPerf(o, log);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`rdmaq-perf: ${err.message}\n`);
  process.exit(1);
});

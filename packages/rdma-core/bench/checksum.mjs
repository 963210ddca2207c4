// What the per-record CRC32C (SenderOptions.checksum, rdmaq-perf --checksum) costs: rdmaq-perf `lat`
// (busy-spin ping-pong) and `bw` (streaming) at two record sizes, with and without --checksum, interleaved in
// the same run (each rep alternates which goes first, so drift in the machine's load hits both alike). Printed
// per case: medians over reps and the median of the per-rep on/off ratios (the figure to trust on a noisy
// machine). The seal is computed once by the sender and checked once by the receiver (SSE4.2 crc32 where the
// CPU has it: ~8 bytes per cycle per core at these sizes).
//   node bench/checksum.mjs [reps=5] [transport=shm] [sizes=64,4096]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const reps = Number(process.argv[2] ?? 5);
const transport = process.argv[3] ?? 'shm';
const sizes = (process.argv[4] ?? '64,4096').split(',').map(Number);
const cli = fileURLToPath(new URL('../dist/perf/cli.js', import.meta.url));

function run(bench, size, checksum) {
  const args = [
    cli,
    bench,
    '--size',
    String(size),
    '--transport',
    transport,
    '--idle',
    'busy-spin',
    '--json',
  ];
  args.push('--no-baselines');
  if (checksum) args.push('--checksum');
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const row = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((r) => r.bench === bench);
  if (!row) throw new Error(`no ${bench} row in: ${out}`);
  return bench === 'lat' ? row.p50_us : row.gb_per_s;
}

const cases = [];
for (const size of sizes) for (const bench of ['lat', 'bw']) cases.push({ bench, size, on: [], off: [] });
for (let i = 0; i < reps; i++) {
  const order = i % 2 === 0 ? [true, false] : [false, true];
  for (const c of cases) for (const on of order) c[on ? 'on' : 'off'].push(run(c.bench, c.size, on));
  process.stderr.write(`rep ${i + 1}/${reps} done\n`);
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(JSON.stringify({ transport, reps, cases }, null, 1));
for (const c of cases) {
  const paired = med(c.on.map((x, k) => x / c.off[k]));
  const unit = c.bench === 'lat' ? 'µs one-way p50' : 'GB/s';
  const cost = c.bench === 'lat' ? paired - 1 : 1 - paired;
  console.log(
    `${c.bench} ${c.size} B ${transport}: with checksum ${med(c.on)} / without ${med(c.off)} ${unit}; median of paired ratios ×${paired.toFixed(3)} (cost ${(100 * cost).toFixed(1)} %)`,
  );
}

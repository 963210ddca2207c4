// Publishing cost (target: statistics files cost ≤ 2 % of busy-spin one-way p50 and of 64 B
// streaming throughput). rdmaq-perf `lat` (busy-spin ping-pong, 64 B) and `bw` (64 B streaming) run with the
// statistics file on (default) and off (RDMAQ_STATS=0), interleaved in the same run: each rep runs the four
// cases, in an order that alternates on/off first, so drift in the machine's load hits both alike. Printed:
// medians over reps, their ratio, and the median of the per-rep ratios (each on run against the off run next
// to it: what to trust when the machine's load drifts during the run). BENCHES=lat or bw runs one of them.
//   node bench/stats/publish.mjs [reps=7] [transport=shm]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const reps = Number(process.argv[2] ?? 7);
const transport = process.argv[3] ?? 'shm';
const cli = fileURLToPath(new URL('../../dist/perf/cli.js', import.meta.url));

function run(bench, stats) {
  const env = { ...process.env };
  if (stats) delete env.RDMAQ_STATS;
  else env.RDMAQ_STATS = '0';
  const out = execFileSync(
    process.execPath,
    [cli, bench, '--size', '64', '--transport', transport, '--idle', 'busy-spin', '--json', '--no-baselines'],
    { env, encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const row = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((r) => r.bench === bench);
  if (!row) throw new Error(`no ${bench} row in: ${out}`);
  return bench === 'lat' ? row.p50_us : row.msgs_per_s;
}

const benches = (process.env.BENCHES ?? 'lat,bw').split(',');
const res = { lat: { on: [], off: [] }, bw: { on: [], off: [] } };
for (let i = 0; i < reps; i++) {
  const order = i % 2 === 0 ? [true, false] : [false, true];
  for (const bench of benches)
    for (const stats of order) res[bench][stats ? 'on' : 'off'].push(run(bench, stats));
  process.stderr.write(`rep ${i + 1}/${reps} done\n`);
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const pair = (b) => res[b].on.map((x, k) => x / res[b].off[k]);
const out = { transport, reps };
if (res.lat.on.length)
  out.lat_p50_us = {
    on: med(res.lat.on),
    off: med(res.lat.off),
    pairedRatioMedian: med(pair('lat')),
    runs: res.lat,
  };
if (res.bw.on.length)
  out.bw_msgs_per_s = {
    on: med(res.bw.on),
    off: med(res.bw.off),
    pairedRatioMedian: med(pair('bw')),
    runs: res.bw,
  };
console.log(JSON.stringify(out, null, 1));
if (out.lat_p50_us) {
  const r = out.lat_p50_us;
  console.log(
    `busy-spin one-way p50 64 B: on ${r.on} µs / off ${r.off} µs = ×${(r.on / r.off).toFixed(3)}; median of paired ratios ×${r.pairedRatioMedian.toFixed(3)} (cost ${(100 * (r.pairedRatioMedian - 1)).toFixed(1)} %)`,
  );
}
if (out.bw_msgs_per_s) {
  const r = out.bw_msgs_per_s;
  console.log(
    `64 B streaming: on ${(r.on / 1e6).toFixed(2)} / off ${(r.off / 1e6).toFixed(2)} M msg/s = ×${(r.on / r.off).toFixed(3)}; median of paired ratios ×${r.pairedRatioMedian.toFixed(3)} (cost ${(100 * (1 - r.pairedRatioMedian)).toFixed(1)} %)`,
  );
}

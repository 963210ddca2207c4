// Two builds of rdma-core side by side in one run: rdmaq-perf's cases (no baselines) run alternately with
// this checkout's build and another's — e.g. a worktree of an earlier commit, built — over `rounds` rounds,
// medians and new/old ratios printed. What a refactor must show: the figures within noise of before.
//   git worktree add /tmp/old <commit> && (cd /tmp/old && pnpm install --offline && pnpm --filter @rdmaq/rdma-core build)
//   node bench/compare-builds.mjs /tmp/old/packages/rdma-core [rounds=5]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const oldDir = process.argv[2];
const rounds = Number(process.argv[3] ?? 5);
if (!oldDir || !existsSync(path.join(oldDir, 'dist/perf/cli.js'))) {
  console.error('usage: node bench/compare-builds.mjs <other rdma-core dir, built> [rounds=5]');
  process.exit(2);
}
const builds = {
  old: path.join(oldDir, 'dist/perf/cli.js'),
  new: path.join(path.dirname(fileURLToPath(import.meta.url)), '../dist/perf/cli.js'),
};
const CASES = [
  ['shm lat busy-spin', ['lat']],
  ['shm bw busy-spin', ['bw']],
  ['shm lat event', ['lat', '--idle', 'event']],
  ['fabric net lat busy-spin', ['lat', '--transport', 'fabric']],
  ['fabric net bw busy-spin', ['bw', '--transport', 'fabric']],
  ['fabric net lat event', ['lat', '--transport', 'fabric', '--idle', 'event']],
];
const figures = {};
for (let r = 0; r < rounds; r++)
  // Alternate which build goes first, so a drift of the machine within a round hits both alike.
  for (const [name, args] of CASES)
    for (const b of r % 2 ? ['new', 'old'] : ['old', 'new']) {
      const out = execFileSync(process.execPath, [builds[b], ...args, '--no-baselines', '--json'], {
        encoding: 'utf8',
      });
      const row = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .find((o) => o.bench);
      if (!figures[name]) figures[name] = { old: { p50: [], rate: [] }, new: { p50: [], rate: [] } };
      const f = figures[name];
      f[b].p50.push(row.p50_us);
      f[b].rate.push(row.msgs_per_s);
    }
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`old: ${builds.old}\nnew: ${builds.new}\n${rounds} rounds, medians\n`);
console.log(
  `${'case'.padEnd(26)}${'p50 µs old'.padStart(12)}${'new'.padStart(9)}${'new/old'.padStart(9)}` +
    `${'msg/s old'.padStart(13)}${'new'.padStart(12)}${'new/old'.padStart(9)}`,
);
for (const [name] of CASES) {
  const f = figures[name];
  const po = med(f.old.p50);
  const pn = med(f.new.p50);
  const ro = med(f.old.rate);
  const rn = med(f.new.rate);
  console.log(
    `${name.padEnd(26)}${po.toFixed(3).padStart(12)}${pn.toFixed(3).padStart(9)}${(pn / po).toFixed(2).padStart(9)}` +
      `${Math.round(ro).toString().padStart(13)}${Math.round(rn).toString().padStart(12)}${(rn / ro).toFixed(2).padStart(9)}`,
  );
}

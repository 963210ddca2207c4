// Reader cost (issue 14 target: the agent reads 100 processes × 64 links every second in ≤ 1 % of a core).
// One process opens 32 shm link pairs (64 link ends) and streams records on each (busy histograms); its
// statistics file is copied to 100 files owned by 100 live `sleep` processes (pid/start time patched), then
// StatsReader.scan() — what the agent's sample does — runs `rounds` times; CPU time per scan is printed.
//   node bench/stats/read.mjs [rounds=20] [files=100]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const rounds = Number(process.argv[2] ?? 20);
const nFiles = Number(process.argv[3] ?? 100);
const dir = mkdtempSync(join(tmpdir(), 'rdmaq-stats-bench-'));
process.env.RDMAQ_STATS_DIR = dir;
const { connect, listen, statsFileInfo, StatsReader, processStartTime } = await import('../../dist/index.js');

const l = await listen({ socketPath: join(dir, 'b.sock'), capacity: 1 << 20 });
const p = Buffer.alloc(64);
for (let i = 0; i < 32; i++) {
  const rx = l.accept(`bench-${i}`, { idle: 'backoff' });
  rx.start(() => {});
  const tx = await connect({ linkId: `bench-${i}`, socketPath: join(dir, 'b.sock') });
  for (let k = 0; k < 20000; ) if (tx.send(p)) k++; else await tx.whenWritable(64);
}
await new Promise((r) => setTimeout(r, 500));
const image = readFileSync(statsFileInfo().path);
const owners = [];
for (let i = 0; i < nFiles; i++) owners.push(spawn('sleep', ['120']));
await new Promise((r) => setTimeout(r, 300));
for (const o of owners) {
  const st = processStartTime(o.pid);
  const img = Buffer.from(image);
  img.writeUInt32LE(o.pid, 32);
  img.writeBigUInt64LE(BigInt(st), 40);
  writeFileSync(join(dir, `rdmaq-stats-${o.pid}-${st}`), img);
}
const results = {};
for (const native of [true, false]) {
  const reader = new StatsReader({ native, skipPid: process.pid });
  let s = reader.scan();
  const links = s.files.reduce((a, f) => a + f.links.length, 0);
  const buckets = s.files.reduce((a, f) => a + f.links.reduce((b, x) => b + x.latency.queue.length, 0), 0);
  const per = [];
  for (let i = 0; i < rounds; i++) {
    const c0 = process.cpuUsage();
    s = reader.scan();
    const c = process.cpuUsage(c0);
    per.push((c.user + c.system) / 1000);
  }
  per.sort((a, b) => a - b);
  const med = per[Math.floor(per.length / 2)];
  results[reader.mode] = { files: s.files.length, links, nonEmptyQueueBuckets: buckets, scanCpuMsMedian: Number(med.toFixed(2)), percentOfCoreAt1Hz: Number((med / 10).toFixed(2)) };
  reader.close();
}
console.log(JSON.stringify(results, null, 1));
for (const o of owners) o.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
process.exit(0);

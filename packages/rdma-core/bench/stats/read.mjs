// Reader cost (issue 14 target: the agent reads 100 processes × 64 links every second in ≤ 1 % of a core).
// One process opens 32 shm link pairs (64 link ends) and streams records on each (busy histograms); its
// statistics file is copied to 100 files owned by 100 live `sleep` processes (pid/start time patched), then
// StatsReader.scan() — what the agent's sample does — runs `rounds` times; CPU time per scan is printed.
// Two workloads: `idle` (the files do not change between scans) and `busy` (between scans, outside the timed
// window, every link of every file publishes: sequence +2, records +1, one histogram bucket +1 — the worst
// case, every link of 100 processes moving every second). Three readers, interleaved in the same run:
// `full` (incremental: false — the earlier reader: a full copy and fresh objects every scan), `incremental`
// (the default) and `fs` (no addon).
//   node bench/stats/read.mjs [rounds=20] [files=100]
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
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
  for (let k = 0; k < 20000; )
    if (tx.send(p)) k++;
    else await tx.whenWritable(64);
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
// Offsets (stats_file.h): header 4096, meta 2048 per slot, histograms 2 × 3712 × 8 per slot.
const HEADER = 4096;
const META = 2048;
const SLOT_HIST = 2 * 3712 * 8;
const slotCount = image.readUInt32LE(24);
const highWater = image.readUInt32LE(80);
// Per slot: the first non-empty queue bucket (from its bitmap at meta + 1024), or -1.
const firstBucket = [];
for (let s = 0; s < highWater; s++) {
  const m = HEADER + s * META;
  let b = -1;
  for (let w = 0; w < 58 && b < 0; w++) {
    const lo = image.readUInt32LE(m + 1024 + w * 8);
    const hi = image.readUInt32LE(m + 1024 + w * 8 + 4);
    if (lo) b = (w * 64 + Math.clz32(lo & -lo)) ^ 31;
    else if (hi) b = w * 64 + 32 + (Math.clz32(hi & -hi) ^ 31);
  }
  firstBucket.push(b);
}
const fds = owners.map((o) => openSync(join(dir, `rdmaq-stats-${o.pid}-${processStartTime(o.pid)}`), 'r+'));
const u64 = Buffer.alloc(8);
const bump = (fd, pos, by) => {
  readSync(fd, u64, 0, 8, pos);
  u64.writeBigUInt64LE(u64.readBigUInt64LE(0) + BigInt(by));
  writeSync(fd, u64, 0, 8, pos);
};
/** Every link of every file publishes once (outside the timed window). */
function publishAll() {
  for (const fd of fds)
    for (let s = 0; s < highWater; s++) {
      const m = HEADER + s * META;
      const b = firstBucket[s];
      if (b >= 0) bump(fd, HEADER + slotCount * META + s * SLOT_HIST + b * 8, 1);
      bump(fd, m + 56, 1); // records
      if (b >= 0) bump(fd, m + 160, 1); // queue histogram count
      bump(fd, m, 2); // seq
    }
}

const results = {};
const readers = {
  full: () => new StatsReader({ native: true, incremental: false, skipPid: process.pid }),
  incremental: () => new StatsReader({ native: true, skipPid: process.pid }),
  fs: () => new StatsReader({ native: false, skipPid: process.pid }),
};
const only = process.env.READERS?.split(',');
const workloads = process.env.WORKLOADS?.split(',') ?? ['idle', 'busy'];
for (const workload of workloads) {
  const rs = Object.fromEntries(
    Object.entries(readers)
      .filter(([k]) => !only || only.includes(k))
      .map(([k, mk]) => [k, mk()]),
  );
  const per = Object.fromEntries(Object.keys(rs).map((k) => [k, []]));
  const shape = {};
  for (const [k, r] of Object.entries(rs)) {
    const s = r.scan();
    shape[k] = {
      files: s.files.length,
      links: s.files.reduce((a, f) => a + f.links.length, 0),
      nonEmptyQueueBuckets: s.files.reduce(
        (a, f) => a + f.links.reduce((b, x) => b + x.latency.queue.length, 0),
        0,
      ),
      problems: s.problems.length,
    };
  }
  for (let i = 0; i < rounds; i++) {
    // Live processes beat every second (the file header's heartbeat), busy or not.
    u64.writeBigUInt64LE(BigInt(Date.now()));
    for (const fd of fds) writeSync(fd, u64, 0, 8, 56);
    if (workload === 'busy') publishAll();
    // Interleaved: each reader once per round, in a rotating order.
    const order = Object.keys(rs);
    for (let k = 0; k < i % order.length; k++) order.push(order.shift());
    for (const k of order) {
      const c0 = process.cpuUsage();
      const s = rs[k].scan();
      // What a sampler does with every link: read its figures and its histogram increments.
      let sink = 0;
      for (const f of s.files)
        for (const l of f.links)
          sink += l.counters.records + l.latency.queueDelta.length + l.latency.rttDelta.length;
      const c = process.cpuUsage(c0);
      per[k].push((c.user + c.system) / 1000);
      if (sink < 0) console.log(sink);
    }
  }
  for (const [k, arr] of Object.entries(per)) {
    arr.sort((a, b) => a - b);
    const med = arr[Math.floor(arr.length / 2)];
    results[`${workload}/${k}`] = {
      ...shape[k],
      scanCpuMsMedian: Number(med.toFixed(2)),
      percentOfCoreAt1Hz: Number((med / 10).toFixed(2)),
    };
    rs[k].close();
  }
}
console.log(JSON.stringify(results, null, 1));
const r = (w) =>
  (results[`${w}/full`]?.scanCpuMsMedian / results[`${w}/incremental`]?.scanCpuMsMedian).toFixed(1);
console.log(`full / incremental: ${workloads.map((w) => `${w} ×${r(w)}`).join(', ')}`);
for (const fd of fds) closeSync(fd);
for (const o of owners) o.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
process.exit(0);

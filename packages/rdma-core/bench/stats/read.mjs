// Reader cost (target: the agent reads 100 processes × 64 links every second in ≤ 1 % of a core).
// One process opens 32 shm link pairs (64 link ends) and streams records on each (busy histograms); its
// statistics file is copied to 100 files owned by 100 live `sleep` processes (pid/start time patched), then
// StatsReader.scan() — what the agent's sample does — runs `rounds` times; CPU time per scan is printed.
//
// Two workloads: `idle` (between scans only the headers' heartbeats move, as in live idle processes) and
// `busy` (between scans, outside the timed window, every link of every file publishes: sequence +2, records +1,
// one histogram bucket +1 — the worst case, every link of 100 processes moving every second).
// Three readers: `full` (incremental: false — the earlier reader: a full copy and fresh objects every scan),
// `incremental` (the default) and `fs` (no addon); a fourth, `native` (not in the default set), times only the
// addon's part of an incremental scan (snapshotDelta of every file, no parsing): the rest is JavaScript. Each reader runs in its own child process (its garbage and
// its GC are its own; 10 untimed warm-up scans), `reps` times, alternating reader by reader; the figure is the
// median over reps of each child's median CPU per scan.
//   node bench/stats/read.mjs [rounds=20] [files=100] [reps=3]
// READERS / WORKLOADS pick a subset; CHILD_NODE_ARGS adds node flags to each reader (e.g. --cpu-prof).
// A reader named `<reader>@<rdma-core dir>` runs with that checkout's build (e.g. a worktree of an earlier
// commit, built: `READERS=incremental,incremental@/tmp/old/packages/rdma-core`): old and new in one run.
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === '--child')
  await child(process.argv[3], process.argv[4], Number(process.argv[5]), process.argv[6]);
else await parent();

async function parent() {
  const rounds = Number(process.argv[2] ?? 20);
  const nFiles = Number(process.argv[3] ?? 100);
  const reps = Number(process.argv[4] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'rdmaq-stats-bench-'));
  process.env.RDMAQ_STATS_DIR = join(dir, 'own');
  execFileSync('mkdir', ['-p', join(dir, 'own')]);
  const { connect, listen, statsFileInfo, processStartTime } = await import('../../dist/index.js');

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
  for (let i = 0; i < nFiles; i++) owners.push(spawn('sleep', ['600']));
  await new Promise((r) => setTimeout(r, 300));
  const files = join(dir, 'files');
  execFileSync('mkdir', ['-p', files]);
  for (const o of owners) {
    const st = processStartTime(o.pid);
    const img = Buffer.from(image);
    img.writeUInt32LE(o.pid, 32);
    img.writeBigUInt64LE(BigInt(st), 40);
    writeFileSync(join(files, `rdmaq-stats-${o.pid}-${st}`), img);
  }
  const self = fileURLToPath(import.meta.url);
  const readers = (process.env.READERS ?? 'full,incremental,fs').split(',');
  const workloads = (process.env.WORKLOADS ?? 'idle,busy').split(',');
  const per = {};
  let shape;
  for (let rep = 0; rep < reps; rep++)
    for (const workload of workloads)
      for (const reader of readers) {
        const out = execFileSync(
          process.execPath,
          [
            ...(process.env.CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean),
            self,
            '--child',
            reader,
            workload,
            String(rounds),
            files,
          ],
          {
            encoding: 'utf8',
          },
        );
        const r = JSON.parse(out);
        shape ??= r.shape;
        const key = `${workload}/${reader}`;
        per[key] = [...(per[key] ?? []), r.medianMs];
      }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const results = {};
  for (const [k, arr] of Object.entries(per))
    results[k] = {
      scanCpuMsMedian: Number(med(arr).toFixed(2)),
      percentOfCoreAt1Hz: Number((med(arr) / 10).toFixed(2)),
      runs: arr.map((x) => Number(x.toFixed(2))),
    };
  console.log(JSON.stringify({ shape, rounds, reps, results }, null, 1));
  for (const w of workloads)
    if (results[`${w}/full`] && results[`${w}/incremental`])
      console.log(
        `${w}: full ${results[`${w}/full`].scanCpuMsMedian} ms, incremental ${results[`${w}/incremental`].scanCpuMsMedian} ms per scan ` +
          `(×${(results[`${w}/full`].scanCpuMsMedian / results[`${w}/incremental`].scanCpuMsMedian).toFixed(1)})`,
      );
  for (const o of owners) o.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

async function child(readerName, workload, rounds, files) {
  const [reader, otherBuild] = readerName.split('@');
  const dist = otherBuild ? `${otherBuild}/dist/` : '../../dist/';
  const { StatsReader } = await import(`${dist}index.js`);
  // Offsets (stats_file.h): header 4096, meta 2048 per slot, histograms 2 × 3712 × 8 per slot.
  const HEADER = 4096;
  const META = 2048;
  const SLOT_HIST = 2 * 3712 * 8;
  const paths = readdirSync(files).map((n) => join(files, n));
  const image = readFileSync(paths[0]);
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
      if (lo) b = w * 64 + (Math.clz32(lo & -lo) ^ 31);
      else if (hi) b = w * 64 + 32 + (Math.clz32(hi & -hi) ^ 31);
    }
    firstBucket.push(b);
  }
  const fds = paths.map((p) => openSync(p, 'r+'));
  const u64 = Buffer.alloc(8);
  const bump = (fd, pos, by) => {
    readSync(fd, u64, 0, 8, pos);
    u64.writeBigUInt64LE(u64.readBigUInt64LE(0) + BigInt(by));
    writeSync(fd, u64, 0, 8, pos);
  };
  const publishAll = () => {
    for (const fd of fds)
      for (let s = 0; s < highWater; s++) {
        const m = HEADER + s * META;
        const b = firstBucket[s];
        if (b >= 0) bump(fd, HEADER + slotCount * META + s * SLOT_HIST + b * 8, 1);
        bump(fd, m + 56, 1); // records
        if (b >= 0) bump(fd, m + 160, 1); // queue histogram count
        bump(fd, m, 2); // seq
      }
  };
  const r = new StatsReader({
    dir: files,
    native: reader !== 'fs',
    incremental: reader === 'incremental' || reader === 'native',
    sweep: false,
  });
  let s = r.scan();
  const shape = {
    files: s.files.length,
    links: s.files.reduce((a, f) => a + f.links.length, 0),
    nonEmptyQueueBuckets: s.files.reduce(
      (a, f) => a + f.links.reduce((b, x) => b + x.latency.queue.length, 0),
      0,
    ),
    problems: s.problems.length,
    badSlots: s.files.reduce((a, f) => a + f.badSlots.length, 0),
    busySlots: s.files.reduce((a, f) => a + f.busySlots, 0),
    firstBad: s.files[0]?.badSlots[0]?.reason,
  };
  const per = [];
  const scratch = Buffer.alloc(16 << 20);
  // The agent's reader runs for as long as the agent: 10 scans of warm-up (JIT) are not timed.
  for (let i = -10; i < rounds; i++) {
    // Live processes beat every second (the header's heartbeat), busy or not.
    u64.writeBigUInt64LE(BigInt(Date.now()));
    for (const fd of fds) writeSync(fd, u64, 0, 8, 56);
    if (workload === 'busy') publishAll();
    const c0 = process.cpuUsage();
    if (reader === 'native') {
      // The reader's own mappings (a private field): the native snapshotDelta of each file, nothing else.
      for (const m of r.maps.values())
        if (m.map.snapshotDeltaInto(scratch) < 0) throw new Error('scratch too small');
      const c = process.cpuUsage(c0);
      if (i >= 0) per.push((c.user + c.system) / 1000);
      continue;
    }
    s = r.scan();
    // What a sampler does with every link: read its figures and its histogram increments.
    let sink = 0;
    for (const f of s.files)
      for (const l of f.links)
        sink += l.counters.records + l.latency.queueDelta.length + l.latency.rttDelta.length;
    const c = process.cpuUsage(c0);
    if (i >= 0) per.push((c.user + c.system) / 1000);
    if (sink < 0) console.error(sink);
  }
  per.sort((a, b) => a - b);
  for (const fd of fds) closeSync(fd);
  r.close();
  process.stdout.write(JSON.stringify({ shape, medianMs: per[Math.floor(per.length / 2)] }));
  process.exit(0);
}

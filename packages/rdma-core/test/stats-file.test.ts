/**
 * Statistics files: two application processes (no agent) exchange 1,000,000 records over shm and
 * over fabric (`net` on loopback); what each application counted equals what its statistics file says, read
 * through the addon's mapping, through plain file reads and by `rdmaq-stat --json`. kill -9 of an application:
 * the next scan sweeps its file. Bad files (wrong version, truncated, random bytes, a bad slot) are named with
 * the reason and skipped while the good ones are still read.
 */
import { execFileSync, spawn as spawnProc } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { processStartTime, type StatsFileSnapshot, StatsReader } from '../src/stats-file.js';
import { Peer, SECRET, tempDir } from './fabric-helpers.js';

const APP = fileURLToPath(new URL('./fixtures/stats-app.mjs', import.meta.url));
const STAT = fileURLToPath(new URL('../dist/stat/cli.js', import.meta.url));
const dir = tempDir();
process.env.RDMAQ_STATS_DIR = dir.dir;
const peers: Peer[] = [];
const sleepers: Array<{ kill: () => void }> = [];

afterEach(() => {
  for (const p of peers.splice(0)) p.kill9();
  for (const s of sleepers.splice(0)) s.kill();
});
afterAll(() => dir.remove());

function app(cfg: Record<string, unknown>): Peer {
  const p = new Peer([APP, JSON.stringify(cfg)]);
  peers.push(p);
  return p;
}

/** Scans until `pred` holds on the files (the last batch's figures land right after the app reports). */
async function scanUntil(reader: StatsReader, pred: (files: StatsFileSnapshot[]) => boolean) {
  let last: ReturnType<StatsReader['scan']> | undefined;
  const scan = () => {
    last = reader.scan();
    return pred(last.files) ? last : undefined;
  };
  return waitFor('the files to match', scan, { timeoutMs: 10_000, everyMs: 50 }).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(last).slice(0, 2000)}`);
  });
}

const linkOf = (files: StatsFileSnapshot[], app: string, role: string) =>
  files.find((f) => f.app === app)?.links.find((l) => l.role === role);

async function exchange(transport: 'shm' | 'fabric', count: number) {
  const tag = `${transport}-${process.pid}`;
  const socketPath = join(dir.dir, `${transport}.sock`);
  const linkId = `stats-${tag}`;
  const rx = app({
    role: 'receiver',
    transport,
    socketPath,
    linkId,
    count,
    secret: SECRET,
    app: `rx-${tag}`,
  });
  const ready = await rx.waitFor((e) => e.ev === 'ready', 20_000, 'receiver ready');
  const tx = app({
    role: 'sender',
    transport,
    socketPath,
    linkId,
    count,
    port: ready.port,
    secret: SECRET,
    app: `tx-${tag}`,
  });
  const got = await rx.waitFor((e) => e.ev === 'done', 120_000, 'receiver done');
  const sent = await tx.waitFor((e) => e.ev === 'done', 120_000, 'sender done');
  expect(got.records).toBe(count);
  expect(sent.records).toBe(count);
  for (const [native, incremental] of [
    [true, true],
    [true, false],
    [false, false],
  ] as const) {
    const reader = new StatsReader({ native, incremental });
    const s = await scanUntil(reader, (files) => {
      const r = linkOf(files, `rx-${tag}`, 'receiver');
      const t = linkOf(files, `tx-${tag}`, 'sender');
      return r?.counters.records === count && t?.counters.records === count;
    });
    expect(s.problems).toEqual([]);
    const r = linkOf(s.files, `rx-${tag}`, 'receiver')!;
    const t = linkOf(s.files, `tx-${tag}`, 'sender')!;
    expect(r.counters.bytes).toBe(got.bytes);
    expect(t.counters.bytes).toBe(sent.bytes);
    expect(r).toMatchObject({ linkId, transport, direction: 'rx', state: 'up' });
    expect(t).toMatchObject({ linkId, transport, direction: 'tx', state: 'up' });
    // Every delivered record has its queue latency in the receiver's histogram.
    expect(r.latency.queue.reduce((a, [, n]) => a + n, 0)).toBe(count);
    reader.close();
  }
  // rdmaq-stat --json: the same figures, from another process that needs no agent.
  const json = JSON.parse(
    execFileSync(process.execPath, [STAT, '--json', '--dir', dir.dir], { encoding: 'utf8' }),
  );
  const files = json.files as StatsFileSnapshot[];
  expect(linkOf(files, `rx-${tag}`, 'receiver')?.counters.records).toBe(count);
  expect(linkOf(files, `tx-${tag}`, 'sender')?.counters.records).toBe(count);
  return { rx, tx, files };
}

describe('statistics files', () => {
  it('two shm applications: 1,000,000 records, the files say what the applications counted; kill -9 → swept', async () => {
    const { rx, tx } = await exchange('shm', 1_000_000);
    const rxFile = join(dir.dir, `rdmaq-stats-${rx.proc.pid}-${processStartTime(rx.proc.pid!)}`);
    expect(existsSync(rxFile)).toBe(true);
    rx.kill9();
    tx.kill9();
    // Both gone (the kernel reaped them) before the scan that must sweep their files.
    await Promise.all([rx.exit(), tx.exit()]);
    expect([rx.exited, tx.exited]).toEqual([true, true]);
    const s = new StatsReader().scan();
    expect(s.swept).toContain(rxFile);
    expect(existsSync(rxFile)).toBe(false);
    expect(s.files.filter((f) => f.pid === rx.proc.pid || f.pid === tx.proc.pid)).toEqual([]);
  }, 180_000);

  it('two fabric applications (net on loopback): 1,000,000 records, the files say what they counted', async () => {
    await exchange('fabric', 1_000_000);
  }, 240_000);

  it('incremental reads: one object per link kept across scans, deltas add up, same figures as a full read', async () => {
    const { listen, connect } = await import('../src/index.js');
    const l = await listen({ socketPath: join(dir.dir, 'inc.sock'), capacity: 1 << 20 });
    const rx = l.accept('inc', { idle: 'backoff' });
    let got = 0;
    rx.start(() => {
      got++;
    });
    const tx = await connect({ linkId: 'inc', socketPath: join(dir.dir, 'inc.sock') });
    const payload = Buffer.alloc(64);
    const mine = (s: { files: StatsFileSnapshot[] }) =>
      s.files
        .find((f) => f.pid === process.pid)
        ?.links.find((x) => x.linkId === 'inc' && x.role === 'receiver');
    const sum = (b: Array<[number, number]>) => b.reduce((a, [, n]) => a + n, 0);
    // A reader of its own for waiting, so the two under test scan only where the test says.
    const probe = new StatsReader({ incremental: false });
    let sent = 0;
    const send = async (n: number) => {
      for (let k = 0; k < n; ) {
        if (tx.send(payload)) k++;
        else await tx.whenWritable(64);
      }
      sent += n;
      await waitFor(
        `${sent} records delivered and in the receiver's statistics (counter and histogram)`,
        () => {
          const l = mine(probe.scan());
          return got === sent && l?.counters.records === sent && sum(l.latency.queue) === sent;
        },
        { everyMs: 5 },
      );
    };
    const inc = new StatsReader();
    const full = new StatsReader({ incremental: false });
    await send(1000);
    const a1 = mine(inc.scan())!;
    const b1 = mine(full.scan())!;
    expect(sum(a1.latency.queueDelta)).toBe(1000);
    expect(sum(b1.latency.queueDelta)).toBe(1000);
    await send(500);
    const a2 = mine(inc.scan())!;
    const b2 = mine(full.scan())!;
    expect(a2).toBe(a1); // the same object, updated in place
    expect(a2.counters.records).toBe(1500);
    expect(sum(a2.latency.queueDelta)).toBe(500);
    expect(sum(b2.latency.queueDelta)).toBe(500);
    // Apart from the object identity, both readers say the same (JSON sees the lazy bucket lists).
    expect(JSON.parse(JSON.stringify(a2))).toEqual(JSON.parse(JSON.stringify(b2)));
    // Nothing new: no increments.
    const a3 = mine(inc.scan())!;
    expect(a3.latency.queueDelta).toEqual([]);
    expect(sum(a3.latency.queue)).toBe(1500);
    inc.close();
    full.close();
    probe.close();
    await tx.close();
    await l.close();
  });

  it('bad files are named with the reason and skipped; the good ones are still read', async () => {
    // Live processes to own the names (a file of a dead process would be swept, not parsed).
    const sleeping = Array.from({ length: 5 }, () => {
      const c = spawnProc('sleep', ['60']);
      sleepers.push({ kill: () => c.kill('SIGKILL') });
      return c;
    });
    await Promise.all(sleeping.map((c) => once(c, 'spawn')));
    const owners = sleeping.map((c) => c.pid!);
    const good = app({
      role: 'receiver',
      transport: 'shm',
      socketPath: join(dir.dir, 'g.sock'),
      linkId: 'g',
      count: 1,
      app: 'good',
    });
    const ready = await good.waitFor((e) => e.ev === 'ready', 20_000, 'ready');
    const goodPath = (ready.stats as { path: string }).path;
    const image = readFileSync(goodPath);
    const name = (pid: number) => join(dir.dir, `rdmaq-stats-${pid}-${processStartTime(pid)}`);
    const wrongVersion = Buffer.from(image);
    wrongVersion.writeUInt32LE(7, 8);
    wrongVersion.writeUInt32LE(owners[0]!, 32);
    writeFileSync(name(owners[0]!), wrongVersion);
    writeFileSync(name(owners[1]!), image.subarray(0, 3000));
    writeFileSync(
      name(owners[2]!),
      Buffer.from(Array.from({ length: 70_000 }, () => (Math.random() * 256) | 0)),
    );
    const longTruncated = Buffer.from(image.subarray(0, 100_000));
    longTruncated.writeUInt32LE(owners[3]!, 32);
    writeFileSync(name(owners[3]!), longTruncated);
    // A valid file whose one slot says role 9: that slot alone is skipped.
    const badSlot = Buffer.from(image);
    badSlot.writeUInt32LE(owners[4]!, 32);
    badSlot.writeBigUInt64LE(BigInt(processStartTime(owners[4]!)!), 40);
    badSlot.writeUInt8(9, 4096 + 16);
    writeFileSync(name(owners[4]!), badSlot);
    for (const native of [true, false]) {
      const s = new StatsReader({ native }).scan();
      const why = (pid: number) => s.problems.find((p) => p.path === name(pid))?.reason ?? '';
      expect(why(owners[0]!)).toMatch(/layout version 7, this reader knows 1/);
      expect(why(owners[1]!)).toMatch(/truncated/);
      expect(why(owners[2]!)).toMatch(/bad magic/);
      expect(why(owners[3]!)).toMatch(/truncated/);
      const bad = s.files.find((f) => f.path === name(owners[4]!));
      expect(bad?.badSlots[0]?.reason).toMatch(/role 9/);
      expect(bad?.links).toEqual([]);
      expect(s.files.find((f) => f.path === goodPath)?.links[0]).toMatchObject({
        linkId: 'g',
        role: 'receiver',
      });
    }
    // rdmaq-stat names them too and still shows the good one.
    const text = execFileSync(process.execPath, [STAT, '--once', '--dir', dir.dir], { encoding: 'utf8' });
    expect(text).toMatch(/layout version 7/);
    expect(text).toMatch(/good/);
    for (const f of readdirSync(dir.dir))
      if (owners.some((p) => f.includes(`-${p}-`))) execFileSync('rm', [join(dir.dir, f)]);
  }, 60_000);
});

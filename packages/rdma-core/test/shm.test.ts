/**
 * Two real processes over shm (child_process.fork): ordered, complete, duplicate-free delivery of checksummed
 * records of random sizes for each idle strategy; kill -9 of the receiver and restart from its position;
 * slow consumer → back-pressure; an idle event-mode link sleeps.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuSeconds, Peer, removeDir, shmFiles, tempDir, uniqueLinkId } from './helpers.js';

const peers: Peer[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.kill()));
  for (const d of dirs.splice(0)) removeDir(d);
});

function setup(name: string) {
  const dir = tempDir('rdmaq-shm-');
  dirs.push(dir);
  return { socketPath: join(dir, 'agent.sock'), linkId: uniqueLinkId(name), dir };
}

function spawn(cfg: Record<string, unknown>): Peer {
  const p = new Peer(cfg);
  peers.push(p);
  return p;
}

interface Done {
  t: 'done';
  received: number;
  first: number;
  last: number;
  bad: number;
  badMsg: string;
  stats: {
    counters: { records: number; wraps: number; errors: Record<string, number>; backpressure: number };
  };
}

/**
 * Streams `count` records (sizes uniform in 0..maxSize, each sealed with a checksum) from a sender process
 * to a receiver process using `idle`, and checks order, completeness, checksums and the absence of duplicates.
 */
async function stream(idle: string, count: number, maxSize: number) {
  const { socketPath, linkId } = setup(idle);
  const common = { socketPath, linkId, count, maxSize, salt: 7 };
  const rx = spawn({ role: 'receiver', idle, ...common });
  await rx.waitFor((m) => m.t === 'ready');
  const tx = spawn({ role: 'sender', ...common });
  const done = (await rx.waitFor((m) => m.t === 'done', 150_000)) as unknown as Done;
  const sent = await tx.waitFor((m) => m.t === 'done');
  expect(done.bad, done.badMsg).toBe(0);
  expect(done.first).toBe(1);
  expect(done.last).toBe(count);
  expect(done.received).toBe(count);
  expect(done.stats.counters.records).toBe(count);
  expect(done.stats.counters.wraps).toBeGreaterThan(0);
  expect(done.stats.counters.errors).toEqual({});
  expect((sent.stats as Done['stats']).counters.records).toBe(count);
  tx.send({ t: 'close' });
  await Promise.all([rx.waitExit(), tx.waitExit()]);
  expect(shmFiles(linkId)).toEqual([]);
}

describe('two processes over shm', () => {
  // 1,000,000 records of 0–64 KiB (≈ 32 GB through a 4 MiB ring) with each idle strategy, every byte
  // checksummed natively. The strategies differ in what the consumer does when the ring is empty.
  for (const idle of ['busy-spin', 'backoff', 'event'] as const) {
    it(`${idle}: 1,000,000 random-size records arrive in order, complete, intact, once`, async () => {
      await stream(idle, 1_000_000, 65_536);
    }, 240_000);
  }

  it('kill -9 of the receiver mid-stream: the restarted receiver resumes, nothing lost or duplicated', async () => {
    const { socketPath, linkId, dir } = setup('restart');
    const positionFile = join(dir, 'position');
    const count = 150_000;
    const common = { socketPath, linkId, count, maxSize: 4096, salt: 11, positionFile, idle: 'backoff' };
    // rx1 spends 20 µs per record, so the kill surely lands mid-stream (≥ 2 s of records still to go).
    const rx1 = spawn({ role: 'receiver', ...common, progressEvery: 5000, slowNs: 20_000 });
    await rx1.waitFor((m) => m.t === 'ready');
    const tx = spawn({ role: 'sender', ...common });
    await rx1.waitFor((m) => m.t === 'progress' && (m.received as number) >= 40_000);
    await rx1.kill('SIGKILL');
    expect(rx1.messages.some((m) => m.t === 'done')).toBe(false);
    // The sender learns of the death through the control socket.
    await tx.waitFor((m) => m.t === 'state' && m.state === 'down' && m.code === 'ERR_RDMAQ_PEER_GONE');
    expect(shmFiles(linkId).filter((f) => f.endsWith('.ring'))).toHaveLength(1); // sender alive: not swept
    const rx2 = spawn({ role: 'receiver', ...common });
    const ready = await rx2.waitFor((m) => m.t === 'ready');
    const resumeFrom = ready.resumeFrom as number;
    expect(resumeFrom).toBeGreaterThan(40_000);
    const done = (await rx2.waitFor((m) => m.t === 'done', 100_000)) as unknown as Done;
    expect(done.bad, done.badMsg).toBe(0);
    // rx1 delivered 1..resumeFrom-1 (its position file), rx2 exactly resumeFrom..count, each in order.
    expect(done.first).toBe(resumeFrom);
    expect(done.last).toBe(count);
    expect(done.received).toBe(count - resumeFrom + 1);
    const sent = await tx.waitFor((m) => m.t === 'done');
    const txStats = sent.stats as { counters: { reconnects: number; errors: Record<string, number> } };
    expect(txStats.counters.reconnects).toBeGreaterThanOrEqual(1);
    expect(txStats.counters.errors.peer_gone).toBeGreaterThanOrEqual(1);
    tx.send({ t: 'close' });
    await Promise.all([rx2.waitExit(), tx.waitExit()]);
    expect(shmFiles(linkId)).toEqual([]);
  }, 120_000);

  it('kill -9 of the sender mid-stream: a restarted sender continues the sequence, nothing lost or duplicated', async () => {
    const { socketPath, linkId } = setup('txrestart');
    const count = 150_000;
    const common = { socketPath, linkId, count, maxSize: 4096, salt: 13, idle: 'event' };
    // The receiver spends 10 µs per record and the sender is at most a ring ahead of it: the kill lands
    // mid-stream with more than a second of records to go.
    const rx = spawn({ role: 'receiver', ...common, progressEvery: 5000, slowNs: 10_000 });
    await rx.waitFor((m) => m.t === 'ready');
    const tx1 = spawn({ role: 'sender', ...common });
    await rx.waitFor((m) => m.t === 'progress' && (m.received as number) >= 30_000);
    await tx1.kill('SIGKILL');
    expect(tx1.messages.some((m) => m.t === 'done')).toBe(false);
    await rx.waitFor((m) => m.t === 'state' && m.state === 'down' && m.code === 'ERR_RDMAQ_PEER_GONE');
    // The new sender takes tail and sequence from the ring's control block.
    const tx2 = spawn({ role: 'sender', ...common });
    const done = (await rx.waitFor((m) => m.t === 'done', 100_000)) as unknown as Done;
    expect(done.bad, done.badMsg).toBe(0);
    expect(done.first).toBe(1);
    expect(done.last).toBe(count);
    expect(done.received).toBe(count);
    await tx2.waitFor((m) => m.t === 'done');
    tx2.send({ t: 'close' });
    await Promise.all([rx.waitExit(), tx2.waitExit()]);
    expect(shmFiles(linkId)).toEqual([]);
  }, 120_000);

  it('a slow consumer makes the producer see back-pressure, never corruption', async () => {
    const { socketPath, linkId } = setup('slow');
    const count = 3000;
    // 64 KiB ring, records up to 4 KiB, 200 µs per record at the consumer.
    const common = { socketPath, linkId, count, maxSize: 4096, salt: 3, capacity: 65_536 };
    const rx = spawn({ role: 'receiver', idle: 'event', slowNs: 200_000, ...common });
    await rx.waitFor((m) => m.t === 'ready');
    const tx = spawn({ role: 'sender', ...common });
    const done = (await rx.waitFor((m) => m.t === 'done', 60_000)) as unknown as Done;
    const sent = await tx.waitFor((m) => m.t === 'done');
    expect(done.bad, done.badMsg).toBe(0);
    expect(done.received).toBe(count);
    expect(sent.waits as number).toBeGreaterThan(0);
    expect((sent.stats as Done['stats']).counters.backpressure).toBeGreaterThan(0);
    tx.send({ t: 'close' });
    await Promise.all([rx.waitExit(), tx.waitExit()]);
  }, 90_000);

  it('an idle event-mode link sleeps (no CPU), then wakes for traffic', async () => {
    const { socketPath, linkId } = setup('idle');
    const count = 1000;
    const common = { socketPath, linkId, count, maxSize: 1024, salt: 5 };
    const rx = spawn({ role: 'receiver', idle: 'event', ...common });
    await rx.waitFor((m) => m.t === 'ready');
    // The sender connects, then stays silent for 4 s before sending.
    const tx = spawn({ role: 'sender', idleMs: 4000, ...common });
    await tx.waitFor((m) => m.t === 'connected');
    await new Promise((r) => setTimeout(r, 500)); // let both settle after start-up
    const rx0 = cpuSeconds(rx.pid);
    const tx0 = cpuSeconds(tx.pid);
    await new Promise((r) => setTimeout(r, 3000));
    const rxCpu = cpuSeconds(rx.pid) - rx0;
    const txCpu = cpuSeconds(tx.pid) - tx0;
    // A spinning consumer would use ~3 s here; a sleeping one a few ticks at most. Generous threshold.
    expect(rxCpu).toBeLessThan(0.3);
    expect(txCpu).toBeLessThan(0.3);
    const done = (await rx.waitFor((m) => m.t === 'done', 30_000)) as unknown as Done;
    expect(done.bad, done.badMsg).toBe(0);
    expect(done.received).toBe(count);
    tx.send({ t: 'close' });
    await Promise.all([rx.waitExit(), tx.waitExit()]);
    expect(existsSync(socketPath)).toBe(false);
  }, 60_000);
});

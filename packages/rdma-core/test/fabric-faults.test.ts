/**
 * Process faults on a fabric link between two processes: kill -9 of the receiver (restarted from its last
 * delivered sequence) and, with the journal on, kill -9 of the sender (restarted from its journal). Every
 * record checked by size and CRC-32; nothing lost, nothing duplicated.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, readPos, startPeer, startReceiver, tempDir } from './fabric-helpers.js';

const cleanups: Array<() => void> = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanups.splice(0)) c();
});

type Done = { ev: string; first: number; next: number; delivered: number; bad: number };

describe.each(['net', 'tcp;ofi_rxm'])('fabric link faults over %s', (provider) => {
  it('kill -9 of the receiver mid-stream, restart from its last delivered sequence: nothing lost or duplicated', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const posFile = join(tmp.dir, 'pos');
    const count = 300_000;
    const common = { linkId: 'faults', provider, count, maxSize: 4096 };
    const r1 = await startReceiver({ ...common, posFile });
    // Throttled a little so the kill lands mid-stream whatever the machine's speed.
    const tx = startPeer('send', { ...common, port: r1.port, throttleEvery: 500, throttleMs: 1 });
    await r1.peer.waitFor(
      (e) => e.ev === 'progress' && (e.next as number) > 30_000,
      60_000,
      'first receiver progress',
    );
    r1.peer.kill9();
    await r1.peer.exit();
    expect(r1.peer.latest('bad')).toBe(0);
    const resumeFrom = readPos(posFile);
    expect(resumeFrom).toBeGreaterThan(30_000);
    expect(resumeFrom).toBeLessThan(count);
    const r2 = await startReceiver({ ...common, posFile, port: r1.port, resumeFrom });
    const done = (await r2.peer.waitFor(
      (e) => e.ev === 'done',
      120_000,
      'second receiver done',
    )) as unknown as Done;
    expect(done).toMatchObject({ first: resumeFrom, next: count, delivered: count - resumeFrom, bad: 0 });
    const sent = await tx.waitFor((e) => e.ev === 'done', 60_000, 'sender done');
    const c = (sent.stats as { counters: { reconnects: number } }).counters;
    expect(c.reconnects).toBeGreaterThanOrEqual(1);
    // Reconnecting went straight through: no handshake was refused on the way.
    expect(tx.events.filter((e) => e.code === 'ERR_RDMAQ_HANDSHAKE')).toEqual([]);
  }, 200_000);

  it('with the journal: kill -9 of the sender, restart: every accepted record arrives once', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const journal = join(tmp.dir, 'journal');
    const count = 200_000;
    const common = { linkId: 'journal', provider, count, maxSize: 4096 };
    const rx = await startReceiver(common);
    const s1 = startPeer('send', { ...common, port: rx.port, journal, throttleEvery: 500, throttleMs: 1 });
    const first = await s1.waitFor((e) => e.ev === 'ready', 30_000, 'first sender ready');
    expect(first).toMatchObject({ startSeq: 0, recovered: false });
    await rx.peer.waitFor(
      (e) => e.ev === 'progress' && (e.next as number) > 20_000,
      60_000,
      'receiver progress',
    );
    s1.kill9();
    await s1.exit();
    const s2 = startPeer('send', { ...common, port: rx.port, journal });
    const second = await s2.waitFor((e) => e.ev === 'ready', 30_000, 'restarted sender ready');
    expect(second.recovered).toBe(true);
    expect(second.startSeq as number).toBeGreaterThan(20_000); // continues after what the journal accepted
    const done = (await rx.peer.waitFor((e) => e.ev === 'done', 120_000, 'receiver done')) as unknown as Done;
    expect(done).toMatchObject({ first: 0, next: count, delivered: count, bad: 0 });
    await s2.waitFor((e) => e.ev === 'done', 60_000, 'sender done');
    expect(s2.events.filter((e) => e.code === 'ERR_RDMAQ_HANDSHAKE')).toEqual([]);
  }, 200_000);
});

/** One listener object serves both transports: shm senders on the unix socket, fabric senders on its TCP port. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { connect, listen } from '../src/index.js';
import { removeDir, tempDir, uniqueLinkId } from './helpers.js';

describe('listener with both acceptors', () => {
  it('accepts shm and fabric links by id and hands out receivers for unknown ones', async () => {
    const dir = tempDir('rdmaq-both-');
    const secret = 'listener-test-secret';
    const l = await listen({
      socketPath: join(dir, 's.sock'),
      capacity: 1 << 20,
      acceptUnknown: true,
      idle: 'event',
      tcp: { host: '127.0.0.1', port: 0, secret },
    });
    try {
      expect(l.port).toBeGreaterThan(0);
      const seen: string[] = [];
      l.on('receiver', (rx: { linkId: string; start(h: () => void): void }) => {
        seen.push(rx.linkId);
        rx.start(() => {});
      });
      const shmId = uniqueLinkId('both-shm');
      const fabId = uniqueLinkId('both-fab');
      const txs = await connect({ linkId: shmId, socketPath: l.socketPath });
      const txf = await connect({
        transport: 'fabric',
        linkId: fabId,
        host: '127.0.0.1',
        port: l.port!,
        secret,
        provider: 'tcp;ofi_rxm',
        capacity: 1 << 20,
      });
      for (let i = 0; i < 100; i++) {
        expect(txs.send(Buffer.alloc(64, i))).toBe(true);
        while (!txf.send(Buffer.alloc(64, i))) await txf.whenWritable(64);
      }
      expect(seen.sort()).toEqual([fabId, shmId].sort());
      const records = () =>
        [l.receiver(shmId)!.stats(), l.receiver(fabId)!.stats()].map((s) => s.counters.records);
      await waitFor('100 records on both receivers', () => records().every((n) => n >= 100), 10_000);
      expect(records()).toEqual([100, 100]);
      expect(l.receiver(fabId)!.stats().transport).toBe('fabric');
      expect(l.receiver(shmId)!.stats().transport).toBe('shm');
      // Receivers made for unknown links take the listener's idle strategy; an explicit one wins.
      expect(l.receiver(shmId)!.idle).toBe('event');
      expect(l.receiver(fabId)!.idle).toBe('event');
      expect(l.accept(uniqueLinkId('explicit'), { idle: 'busy-spin' }).idle).toBe('busy-spin');
      await txs.close();
      await txf.close();
    } finally {
      await l.close();
      removeDir(dir);
    }
  }, 30_000);

  it('a fabric link on a listener without a TCP acceptor is ERR_RDMAQ_NO_TRANSPORT', async () => {
    const dir = tempDir('rdmaq-noacc-');
    const l = await listen({ socketPath: join(dir, 's.sock') });
    expect(() => l.accept('x', { transport: 'fabric' })).toThrow(
      expect.objectContaining({ code: 'ERR_RDMAQ_NO_TRANSPORT' }),
    );
    await l.close();
    removeDir(dir);
  });
});

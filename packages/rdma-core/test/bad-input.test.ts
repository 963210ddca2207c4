/**
 * Bad input never crashes, hangs or leaks files: corrupted headers, oversized claims, incompatible ring files,
 * a peer that is gone, handshake refusals, and stale files of dead processes.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  openSync,
  readdirSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Listener, listen, type RdmaqError } from '../src/index.js';
import { native } from '../src/native.js';
import { Peer, removeDir, shmFiles, tempDir, uniqueLinkId } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listener(capacity = 65_536): Promise<Listener> {
  const dir = tempDir('rdmaq-bad-');
  cleanups.push(() => removeDir(dir));
  const l = await listen({ socketPath: join(dir, 's.sock'), capacity });
  cleanups.push(() => l.close());
  return l;
}

/** Writes a ring file header by hand: magic, version, header bytes, capacity; file of `size` bytes. */
function fakeRing(
  path: string,
  opts: { magic?: string; version?: number; capacity?: number; size?: number },
) {
  const cap = opts.capacity ?? 65_536;
  const h = Buffer.alloc(128);
  h.write(opts.magic ?? 'RDMAQRNG', 0, 'latin1');
  h.writeUInt32LE(opts.version ?? 1, 8);
  h.writeUInt32LE(4096, 12);
  h.writeBigUInt64LE(BigInt(cap), 16);
  const fd = openSync(path, 'w', 0o600);
  writeSync(fd, h, 0, 128, 0);
  ftruncateSync(fd, opts.size ?? 4096 + cap);
  closeSync(fd);
  cleanups.push(() => {
    if (existsSync(path)) unlinkSync(path);
  });
}

describe('bad input', () => {
  it.each([
    [
      'an unknown record type',
      4,
      (b: Buffer, o: number) => b.writeUInt16LE(77, o + 4),
      /unknown record type 77/,
    ],
    [
      'a length beyond the ring',
      0,
      (b: Buffer, o: number) => b.writeUInt32LE(1 << 30, o),
      /runs past the ring's end/,
    ],
    [
      'a length beyond the tail',
      0,
      (b: Buffer, o: number) => b.writeUInt32LE(4000, o),
      /runs past the published tail/,
    ],
    [
      'a wrong sequence',
      8,
      (b: Buffer, o: number) => b.writeBigUInt64LE(99n, o + 8),
      /sequence 99 where 2 was expected/,
    ],
  ])('a corrupted header (%s) is a link error, never data', async (_name, _field, corrupt, message) => {
    const l = await listener();
    const linkId = uniqueLinkId('corrupt');
    const rx = l.accept(linkId);
    const tx = await connect({ linkId, socketPath: l.socketPath });
    cleanups.push(() => tx.close());
    const states: string[] = [];
    rx.on('state', (s) => states.push(`${s.state}:${s.code ?? ''}`));
    for (let i = 0; i < 3; i++) tx.send(Buffer.alloc(64, i));
    // Record 2 starts at 88 (24 + 64 bytes of record 1): corrupt its header in the shared ring.
    corrupt(rx.buffer, 88);
    const seen: number[] = [];
    const err = (() => {
      try {
        rx.poll((_b, _o, _l, seq) => seen.push(seq));
      } catch (e) {
        return e as RdmaqError;
      }
      return undefined;
    })();
    expect(err?.code).toBe('ERR_RDMAQ_BAD_HEADER');
    expect(err?.message).toMatch(message);
    expect(err?.message).toMatch(/ring position 88/);
    expect(seen).toEqual([1]); // what came before is delivered, nothing after
    // The link stays broken: later polls throw too, and the error is counted.
    expect(() => rx.poll(() => {})).toThrow(expect.objectContaining({ code: 'ERR_RDMAQ_BAD_HEADER' }));
    const s = rx.stats();
    expect(s.counters.errors.bad_header).toBe(1);
    expect(s.state).toBe('down');
    await rx.close();
    expect(shmFiles(linkId)).toEqual([]);
  });

  it('checksum: true — a flipped payload byte is ERR_RDMAQ_CHECKSUM, never data; without it, it is delivered', async () => {
    const l = await listener();
    for (const checksum of [true, false]) {
      const linkId = uniqueLinkId(`crc-${checksum}`);
      const rx = l.accept(linkId);
      const tx = await connect({ linkId, socketPath: l.socketPath, checksum });
      cleanups.push(() => tx.close());
      for (let i = 1; i <= 3; i++) expect(tx.send(Buffer.alloc(64, i))).toBe(true);
      // Record 2 starts at 96 with the 4-byte seal (align8(24 + 64 + 4)), at 88 without it.
      const second = checksum ? 96 : 88;
      expect(rx.buffer.readBigUInt64LE(second + 8)).toBe(2n);
      rx.buffer[second + 24 + 10]! ^= 0x01;
      const seen: Array<[number, number]> = [];
      let err: RdmaqError | undefined;
      try {
        rx.poll((b, o, _l, seq) => seen.push([seq, b[o + 10]!]));
      } catch (e) {
        err = e as RdmaqError;
      }
      if (checksum) {
        expect(err?.code).toBe('ERR_RDMAQ_CHECKSUM');
        expect(err?.message).toMatch(
          /payload checksum mismatch in record 2 \(64 bytes at ring position 96\)/,
        );
        expect(seen).toEqual([[1, 1]]);
        expect(() => rx.poll(() => {})).toThrow(expect.objectContaining({ code: 'ERR_RDMAQ_CHECKSUM' }));
        expect(rx.stats().counters.errors.checksum).toBe(1);
        expect(rx.stats().state).toBe('down');
      } else {
        // What the option is for: without a seal, only headers are checked and the flipped byte is data.
        expect(err).toBeUndefined();
        expect(seen).toEqual([
          [1, 1],
          [2, 3],
          [3, 3],
        ]);
      }
      await rx.close();
    }
  });

  it('checksum: true through many wraps of the ring, with send, claim/commit and a shrunk claim: all intact', async () => {
    const l = await listener();
    const linkId = uniqueLinkId('crc-wraps');
    const rx = l.accept(linkId);
    const tx = await connect({ linkId, socketPath: l.socketPath, checksum: true });
    cleanups.push(() => tx.close());
    let got = 0;
    let bad = 0;
    const total = 20_000;
    let sent = 0;
    while (got < total) {
      while (sent < total) {
        const len = (sent * 7919) % 1500;
        if (sent % 3 === 0) {
          // zero-copy: claim an upper bound, write, commit the real length
          const off = tx.claim(len + 16);
          if (off < 0) break;
          tx.buffer.fill(sent & 0xff, off, off + len);
          tx.commit(len);
        } else if (!tx.send(Buffer.alloc(len, sent & 0xff))) break;
        sent++;
      }
      rx.poll((b, o, n, seq) => {
        const want = (seq - 1) & 0xff;
        if (n !== ((seq - 1) * 7919) % 1500 || !b.subarray(o, o + n).every((x) => x === want)) bad++;
        got++;
      });
    }
    expect(bad).toBe(0);
    expect(rx.stats().counters.wraps).toBeGreaterThan(100);
    expect(rx.stats().counters.errors.checksum).toBeUndefined();
    await rx.close();
  });

  it('a corrupt head in the control block never opens space to overwrite unread records', async () => {
    const l = await listener();
    const linkId = uniqueLinkId('credit');
    const rx = l.accept(linkId);
    const tx = await connect({ linkId, socketPath: l.socketPath });
    cleanups.push(() => tx.close());
    const rec = Buffer.alloc(1000, 1);
    for (let i = 0; i < 64; i++) expect(tx.send(rec)).toBe(true); // the 64 KiB ring is full
    // head (u64 at file offset 128) jumps far beyond anything published.
    const fd = openSync(l.ringPath(linkId), 'r+');
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(1n << 40n);
    writeSync(fd, b, 0, 8, 128);
    closeSync(fd);
    expect(tx.send(rec)).toBe(false);
    expect(tx.stats().counters.errors.bad_credit).toBeGreaterThanOrEqual(1);
    expect(rx.buffer.readUInt32LE(0)).toBe(1000); // record 1 untouched
  });

  it('a corrupted header met by start() emits error and state down', async () => {
    const l = await listener();
    const linkId = uniqueLinkId('corrupt-start');
    const rx = l.accept(linkId, { idle: 'event' });
    const tx = await connect({ linkId, socketPath: l.socketPath });
    cleanups.push(() => tx.close());
    tx.send(Buffer.alloc(8));
    rx.buffer.writeUInt16LE(0, 4); // type 0
    const err = await new Promise<RdmaqError>((resolve) => {
      rx.on('error', resolve);
      rx.start(() => {});
    });
    expect(err.code).toBe('ERR_RDMAQ_BAD_HEADER');
    expect(rx.state).toBe('down');
  });

  it('a ring file of another version, size or kind is refused with a clear code, no files leak', async () => {
    const l = await listener();
    const cases: Array<[Parameters<typeof fakeRing>[1], string, RegExp]> = [
      [{ version: 99 }, 'ERR_RDMAQ_RING_VERSION', /layout version 99, this build speaks 1/],
      [{ size: 4096 + 1000 }, 'ERR_RDMAQ_RING_SIZE', /expected 69632 bytes/],
      [{ capacity: 100_000, size: 4096 + 100_000 }, 'ERR_RDMAQ_RING_SIZE', /capacity 100000/],
      [{ magic: 'NOTARING' }, 'ERR_RDMAQ_RING_MAGIC', /not an rdmaq ring/],
      [{ size: 100 }, 'ERR_RDMAQ_RING_SIZE', /too small/],
    ];
    for (const [opts, code, msg] of cases) {
      const linkId = uniqueLinkId('file');
      const path = l.ringPath(linkId);
      fakeRing(path, opts);
      let err: RdmaqError | undefined;
      try {
        l.accept(linkId);
      } catch (e) {
        err = e as RdmaqError;
      }
      expect(err?.code).toBe(code);
      expect(err?.message).toMatch(msg);
      expect(err?.message).toContain(path);
      // Only the foreign file itself is there: no FIFOs were made for a ring we refused.
      expect(shmFiles(linkId)).toEqual([path.slice('/dev/shm/'.length)]);
      expect(l.receiver(linkId)).toBeUndefined();
    }
  });

  it('capacity that is not a power of two is refused', async () => {
    const l = await listener();
    expect(() => l.accept(uniqueLinkId('cap'), { capacity: 100_000 })).toThrow(
      expect.objectContaining({ code: 'ERR_RDMAQ_ARG' }),
    );
  });

  it('connect errors: nobody listening, unknown link, link busy', async () => {
    const dir = tempDir('rdmaq-conn-');
    cleanups.push(() => removeDir(dir));
    await expect(
      connect({ linkId: 'x', socketPath: join(dir, 'none.sock'), connectTimeoutMs: 200 }),
    ).rejects.toMatchObject({ code: 'ERR_RDMAQ_CONNECT' });
    const l = await listener();
    await expect(connect({ linkId: 'nope', socketPath: l.socketPath })).rejects.toMatchObject({
      code: 'ERR_RDMAQ_UNKNOWN_LINK',
    });
    const linkId = uniqueLinkId('busy');
    l.accept(linkId);
    const tx = await connect({ linkId, socketPath: l.socketPath });
    cleanups.push(() => tx.close());
    await expect(connect({ linkId, socketPath: l.socketPath })).rejects.toMatchObject({
      code: 'ERR_RDMAQ_LINK_BUSY',
    });
    await expect(listen({ socketPath: l.socketPath })).rejects.toMatchObject({
      code: 'ERR_RDMAQ_LISTEN_BUSY',
    });
  });

  it('peer gone: a killed sender process is reported as state down / ERR_RDMAQ_PEER_GONE', async () => {
    const l = await listener();
    const linkId = uniqueLinkId('gone');
    const rx = l.accept(linkId);
    const down = new Promise<{ state: string; code?: string }>((resolve) =>
      rx.on('state', (s) => {
        if (s.state === 'down') resolve(s);
      }),
    );
    const tx = new Peer({
      role: 'sender',
      socketPath: l.socketPath,
      linkId,
      count: 10,
      maxSize: 100,
      salt: 1,
    });
    cleanups.push(() => tx.kill());
    await tx.waitFor((m) => m.t === 'done');
    await tx.kill('SIGKILL');
    const s = await down;
    expect(s.code).toBe('ERR_RDMAQ_PEER_GONE');
    expect(rx.stats().counters.errors.peer_gone).toBe(1);
    // Records already in the ring still drain after the sender died.
    let n = 0;
    rx.poll(() => n++);
    expect(n).toBe(10);
    await rx.close();
    expect(shmFiles(linkId)).toEqual([]);
  });

  it('receiver closing tells the sender (down, not an error); closed ends throw ERR_RDMAQ_CLOSED', async () => {
    const l = await listener();
    const linkId = uniqueLinkId('bye');
    const rx = l.accept(linkId);
    const tx = await connect({ linkId, socketPath: l.socketPath, reconnect: false });
    const down = new Promise<{ reason: string; code?: string }>((resolve) =>
      tx.on('state', (s) => {
        if (s.state === 'down') resolve(s);
      }),
    );
    await rx.close();
    const s = await down;
    expect(s.code).toBeUndefined();
    expect(s.reason).toMatch(/receiver closed/);
    expect(() => rx.poll(() => {})).toThrow(expect.objectContaining({ code: 'ERR_RDMAQ_CLOSED' }));
    const kept = tx.buffer;
    await tx.close();
    expect(() => tx.send(Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'ERR_RDMAQ_CLOSED' }));
    // A Buffer over the ring kept after close stays valid memory (the mapping lives as long as the Buffer).
    kept[100] = 7;
    expect(kept[100]).toBe(7);
    expect(rx.buffer.length).toBe(65_536);
    await expect(tx.whenWritable()).rejects.toMatchObject({ code: 'ERR_RDMAQ_CLOSED' });
    expect(shmFiles(linkId)).toEqual([]);
  });

  it('garbage on the handshake socket is refused with ERR_RDMAQ_HANDSHAKE, the listener keeps serving', async () => {
    const l = await listener();
    const errors: string[] = [];
    l.on('error', (e: RdmaqError) => errors.push(e.code));
    for (const junk of [
      'not json\n',
      '{"no":"type"}\n',
      '{"t":"hello","v":99,"linkId":"x"}\n',
      'x'.repeat(70_000),
    ]) {
      await new Promise<void>((resolve) => {
        const s = netConnect(l.socketPath, () => s.write(junk));
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.resume();
      });
    }
    expect(errors).toEqual(Array(4).fill('ERR_RDMAQ_HANDSHAKE'));
    const linkId = uniqueLinkId('after-junk');
    const rx = l.accept(linkId);
    const tx = await connect({ linkId, socketPath: l.socketPath });
    cleanups.push(() => tx.close());
    expect(tx.send(Buffer.from('still fine'))).toBe(true);
    expect(rx.poll(() => {})).toBe(1);
  });

  it('resumeFrom behind the ring head is ERR_RDMAQ_RESUME_GAP; ahead of it skips what was delivered', async () => {
    const dir = tempDir('rdmaq-gap-');
    cleanups.push(() => removeDir(dir));
    const socketPath = join(dir, 'a.sock');
    const linkId = uniqueLinkId('gap');
    const common = { socketPath, linkId, count: 100, maxSize: 64, salt: 2 };
    const rx = new Peer({ role: 'receiver', idle: 'event', linger: true, ...common });
    cleanups.push(() => rx.kill());
    await rx.waitFor((m) => m.t === 'ready');
    const tx = new Peer({ role: 'sender', ...common });
    cleanups.push(() => tx.kill());
    await rx.waitFor((m) => m.t === 'done');
    await tx.waitFor((m) => m.t === 'done');
    await rx.kill('SIGKILL'); // the ring (head at sequence 101) survives: its sender is alive
    const l = await listen({ socketPath });
    cleanups.push(() => l.close());
    expect(() => l.accept(linkId, { resumeFrom: 50 })).toThrow(
      expect.objectContaining({
        code: 'ERR_RDMAQ_RESUME_GAP',
        message: expect.stringMatching(/continues at sequence 101/),
      }),
    );
    const r2 = l.accept(linkId, { resumeFrom: 101 });
    expect(r2.nextSeq).toBe(101);
    await r2.close();
  });

  it('listen() sweeps ring files whose receiver and sender are both dead', async () => {
    const dir = tempDir('rdmaq-sweep-');
    cleanups.push(() => removeDir(dir));
    const linkId = uniqueLinkId('stale');
    const rx = new Peer({
      role: 'receiver',
      idle: 'event',
      socketPath: join(dir, 'a.sock'),
      linkId,
      count: 1e9,
      maxSize: 1,
      salt: 1,
    });
    cleanups.push(() => rx.kill());
    await rx.waitFor((m) => m.t === 'ready');
    expect(
      shmFiles(linkId)
        .map((f) => f.slice(f.lastIndexOf('.')))
        .sort(),
    ).toEqual(['.ring', '.rxw', '.txw']);
    await rx.kill('SIGKILL');
    expect(shmFiles(linkId)).toHaveLength(3); // kill -9 leaves them
    const l = await listen({ socketPath: join(dir, 'b.sock') });
    await l.close();
    expect(shmFiles(linkId)).toEqual([]);
    expect(native.sweepStale('/nonexistent-dir')).toEqual([]);
  });

  it('the sweep removes old wake-up FIFOs whose ring file is gone, and nothing else', () => {
    const dir = tempDir('rdmaq-fifo-sweep-');
    cleanups.push(() => removeDir(dir));
    const old = Date.now() / 1000 - 3600;
    const fifo = (name: string, age?: number) => {
      execFileSync('mkfifo', [join(dir, name)]);
      if (age !== undefined) utimesSync(join(dir, name), age, age);
      return join(dir, name);
    };
    const orphanRx = fifo('rdmaq-gone-0001.rxw', old);
    const orphanTx = fifo('rdmaq-gone-0001.txw', old);
    fifo('rdmaq-fresh-0002.rxw'); // just created: an end may be opening right now
    fifo('rdmaq-kept-0003.txw', old);
    writeFileSync(join(dir, 'rdmaq-kept-0003.ring'), ''); // its ring exists (not ours to judge: too small)
    fifo('other-0004.rxw', old); // not an rdmaq name
    writeFileSync(join(dir, 'rdmaq-file-0005.rxw'), ''); // not a FIFO
    utimesSync(join(dir, 'rdmaq-file-0005.rxw'), old, old);
    expect(native.sweepStale(dir).sort()).toEqual([orphanRx, orphanTx]);
    expect(readdirSync(dir).sort()).toEqual([
      'other-0004.rxw',
      'rdmaq-file-0005.rxw',
      'rdmaq-fresh-0002.rxw',
      'rdmaq-kept-0003.ring',
      'rdmaq-kept-0003.txw',
    ]);
  });
});

// Child process of the fabric tests (runs against dist/, built before `test`). One end of a fabric link:
//   node fabric-peer.mjs recv '{"port":0,"linkId":"t","secret":"…","count":N,"posFile":"…","resumeFrom":0}'
//   node fabric-peer.mjs send '{"port":P,"host":"127.0.0.1","linkId":"t","secret":"…","count":N,"maxSize":4096}'
// Records are deterministic functions of their sequence (size and bytes), carrying [u32 seq][u32 crc32 of the
// rest], so a restarted sender regenerates exactly what it would have sent and the receiver checks every byte.
// Prints one JSON object per line on stdout: {ev:"ready",port}, {ev:"progress",...}, {ev:"done",...}.
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { connectFabric, listenFabric } from '../dist/fabric/index.js';

const [, , mode, json] = process.argv;
const o = JSON.parse(json ?? '{}');
const out = (x) => process.stdout.write(`${JSON.stringify(x)}\n`);

// Deterministic pool of pseudo-random bytes (xorshift), 1 MiB + 64 KiB.
const POOL = Buffer.alloc((1 << 20) + 65536);
{
  let x = 0x9e3779b9;
  for (let i = 0; i < POOL.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    POOL.writeInt32LE(x | 0, i);
  }
}
function mix(seq) {
  let h = Math.imul(seq ^ 0x5bd1e995, 0x27d4eb2d) >>> 0;
  h ^= h >>> 15;
  return Math.imul(h, 0x85ebca6b) >>> 0;
}
/** Size of record `seq`: uniform in [minSize, maxSize]. */
function sizeOf(seq, minSize, maxSize) {
  return minSize + (mix(seq) % (maxSize - minSize + 1));
}

/**
 * Gaps of the stress mode in µs: -2 = until the receiver consumed everything (drain), -1 = one event-loop
 * turn; busy waits below 1 ms, timers above.
 */
const GAP_CLASSES = [-2, -1, 5, 30, 200, 1000, 4000];
const gapsMade = GAP_CLASSES.map(() => 0);

if (mode === 'send') {
  const s = await connectFabric({
    linkId: o.linkId,
    host: o.host ?? '127.0.0.1',
    port: o.port,
    secret: o.secret,
    provider: o.provider ?? 'net',
    capacity: o.capacity,
    journal: o.journal,
    deadAfterMs: o.deadAfterMs,
  });
  s.on('state', (e) => out({ ev: 'state', ...e }));
  s.on('error', (e) => out({ ev: 'error', code: e.code, message: e.message }));
  let seq = s.nextSeq;
  out({ ev: 'ready', startSeq: seq, recovered: s.recovered, info: s.info?.provider });
  const minSize = o.minSize ?? 8;
  const maxSize = o.maxSize ?? 4096;
  const total = o.count;
  while (seq < total) {
    const size = sizeOf(seq, minSize, maxSize);
    const off = s.claim(size);
    if (off < 0) {
      await s.whenWritable(size);
      continue;
    }
    const b = s.buffer;
    if (size >= 8) {
      POOL.copy(b, off + 8, mix(seq) & 0xfffff, (mix(seq) & 0xfffff) + size - 8);
      b.writeUInt32LE(seq >>> 0, off);
      b.writeUInt32LE(crc32(b.subarray(off + 8, off + size)), off + 4);
    } else b.fill(seq & 0xff, off, off + size);
    const got = s.commit();
    if (got !== seq) throw new Error(`commit gave seq ${got}, expected ${seq}`);
    seq++;
    if (o.throttleEvery && seq % o.throttleEvery === 0)
      await new Promise((r) => setTimeout(r, o.throttleMs ?? 1));
    if (o.gaps && mix(seq ^ 0x2545f491) % (o.burst ?? 100) === 0) {
      // Lost-wake-up stress: bursts of random length, then a gap of one of GAP_CLASSES, so the consumer
      // goes to sleep (or is about to) at every point of its sleep protocol when the next write lands.
      const gap = GAP_CLASSES[mix(seq ^ 0x68e31da4) % GAP_CLASSES.length];
      gapsMade[GAP_CLASSES.indexOf(gap)]++;
      s.flush();
      if (gap === -2) {
        // Quiet until the receiver consumed everything: the last record before it must wake the consumer
        // by itself (nothing comes after it), or it waits for the 1 s safety poll.
        if (!(await s.drain(10_000))) throw new Error('drain timed out');
      } else if (gap < 0) await new Promise((r) => setImmediate(r));
      else if (gap < 1000) {
        const until = process.hrtime.bigint() + BigInt(gap * 1000);
        while (process.hrtime.bigint() < until) s.flush(); // keep posting/reaping like a busy producer
      } else await new Promise((r) => setTimeout(r, gap / 1000));
    }
    if (seq % 4096 === 0) await new Promise((r) => setImmediate(r)); // let heartbeats and the pump run
  }
  out({ ev: 'sent', nextSeq: seq, gapsMade });
  const drained = await s.drain(120_000);
  out({ ev: 'done', drained, stats: s.stats() });
  await s.close();
  process.exit(0);
}

if (mode === 'recv') {
  const l = await listenFabric({
    port: o.port ?? 0,
    host: o.host ?? '127.0.0.1',
    secret: o.secret,
    deadAfterMs: o.deadAfterMs,
  });
  l.on('error', (e) => out({ ev: 'listenerError', code: e.code, message: e.message }));
  const rx = l.accept(o.linkId, {
    idle: o.idle ?? 'backoff',
    resumeFrom: o.resumeFrom,
    capacity: o.capacity,
  });
  rx.on('state', (e) => out({ ev: 'state', ...e }));
  const minSize = o.minSize ?? 8;
  const maxSize = o.maxSize ?? 4096;
  // The application's durable position: the next sequence it wants, written per record (pwrite to a file: it
  // survives kill -9 in the page cache), so a restarted receiver resumes exactly after what it delivered.
  const posFd = o.posFile ? openSync(o.posFile, 'w') : -1;
  const posBuf = Buffer.alloc(8);
  let next = o.resumeFrom ?? 0;
  let first = -1;
  let bad = 0;
  let delivered = 0;
  let bytes = 0;
  const t0 = Date.now();
  let done = false;
  const finish = async () => {
    if (done) return;
    done = true;
    rx.stop();
    const ms = Date.now() - t0;
    out({ ev: 'done', first, next, delivered, bad, bytes, ms, stats: rx.stats() });
    setTimeout(async () => {
      await l.close();
      if (posFd >= 0) closeSync(posFd);
      process.exit(0);
    }, 300);
  };
  out({ ev: 'ready', port: l.port });
  const slow = o.slowEvery ?? 0;
  rx.start((buf, off, len, seq) => {
    if (first < 0) first = seq;
    if (seq !== next) bad++;
    const size = sizeOf(seq, minSize, maxSize);
    if (len !== size) bad++;
    else if (len >= 8) {
      if (
        buf.readUInt32LE(off) !== seq >>> 0 ||
        buf.readUInt32LE(off + 4) !== crc32(buf.subarray(off + 8, off + len))
      )
        bad++;
    } else {
      for (let i = 0; i < len; i++) if (buf[off + i] !== (seq & 0xff)) bad++;
    }
    next = seq + 1;
    delivered++;
    bytes += len;
    if (posFd >= 0) {
      posBuf.writeDoubleLE(next);
      writeSync(posFd, posBuf, 0, 8, 0);
    }
    if (slow && delivered % slow === 0) {
      const until = Date.now() + (o.slowMs ?? 1);
      while (Date.now() < until); // a slow consumer: busy inside the handler
    }
    if (next >= o.count) queueMicrotask(finish);
  });
  setInterval(() => out({ ev: 'progress', next, delivered, bad }), 200).unref();
}

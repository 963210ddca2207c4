/**
 * The benchmark loops that need nothing but the common link API (LinkTx / LinkRx), shared by the workers of
 * both transports. The busy-spin and engine loops stay with each transport: they use what only its ends have.
 */
import type { LinkRx, LinkTx } from '../link.js';

/** Timestamps of the JS latency loops: a V8 fast call, not an N-API crossing inside the timed interval. */
export const nowNs = (): number => performance.now() * 1e6;

/**
 * Event-loop driven ping-pong, measuring end (backoff / event strategies): the receiver's handler records
 * the one-way time of each reply (round trip / 2) and sends the next ping. Samples after `warmup` go into
 * `samples` (length = total − warmup). Resolves after `total` round trips.
 */
export function pingLoop(
  rx: LinkRx,
  tx: LinkTx,
  payload: Uint8Array,
  warmup: number,
  total: number,
  samples: Float64Array,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let i = 0;
    let s = nowNs();
    rx.start(() => {
      const e = nowNs();
      if (i >= warmup) samples[i - warmup] = (e - s) / 2;
      i += 1;
      if (i === total) {
        rx.stop();
        resolve();
        return;
      }
      s = nowNs();
      tx.send(payload);
    });
    tx.send(payload);
  });
}

/** Event-loop driven answering end: `onRecord` answers each record; resolves after `total` of them. */
export function answerLoop(
  rx: LinkRx,
  total: number,
  onRecord: (buf: Buffer, off: number, len: number) => void,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = 0;
    rx.start((buf, off, len) => {
      onRecord(buf, off, len);
      done += 1;
      if (done === total) {
        rx.stop();
        resolve();
      }
    });
  });
}

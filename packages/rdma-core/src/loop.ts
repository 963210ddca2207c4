/** A scheduled event-loop turn: either kind of Node timer handle. */
export type LoopTimer = NodeJS.Immediate | NodeJS.Timeout;

/**
 * Cancels a setImmediate or a setTimeout handle. Never hand a Timeout to clearImmediate(): Node then counts
 * one pending immediate less, and once that count is off, the loop no longer wakes for immediates — it
 * sleeps in poll until the next timer (seen here as 500 ms stalls, the heartbeat period, after backoff
 * receivers were stopped on their 1 ms timer).
 */
export function cancelTimer(t: LoopTimer | undefined): void {
  if (!t) return;
  if ('refresh' in t) clearTimeout(t);
  else clearImmediate(t);
}

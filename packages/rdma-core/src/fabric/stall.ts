/**
 * "Up, but records wait and none move": the link state `stalled`, decided on both ends of a fabric link from
 * what each heartbeat says. The control connection can stay healthy while the fabric path is wedged (after a
 * long cut, TCP retransmissions under the provider back off for minutes; a provider connection shut by one
 * side leaves the other's writes queued) or while the consumer does not consume: heartbeats alone would keep
 * calling such a link `up`.
 *
 * Pure and clock-free: the caller passes the time, so tests drive it without sleeping.
 */

/** What a heartbeat may carry about its sender's end of the stream (all optional: older peers send none). */
export interface Beat {
  /** Sender: the sequence its next record gets (everything below exists). Receiver: next it will deliver. */
  next?: number;
  /** Receiver: bytes that arrived in its ring and were not consumed yet. */
  queued?: number;
}

/** Reads the fields of a peer's heartbeat that are sane; anything else is ignored (a peer may lie). */
export function readBeat(m: Record<string, unknown>): Beat {
  const b: Beat = {};
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (ok(m.next)) b.next = m.next;
  if (ok(m.queued)) b.queued = m.queued;
  return b;
}

export type StallChange = 'stalled' | 'moving' | undefined;

export class StallWatch {
  private mark = Number.NaN;
  private since = 0;
  private stalledAt: number | undefined;

  /** afterMs: how long records may wait with no progress before the link is `stalled`. */
  constructor(readonly afterMs: number) {}

  get stalled(): boolean {
    return this.stalledAt !== undefined;
  }
  /** How long it has been stalled at `now` (0 when it is not). */
  stalledFor(now: number): number {
    return this.stalledAt === undefined ? 0 : now - this.stalledAt;
  }

  /**
   * waiting: records wait for delivery; progress: any number that changes while something moves (e.g. the
   * receiver's next sequence). Returns the transition, if any.
   */
  update(now: number, waiting: boolean, progress: number): StallChange {
    if (!waiting || progress !== this.mark) {
      this.mark = progress;
      this.since = now;
      if (this.stalledAt === undefined) return undefined;
      this.stalledAt = undefined;
      return 'moving';
    }
    if (this.stalledAt === undefined && now - this.since >= this.afterMs) {
      this.stalledAt = now;
      return 'stalled';
    }
    return undefined;
  }

  /** A new connection: nothing is known about its progress yet. */
  reset(now: number): void {
    this.mark = Number.NaN;
    this.since = now;
    this.stalledAt = undefined;
  }
}

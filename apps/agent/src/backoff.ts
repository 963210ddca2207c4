/**
 * Exponential backoff with jitter: the n-th delay is drawn from [cap/2, cap] with cap = min(max, initial·2ⁿ),
 * so a fleet of agents that lost the hub at the same moment does not reconnect in lockstep.
 */
export class Backoff {
  private n = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Attempts made since the last reset. */
  get attempt(): number {
    return this.n;
  }

  /** Upper bound of the next delay. */
  get cap(): number {
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.n, 30));
  }

  next(): number {
    const cap = this.cap;
    this.n++;
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  reset(): void {
    this.n = 0;
  }
}

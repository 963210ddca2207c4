/**
 * Exponential backoff with jitter, one implementation for every retry loop (agent reconnects, the data-path
 * worker's restarts, rdma-core's sender reconnects, the hub's webhook and TSDB retries, the UI's live socket).
 *
 * The n-th delay (n counted from 0 since the last reset) has the upper bound
 * `cap(n) = min(maxMs, initialMs · factorⁿ)` and is drawn uniformly from `[cap · (1 − jitter), cap]`, so a fleet
 * that lost its peer at the same moment does not retry in lockstep. `jitter: 0` gives the plain doubling
 * sequence. Randomness and time are injectable, so tests are deterministic.
 *
 *   const b = new Backoff({ initialMs: 100, maxMs: 10_000 });
 *   setTimeout(retry, b.next());   // 50..100, then 100..200, 200..400, … up to 5000..10000
 *   b.reset();                     // after a success that lasted
 */
export interface BackoffOptions {
  /** Upper bound of the first delay (ms, > 0). */
  initialMs: number;
  /** Upper bound of every delay (ms, ≥ initialMs). */
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /**
   * Share of the delay that is random, 0..1 (default 0.5): the delay is drawn from `[cap · (1 − jitter), cap]`.
   */
  jitter?: number;
  /** Uniform in [0, 1) (default Math.random). */
  random?: () => number;
  /** Current time in ms, for nextAt() (default Date.now). */
  now?: () => number;
}

export class Backoff {
  private n = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(opts: BackoffOptions) {
    const { initialMs, maxMs, factor = 2, jitter = 0.5 } = opts;
    if (!(initialMs > 0) || !Number.isFinite(initialMs))
      throw new RangeError(`Backoff: initialMs must be a positive number, got ${initialMs}`);
    if (!(maxMs >= initialMs) || !Number.isFinite(maxMs))
      throw new RangeError(`Backoff: maxMs must be a number ≥ initialMs (${initialMs}), got ${maxMs}`);
    if (!(factor >= 1) || !Number.isFinite(factor))
      throw new RangeError(`Backoff: factor must be a number ≥ 1, got ${factor}`);
    if (!(jitter >= 0 && jitter <= 1))
      throw new RangeError(`Backoff: jitter must be in [0, 1], got ${jitter}`);
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.factor = factor;
    this.jitter = jitter;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  /** Delays handed out since the last reset (the attempt the last next() was for, counted from 1). */
  get attempt(): number {
    return this.n;
  }

  /** Upper bound of the next delay. */
  get cap(): number {
    // The exponent is bounded: past maxMs it makes no difference, and factor^n must stay finite.
    return Math.min(this.maxMs, this.initialMs * this.factor ** Math.min(this.n, 64));
  }

  /** The next delay in ms (whole), and one attempt more. */
  next(): number {
    const cap = this.cap;
    this.n++;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.round(cap * (1 - this.jitter) + r * cap * this.jitter);
  }

  /** The time (per `now`) at which the next attempt is due: now() + next(). */
  nextAt(): number {
    return this.now() + this.next();
  }

  /** Starts over from initialMs (after a success). */
  reset(): void {
    this.n = 0;
  }
}

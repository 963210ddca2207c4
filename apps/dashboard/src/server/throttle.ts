/**
 * Failed-attempt throttling (login, password change): after `threshold` failures for a key (an account, an
 * address), the key is locked out for baseMs, doubling with every further failure up to maxMs. A key forgets
 * its failures `forgetMs` after the last one. While locked out nothing is checked (no password hash is
 * computed), the caller answers 429 with Retry-After. The map is bounded (oldest keys are dropped), so
 * spraying made-up account names or addresses cannot grow the hub.
 */
export interface ThrottleOptions {
  threshold: number;
  baseMs: number;
  maxMs: number;
  forgetMs: number;
  maxEntries: number;
}

interface Entry {
  failures: number;
  last: number;
  until: number;
}

export class FailureThrottle {
  private readonly m = new Map<string, Entry>();

  constructor(
    private readonly o: ThrottleOptions,
    private readonly now: () => number,
  ) {}

  /** Milliseconds until `key` may try again; 0 when it may now. */
  blockedFor(key: string): number {
    const e = this.m.get(key);
    if (!e) return 0;
    const now = this.now();
    if (now - e.last > this.o.forgetMs) {
      this.m.delete(key);
      return 0;
    }
    return Math.max(0, e.until - now);
  }

  /** Records a failure; returns the lockout it starts (ms, 0 while under the threshold). */
  fail(key: string): number {
    const now = this.now();
    let e = this.m.get(key);
    if (e && now - e.last > this.o.forgetMs) e = undefined;
    if (!e) e = { failures: 0, last: now, until: 0 };
    this.m.delete(key); // re-inserted last: the map's order is least recently failed first
    e.failures++;
    e.last = now;
    let lock = 0;
    if (e.failures >= this.o.threshold) {
      const exp = Math.min(30, e.failures - this.o.threshold);
      lock = Math.min(this.o.maxMs, this.o.baseMs * 2 ** exp);
      e.until = now + lock;
    }
    this.m.set(key, e);
    while (this.m.size > this.o.maxEntries) this.m.delete(this.m.keys().next().value!);
    return lock;
  }

  /** A success clears the key's failures. */
  succeed(key: string): void {
    this.m.delete(key);
  }

  get size(): number {
    return this.m.size;
  }
}

/** A counting semaphore with a bounded queue: limits how many password hashes run at once. */
export class Gate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Most hashes that ran at once since start, and how many ran (tests, diagnostics). */
  peak = 0;
  runs = 0;

  constructor(
    private readonly max: number,
    private readonly maxQueue: number,
  ) {}

  /** Runs `fn` when a slot is free; false (without running it) when the queue is full. */
  async run<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    if (this.running >= this.max) {
      if (this.waiting.length >= this.maxQueue) return { ok: false };
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    this.peak = Math.max(this.peak, this.running);
    this.runs++;
    try {
      return { ok: true, value: await fn() };
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter (running stays the same).
      if (next) next();
      else this.running--;
    }
  }

  get queued(): number {
    return this.waiting.length;
  }
}

/**
 * A token bucket on the caller's clock: `burst` at once, then `perS` per second. What a connection may send
 * (agent events, live frames) without any timer.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    readonly burst: number,
    readonly perS: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Takes one token; false (nothing taken) when the bucket is empty. */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.refilledAt) / 1000) * this.perS);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

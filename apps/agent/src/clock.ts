/**
 * Time source of the agent. Tests inject a scaled clock (agent time runs N× faster than real time) so
 * "the hub is away for 30 s" takes 3 s of real time while every socket, timer and buffer stays real.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock ms since the epoch (sample timestamps). */
  now(): number;
  /** Runs fn after ms of agent time. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock whose time runs `factor` times faster than real time, starting at the real now. */
export function scaledClock(factor: number): Clock {
  if (!(factor > 0)) throw new RangeError(`clock factor must be > 0, got ${factor}`);
  const t0 = Date.now();
  const p0 = performance.now();
  return {
    now: () => Math.floor(t0 + (performance.now() - p0) * factor),
    setTimeout(fn, ms) {
      const t = setTimeout(fn, ms / factor);
      return { cancel: () => clearTimeout(t) };
    },
  };
}

/** Cancellable sleep on a clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

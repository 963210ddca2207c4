import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';
import { Backoff as FromIndex } from '../src/index.js';

describe('Backoff', () => {
  it('doubles up to the cap with jitter in [cap/2, cap] by default', () => {
    const lo = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect([lo.next(), lo.next(), lo.next(), lo.next(), lo.next()]).toEqual([50, 100, 200, 400, 500]);
    const hi = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999999 });
    expect([hi.next(), hi.next(), hi.next(), hi.next(), hi.next()]).toEqual([100, 200, 400, 800, 1000]);
    expect(hi.attempt).toBe(5);
    hi.reset();
    expect(hi.attempt).toBe(0);
    expect(hi.next()).toBe(100);
  });

  it('jitter 0 is the plain sequence; factor and jitter shape it', () => {
    const plain = new Backoff({ initialMs: 10, maxMs: 1000, jitter: 0, random: () => 0.7 });
    expect(Array.from({ length: 9 }, () => plain.next())).toEqual([
      10, 20, 40, 80, 160, 320, 640, 1000, 1000,
    ]);
    const tri = new Backoff({ initialMs: 10, maxMs: 100, factor: 3, jitter: 0.2, random: () => 0.5 });
    // cap 10, 30, 90, 100 → [0.8·cap, cap], mid-point at random 0.5
    expect([tri.next(), tri.next(), tri.next(), tri.next()]).toEqual([9, 27, 81, 90]);
  });

  it('every delay stays within [cap·(1−jitter), cap] for any random value', () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const b = new Backoff({ initialMs: 7, maxMs: 5000, jitter: 0.3, random: rnd });
    for (let i = 0; i < 200; i++) {
      const cap = b.cap;
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(Math.round(cap * 0.7));
      expect(d).toBeLessThanOrEqual(cap);
    }
    // Far past the cap the bound stays finite.
    expect(b.cap).toBe(5000);
    // A random source out of [0, 1) is clamped, never outside the range.
    const wild = new Backoff({ initialMs: 100, maxMs: 100, random: () => 7 });
    expect(wild.next()).toBe(100);
  });

  it('nextAt uses the injected clock', () => {
    let t = 1_000_000;
    const b = new Backoff({ initialMs: 100, maxMs: 400, jitter: 0, now: () => t });
    expect(b.nextAt()).toBe(1_000_100);
    t += 5;
    expect(b.nextAt()).toBe(1_000_205);
  });

  it('refuses nonsense options', () => {
    expect(() => new Backoff({ initialMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(/maxMs/);
    expect(() => new Backoff({ initialMs: 10, maxMs: 50, factor: 0.5 })).toThrow(/factor/);
    expect(() => new Backoff({ initialMs: 10, maxMs: 50, jitter: 2 })).toThrow(/jitter/);
  });

  it('is exported from the package index', () => {
    expect(FromIndex).toBe(Backoff);
  });
});

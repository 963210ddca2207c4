/** The repo's one wait helper (tooling/test-support/wait.js), which every suite's polling goes through. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../../tooling/test-support/wait.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('waitFor', () => {
  it('resolves with the first value that is not undefined, null or false (0 and "" count)', async () => {
    let n = 0;
    const answers = [undefined, null, false, 0];
    expect(await waitFor('a value', () => answers[n++])).toBe(0);
    expect(n).toBe(4);
    expect(await waitFor('an empty string', async () => '')).toBe('');
  });

  it('polls again after the probe throws, and names what it waited for and the last error on timeout', async () => {
    let calls = 0;
    const v = await waitFor('a server', () => {
      if (++calls < 3) throw new Error('ECONNREFUSED');
      return 'up';
    });
    expect(v).toBe('up');
    await expect(
      waitFor(
        'node-a healthy',
        () => {
          throw new Error('ECONNREFUSED');
        },
        { timeoutMs: 60, everyMs: 10 },
      ),
    ).rejects.toThrow('timed out after 60 ms waiting for node-a healthy (last error: Error: ECONNREFUSED)');
    await expect(waitFor('never', () => false, 30)).rejects.toThrow(
      /^timed out after 30 ms waiting for never$/,
    );
  });

  it('keeps polling on real time while a test holds fake timers', async () => {
    vi.useFakeTimers();
    let ready = false;
    globalThis.setTimeout(() => {
      ready = true;
    }, 10_000);
    const waiting = waitFor('the fake timer', () => ready, 5_000);
    vi.advanceTimersByTime(10_000);
    expect(await waiting).toBe(true);
  });
});

// The one wait helper of every test suite in the repo (plain JS with a hand-written wait.d.ts, so that each
// package's tests import it by relative path without pulling a source file outside their tsconfig rootDir).

// Captured at load, before a test may install fake timers: polling keeps running on real time.
const realSetTimeout = globalThis.setTimeout;
const realNow = performance.now.bind(performance);

/**
 * Polls `probe` until it returns something other than `undefined`, `null` or `false`, and resolves with
 * that value. A probe that throws (a server not listening yet) is polled again. On timeout it rejects
 * naming `what` and the probe's last error.
 *
 * @template T
 * @param {string} what what is awaited, as the error should say it ("node-a healthy")
 * @param {() => T | undefined | null | false | Promise<T | undefined | null | false>} probe
 * @param {number | { timeoutMs?: number; everyMs?: number }} [options] timeout in ms (default 20 s), or
 *   `{ timeoutMs, everyMs }` (poll period, default 20 ms)
 * @returns {Promise<T>}
 */
export async function waitFor(what, probe, options = {}) {
  const { timeoutMs = 20_000, everyMs = 20 } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = realNow() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (realNow() >= deadline) {
      const last = lastError === undefined ? '' : ` (last error: ${String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await new Promise((r) => realSetTimeout(r, everyMs));
  }
}

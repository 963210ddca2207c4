export interface WaitOptions {
  /** How long to poll before failing (default 20,000 ms). */
  timeoutMs?: number;
  /** Poll period (default 20 ms). */
  everyMs?: number;
}

/**
 * Polls `probe` until it returns something other than `undefined`, `null` or `false`, and resolves with
 * that value. A probe that throws (a server not listening yet) is polled again. On timeout it rejects
 * naming `what` and the probe's last error.
 */
export function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options?: number | WaitOptions,
): Promise<T>;

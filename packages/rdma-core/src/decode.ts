/**
 * Helpers for decoding what a peer sends on a control connection (shm: src/control.ts; fabric:
 * src/fabric/handshake.ts). Everything here is total: it never throws, whatever the value.
 */

/**
 * Deepest JSON nesting a control message may have. Real messages are flat objects (depth 1); a deeply nested
 * value (a 16 KiB frame holds 8,000 levels) would make JSON.stringify, String() or a template literal over
 * it throw a RangeError (call stack) wherever it is later put into a message.
 */
export const MAX_JSON_DEPTH = 16;

/** True if `value` nests arrays/objects deeper than `max` levels. Iterative: no recursion on peer input. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ v: unknown; d: number }> = [{ v: value, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) return true;
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const c of children) if (c !== null && typeof c === 'object') stack.push({ v: c, d: d + 1 });
  }
  return false;
}

/** A short, safe description of a peer-supplied value for an error message (never throws, ≤ ~90 chars). */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(v);
    case 'bigint':
      return `${v}n`;
    default:
      if (v === null) return 'null';
      if (Array.isArray(v)) return `an array of ${v.length}`;
      return typeof v === 'object' ? 'an object' : typeof v;
  }
}

/** Time ranges offered above the charts, and the point budget for a chart of a given pixel width. */
export const RANGES = [
  { id: '15m', label: '15 min', ms: 15 * 60_000 },
  { id: '1h', label: '1 h', ms: 3_600_000 },
  { id: '6h', label: '6 h', ms: 6 * 3_600_000 },
  { id: '24h', label: '24 h', ms: 24 * 3_600_000 },
  { id: '7d', label: '7 d', ms: 7 * 24 * 3_600_000 },
] as const;
export type RangeId = (typeof RANGES)[number]['id'];

export function rangeMs(id: string): number {
  return RANGES.find((r) => r.id === id)?.ms ?? RANGES[0].ms;
}

/**
 * Points to ask the hub for: one per ~2 CSS pixels of plot width (a line cannot show more), within the
 * API's 1..2000 and at least 2 so a chart has a segment to draw.
 */
export function pointsForWidth(widthPx: number, pxPerPoint = 2): number {
  if (!Number.isFinite(widthPx) || widthPx <= 0) return 300;
  return Math.max(2, Math.min(2000, Math.round(widthPx / pxPerPoint)));
}

/** Keeps the points inside [from, ∞): the live tail slides the window forward. */
export function clipFrom<P extends { ts: number }>(points: readonly P[], from: number): P[] {
  let i = 0;
  while (i < points.length && points[i]!.ts < from) i++;
  return i === 0 ? (points as P[]) : points.slice(i);
}

const TICK_STEPS_MS = [
  1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
].map((s) => s * 1000);

/**
 * Round-time ticks for a time axis: the smallest "nice" step giving at most `count` ticks, every tick a
 * multiple of the step (so 16:35, 16:40, … not 16:36:17), plus a label format fit for the step.
 */
export function timeTicks(
  domain: [number, number],
  count = 6,
): { ticks: number[]; format: (ts: number) => string } {
  const [a, b] = domain;
  const span = b - a;
  if (!(span > 0)) return { ticks: [], format: () => '' };
  const step = TICK_STEPS_MS.find((s) => span / s <= count) ?? TICK_STEPS_MS[TICK_STEPS_MS.length - 1]!;
  const ticks: number[] = [];
  for (let t = Math.ceil(a / step) * step; t <= b; t += step) ticks.push(t);
  const iso = (ts: number) => new Date(ts).toISOString();
  const format =
    step >= 86_400_000
      ? (ts: number) => iso(ts).slice(5, 10)
      : span > 86_400_000
        ? (ts: number) => `${iso(ts).slice(5, 10)} ${iso(ts).slice(11, 16)}`
        : step >= 60_000
          ? (ts: number) => iso(ts).slice(11, 16)
          : (ts: number) => iso(ts).slice(11, 19);
  return { ticks, format };
}

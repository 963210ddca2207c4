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

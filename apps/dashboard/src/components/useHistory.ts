'use client';
import { useEffect, useState } from 'react';
import { ApiError, api, goToLogin } from '@/lib/api';

export interface HistoryResult<P> {
  points: P[] | undefined;
  stepMs: number | undefined;
  resolutionS: number | undefined;
  error: string | undefined;
  loading: boolean;
}

/**
 * REST history for a chart (`/api/history`, downsampled on the hub to `points`). Fetched when the subject,
 * range or point budget changes; the live view supplies everything after it.
 */
export function useHistory<P>(
  query: { link: string } | { node: string },
  range: number,
  points: number,
  clockSkewMs = 0,
): HistoryResult<P> {
  const [r, setR] = useState<HistoryResult<P>>({
    points: undefined,
    stepMs: undefined,
    resolutionS: undefined,
    error: undefined,
    loading: true,
  });
  const subject =
    'link' in query ? `link=${encodeURIComponent(query.link)}` : `node=${encodeURIComponent(query.node)}`;
  useEffect(() => {
    // 0 points: the chart has not been measured yet; fetching now would be thrown away.
    if (points <= 0) return;
    const ctl = new AbortController();
    // Hub clock, and a few seconds' slack on the 15-minute range so the hub still serves it from its 1 s
    // memory (it falls back to minute roll-ups once `from` is older than its memory window).
    const to = Date.now() + clockSkewMs;
    const from = to - range + (range <= 15 * 60_000 ? 5_000 : 0);
    setR((prev) => ({ ...prev, loading: true, error: undefined }));
    api<{ points: P[]; stepMs: number; resolutionS: number }>(
      `/api/history?${subject}&from=${from}&to=${to}&points=${points}`,
      { signal: ctl.signal },
    )
      .then((res) =>
        setR({
          points: res.points,
          stepMs: res.stepMs,
          resolutionS: res.resolutionS,
          error: undefined,
          loading: false,
        }),
      )
      .catch((err: unknown) => {
        if ((err as Error).name === 'AbortError') return;
        if (err instanceof ApiError && err.status === 401) goToLogin();
        setR({
          points: [],
          stepMs: undefined,
          resolutionS: undefined,
          error: (err as Error).message,
          loading: false,
        });
      });
    return () => ctl.abort();
  }, [subject, range, points, clockSkewMs]);
  return r;
}

/** Width of an element in CSS pixels, measured once it is laid out (and on resize). */
export function useWidth(ref: { current: HTMLElement | null }): number {
  const [w, setW] = useState(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const update = () => {
      // Quantise to 100 px so a scrollbar appearing does not refetch history.
      const width = Math.round(el.getBoundingClientRect().width / 100) * 100;
      setW((p) => (p === width ? p : width));
    };
    update();
    const ro = new ResizeObserver(update);
    ro.observe(el);
    return () => ro.disconnect();
  }, [ref]);
  return w;
}

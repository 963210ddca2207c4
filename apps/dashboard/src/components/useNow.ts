'use client';
import { useEffect, useState } from 'react';

/** Wall clock that re-renders its user every `everyMs`, for "5 s ago" labels between hub frames. */
export function useNow(everyMs = 5_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

'use client';
/**
 * Freshness on screen: figures of a node whose agent stopped sending stay visible but greyed (`.frozen`),
 * with how long the node has been silent, measured on the hub's clock (lastDataAt is hub time).
 */
import { formatDurationS } from '@/lib/format';
import { useConnection } from './LiveProvider';
import { useNow } from './useNow';

export function isFrozen(f: string | undefined): boolean {
  return f === 'stale' || f === 'offline';
}

/** "silent 42 s" beside a node whose figures stopped, ticking with the page's clock. */
export function FrozenAge({
  lastDataAt,
  freshness,
}: {
  lastDataAt: number | null | undefined;
  freshness: string | undefined;
}) {
  const now = useNow(1000);
  const { clockSkewMs } = useConnection();
  if (!isFrozen(freshness)) return null;
  const hubNow = now + clockSkewMs();
  return (
    <div className="frozen-age" data-testid="frozen-age">
      {lastDataAt ? `silent ${formatDurationS(Math.max(0, (hubNow - lastDataAt) / 1000))}` : 'no sample yet'}
    </div>
  );
}

'use client';
import type { Kpi } from '@rdmaq/shared';
import { memo } from 'react';
import { formatBitRate, formatNs, formatRate } from '@/lib/format';

type Tone = 'ok' | 'warn' | 'crit' | 'none';

function Item({
  label,
  value,
  sub,
  tone,
  id,
}: {
  label: string;
  value: string;
  sub?: string;
  tone: Tone;
  id: string;
}) {
  return (
    <div className={`kpi kpi-${tone}`} data-testid={`kpi-${id}`}>
      <dt>{label}</dt>
      <dd>
        {value}
        {sub && <span className="sub">{sub}</span>}
      </dd>
    </div>
  );
}

/** The cluster at a glance, every figure from the hub's KPI block (nothing computed from stale guesses). */
export const KpiStrip = memo(function KpiStrip({ kpi }: { kpi: Kpi | undefined }) {
  if (!kpi) {
    return (
      <dl className="kpis" aria-busy="true" aria-label="Cluster figures">
        {['Nodes reporting', 'Links up', 'Throughput', 'Worst p99', 'Firing alerts'].map((l) => (
          <Item key={l} id={l} label={l} value="—" tone="none" />
        ))}
      </dl>
    );
  }
  const nodesTone: Tone =
    kpi.nodesTotal === 0
      ? 'none'
      : kpi.nodesConnected === kpi.nodesTotal
        ? 'ok'
        : kpi.nodesConnected === 0
          ? 'crit'
          : 'warn';
  const linksTone: Tone =
    kpi.linksTotal === 0 ? 'none' : kpi.linksDown > 0 ? 'crit' : kpi.linksDegraded > 0 ? 'warn' : 'ok';
  return (
    <dl className="kpis" aria-label="Cluster figures">
      <Item
        id="nodes"
        label="Nodes reporting"
        value={`${kpi.nodesConnected} / ${kpi.nodesTotal}`}
        sub={
          (kpi.nodesStale ?? 0) + (kpi.nodesOffline ?? 0) > 0
            ? `${kpi.nodesStale ?? 0} stale · ${kpi.nodesOffline ?? 0} offline`
            : `${formatRate(kpi.samplesPerS)} samples`
        }
        tone={nodesTone}
      />
      <Item
        id="links"
        label="Links up"
        value={`${kpi.linksUp} / ${kpi.linksTotal}`}
        sub={`${kpi.linksDegraded} degraded · ${kpi.linksDown} down${kpi.linksFrozen ? ` · ${kpi.linksFrozen} unknown (node not reporting)` : ''}`}
        tone={linksTone}
      />
      <Item
        id="throughput"
        label="Cluster throughput"
        value={formatBitRate(kpi.bytesPerS)}
        sub={`${formatRate(kpi.recordsPerS)} records`}
        tone="none"
      />
      <Item
        id="p99"
        label="Worst link p99"
        value={formatNs(kpi.p99MaxNs)}
        sub={`median link p99 ${formatNs(kpi.p99MedianNs)}`}
        tone="none"
      />
      <Item
        id="alerts"
        label="Firing alerts"
        value={String(kpi.alertsFiring)}
        sub={`${kpi.alertsPending} pending`}
        tone={kpi.alertsFiring > 0 ? 'crit' : kpi.alertsPending > 0 ? 'warn' : 'ok'}
      />
    </dl>
  );
});

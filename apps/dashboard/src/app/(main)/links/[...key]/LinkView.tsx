'use client';
import type { Alert, HistoryPoint, LivePoint } from '@rdmaq/shared';
import Link from 'next/link';
import { memo, useMemo, useRef, useState } from 'react';
import { AlertList } from '@/components/AlertPages';
import { useClockSkew, useLiveView } from '@/components/LiveProvider';
import { RangePicker } from '@/components/RangePicker';
import { StatePill } from '@/components/StatePill';
import { type ChartSpec, Charts } from '@/components/TimeChart';
import { useHistory, useWidth } from '@/components/useHistory';
import {
  formatBitRate,
  formatBytes,
  formatCount,
  formatNs,
  formatPercent,
  formatRate,
  formatTimestamp,
} from '@/lib/format';
import { clipFrom, pointsForWidth, type RangeId, rangeMs } from '@/lib/range';
import { joinHistory } from '@/lib/views';

type P = LivePoint & { bitsPerS: number | null };

const withBits = (p: LivePoint): P => ({ ...p, bitsPerS: p.bytesPerS === null ? null : p.bytesPerS * 8 });

/** One link end's time series: REST history sized to the chart, then the live 1 s tail of its view. */
function useEndSeries(
  key: string | null,
  livePoints: LivePoint[] | undefined,
  enabled: boolean,
  span: number,
  points: number,
  skew: number,
) {
  const history = useHistory<HistoryPoint>({ link: key ?? '' }, span, enabled && key ? points : 0, skew);
  const data = useMemo(() => {
    const now = Date.now() + skew;
    const joined = joinHistory<LivePoint>(history.points ?? [], livePoints ?? []);
    return clipFrom(joined, now - span).map(withBits);
  }, [history.points, livePoints, span, skew]);
  // Whether the newest point is a live 1 s point (else a history bucket: its tail quantiles are the
  // bucket's worst second).
  const lastLive = livePoints?.length ? livePoints[livePoints.length - 1]!.ts : undefined;
  const latest = data.length ? data[data.length - 1] : undefined;
  const latestIsLive = latest !== undefined && latest.ts === lastLive;
  return { history, data, latest, latestIsLive };
}

/** What the newest point of a chart stands for, said the same way in the header and on the chart. */
function latestLabel(s: { latestIsLive: boolean; history: { stepMs: number | undefined } }): string {
  if (s.latestIsLive) return 'last 1 s';
  const step = s.history.stepMs;
  return step && step > 1000 ? `last ${Math.round(step / 1000)} s bucket, worst second` : 'last 1 s';
}

/**
 * The last known value of a figure that not every sample carries (a probe's round trip lands in the
 * sample of the second it was answered), with the time it was measured.
 */
function useLastKnown(
  v: number | null | undefined,
  ts: number | undefined,
): { v: number; ts: number } | null {
  const ref = useRef<{ v: number; ts: number } | null>(null);
  if (typeof v === 'number' && Number.isFinite(v) && ts !== undefined) ref.current = { v, ts };
  return ref.current;
}

/**
 * Link page: latest figures, cumulative counters and the time series (REST history + live 1 s tail).
 * A link has two ends reporting different things (the receiver: queue latency and its ring; the sender:
 * back-pressure), so the page also follows the other end, `<peer>~<id>`, when the hub knows it, and draws
 * each chart from the end that measures it.
 */
export function LinkView({ linkKey }: { linkKey: string }) {
  const { state, stale, error } = useLiveView<'link'>(`link:${linkKey}`);
  const l0 = state?.link;
  const otherKey = l0 ? `${l0.peer}~${l0.id}` : null;
  const other = useLiveView<'link'>(otherKey ? `link:${otherKey}` : null);
  const [range, setRange] = useState<RangeId>('15m');
  const boxRef = useRef<HTMLDivElement>(null);
  const width = useWidth(boxRef);
  // Two charts per row on wide screens; the Y axis takes ~80 px.
  const plotWidth = width > 1100 ? width / 2 - 110 : width - 110;
  const points = width ? pointsForWidth(plotWidth) : 0;
  const span = rangeMs(range);
  const skew = useClockSkew();
  const mine = useEndSeries(linkKey, state?.points, true, span, points, skew);
  const theirs = useEndSeries(otherKey, other.state?.points, other.state !== undefined, span, points, skew);
  const history = mine.history;
  const data = mine.data;
  const last = data.length ? data[data.length - 1]! : undefined;
  const domain = useMemo<[number, number]>(() => {
    const end = Math.max(Date.now() + skew, last?.ts ?? 0);
    return [end - span, end];
  }, [last, span, skew]);
  const hasOther = other.state !== undefined;
  // Alerts on either end concern this link (a full ring fires on the receiver, back-pressure on the sender).
  const linkAlerts = useMemo(() => {
    const byId = new Map<string, Alert>();
    for (const a of [...(state?.alerts ?? []), ...(other.state?.alerts ?? [])]) byId.set(a.id, a);
    return [...byId.values()];
  }, [state?.alerts, other.state?.alerts]);
  const latencySeries = l0?.direction === 'tx' && hasOther ? theirs : mine;
  const latencyData = latencySeries.data;
  const backpressureData = l0?.direction === 'rx' && hasOther ? theirs.data : data;

  // The sender probes: its end carries the round trips, whichever end this page is.
  const rttEnd = l0?.direction === 'tx' ? l0 : other.state?.link;
  const rtt = useLastKnown(rttEnd?.rttP50Ns, rttEnd?.ts);

  if (error && !state) {
    return (
      <>
        <h1>Link {linkKey}</h1>
        <p className="error" role="alert">
          {error.code === 'ERR_RDMAQ_NO_VIEW' ? `The hub does not know the link ${linkKey}.` : error.message}
        </p>
        <Link href="/">Back to the overview</Link>
      </>
    );
  }
  const l = state?.link;
  const otherEnd = l ? `${l.peer}~${l.id}` : undefined;
  // The receiver measures queue latency: header and chart show the same point of the same series (the
  // receiving end's newest), labelled alike.
  const lat = latencySeries.latest;
  const latFrom = l && l.direction === 'tx' && other.state ? 'receiver' : undefined;
  const latWhen = latestLabel(latencySeries);
  return (
    <>
      <div className="crumbs">
        <Link href="/">Overview</Link> /{' '}
        {l ? <Link href={`/nodes/${encodeURIComponent(l.node)}`}>{l.node}</Link> : '…'} / link
      </div>
      <h1>
        {l ? l.id : linkKey}{' '}
        {l && (
          <span className="muted" style={{ fontSize: 14, fontWeight: 400 }}>
            {l.direction === 'tx' ? `${l.node} → ${l.peer}` : `${l.peer} → ${l.node}`} · {l.direction} end on{' '}
            {l.node}
          </span>
        )}
      </h1>
      {stale && state && <p className="stale">Reconnecting; figures may be out of date.</p>}
      {l && (
        <section className="panel" aria-label="Link facts">
          <dl className="facts">
            <div>
              <dt>State</dt>
              <dd>
                <StatePill state={l.state} />
                {l.reason && <div className="muted">{l.reason}</div>}
              </dd>
            </div>
            <div>
              <dt>Transport</dt>
              <dd>
                {l.transport} / {l.provider}
              </dd>
            </div>
            <div>
              <dt>Throughput</dt>
              <dd>{formatBitRate(l.bytesPerS)}</dd>
            </div>
            <div>
              <dt>Records</dt>
              <dd>{formatRate(l.recordsPerS)}</dd>
            </div>
            <div>
              <dt>
                Queue latency p50 / p99 / p99.9{latFrom ? ` (${latFrom})` : ''}{' '}
                <span className="muted">{latWhen}</span>
              </dt>
              <dd data-testid="header-latency">
                {formatNs(lat?.p50Ns)} / {formatNs(lat?.p99Ns)} / {formatNs(lat?.p999Ns)}
              </dd>
            </div>
            <div>
              <dt>
                Probe RTT p50{' '}
                <span className="muted">
                  {rttEnd && rttEnd.node !== l.node ? `(sender ${rttEnd.node})` : '(this sender)'}
                </span>
              </dt>
              <dd data-testid="header-rtt">
                {rtt ? (
                  <>
                    {formatNs(rtt.v)}
                    {rttEnd && rtt.ts < rttEnd.ts && (
                      <span className="muted"> at {formatTimestamp(rtt.ts).slice(11)}</span>
                    )}
                  </>
                ) : rttEnd ? (
                  <span className="muted">no probe answered yet</span>
                ) : (
                  <span className="muted">
                    the sender ({l.direction === 'rx' ? l.peer : l.node}) does not report
                  </span>
                )}
              </dd>
            </div>
            <div>
              <dt>Ring</dt>
              <dd>
                {formatBytes(l.occupancyBytes)} / {formatBytes(l.capacityBytes)} ({formatPercent(l.occupancy)}
                )
              </dd>
            </div>
            <div>
              <dt>Last sample</dt>
              <dd>{formatTimestamp(l.ts)}</dd>
            </div>
            {otherEnd && (
              <div>
                <dt>Other end</dt>
                <dd>
                  {hasOther ? (
                    <Link href={`/links/${encodeURIComponent(otherEnd)}`}>{otherEnd}</Link>
                  ) : (
                    <span className="muted">{l.peer} does not report this link</span>
                  )}
                </dd>
              </div>
            )}
          </dl>
        </section>
      )}
      {l && (
        <p className="muted" style={{ fontSize: 12, marginTop: -6 }}>
          Pages: <Link href={`/nodes/${encodeURIComponent(l.node)}`}>node {l.node}</Link> ·{' '}
          <Link href={`/nodes/${encodeURIComponent(l.peer)}`}>peer {l.peer}</Link>
        </p>
      )}
      {state && <Counters counters={state.counters} />}
      {linkAlerts.length > 0 && <AlertList alerts={linkAlerts} />}
      <div className="panel-head">
        <h2>Over time</h2>
        <RangePicker value={range} onChange={setRange} />
      </div>
      {history.error && <p className="error">History: {history.error}</p>}
      <div ref={boxRef}>
        <LinkCharts
          data={data}
          latency={latencyData}
          backpressure={backpressureData}
          latencyFrom={latencyData === data ? undefined : 'the receiving end'}
          latencyWhen={latWhen}
          backpressureFrom={backpressureData === data ? undefined : 'the sending end'}
          domain={domain}
          capacity={l?.capacityBytes}
        />
      </div>
      {history.stepMs !== undefined && (
        <p className="muted" style={{ fontSize: 12 }}>
          History: {history.resolutionS} s source, {Math.round(history.stepMs / 1000)} s per point; live
          points every second after it.
        </p>
      )}
    </>
  );
}

/** What the link page's charts plot from. */
interface LinkChartContext {
  data: readonly P[];
  latency: readonly P[];
  backpressure: readonly P[];
  latencyFrom: string | undefined;
  latencyWhen: string;
  backpressureFrom: string | undefined;
  domain: [number, number];
  capacity: number | undefined;
}

/** The link page's charts, declared as data (components/TimeChart.tsx `Charts` draws them). */
const LINK_CHARTS: readonly ChartSpec<P, LinkChartContext>[] = [
  {
    testId: 'chart-latency',
    title: (c) => (c.latencyFrom ? `Queue latency (from ${c.latencyFrom})` : 'Queue latency'),
    points: (c) => c.latency,
    series: [
      { key: 'p50Ns', name: 'p50', color: '#3fb950' },
      { key: 'p99Ns', name: 'p99', color: '#d29922' },
      { key: 'p999Ns', name: 'p99.9', color: '#f85149' },
    ],
    format: formatNs,
    current: (last, c) => `p99 ${formatNs(last.p99Ns)} (${c.latencyWhen})`,
  },
  {
    testId: 'chart-throughput',
    title: 'Throughput',
    series: [{ key: 'bitsPerS', name: 'throughput', color: '#58a6ff' }],
    format: (v) => formatBitRate(v / 8),
    current: (last) => formatBitRate(last.bytesPerS),
  },
  {
    testId: 'chart-occupancy',
    title: 'Ring occupancy',
    series: [{ key: 'occupancyBytes', name: 'occupancy', color: '#bc8cff' }],
    format: formatBytes,
    current: (last) => formatBytes(last.occupancyBytes),
    reference: (c) =>
      c.capacity ? { y: c.capacity, label: `capacity ${formatBytes(c.capacity)}` } : undefined,
  },
  {
    testId: 'chart-completions',
    title: 'Completions',
    series: [
      { key: 'completionsPerS', name: 'completions/s', color: '#3fb950' },
      { key: 'recordsPerS', name: 'records/s', color: '#58a6ff' },
    ],
    format: formatRate,
    current: (last) => formatRate(last.completionsPerS),
  },
  {
    testId: 'chart-backpressure',
    title: (c) =>
      c.backpressureFrom ? `Back-pressure (from ${c.backpressureFrom})` : 'Back-pressure events',
    points: (c) => c.backpressure,
    series: [{ key: 'backpressurePerS', name: 'back-pressure/s', color: '#d29922' }],
    format: formatRate,
    current: (last) => formatRate(last.backpressurePerS),
  },
  {
    testId: 'chart-errors',
    title: 'Errors',
    series: [{ key: 'errorsPerS', name: 'errors/s', color: '#f85149' }],
    format: formatRate,
    current: (last) => formatRate(last.errorsPerS),
  },
];

const LinkCharts = memo(function LinkCharts(ctx: LinkChartContext) {
  return (
    <div className="grid-2">
      <Charts<P, LinkChartContext> specs={LINK_CHARTS} ctx={ctx} syncId="link" />
    </div>
  );
});

function Counters({ counters }: { counters: import('@rdmaq/shared').LinkSnapshot['counters'] }) {
  const errors = Object.entries(counters.errors).sort((a, b) => b[1] - a[1]);
  const rows: Array<[string, string]> = [
    ['Records', formatCount(counters.records)],
    ['Bytes', formatBytes(counters.bytes)],
    ['Completions', formatCount(counters.completions)],
    ['Credit updates', formatCount(counters.creditUpdates)],
    ['Back-pressure events', formatCount(counters.backpressure)],
    ['Ring wraps', formatCount(counters.wraps)],
    ['Resends', formatCount(counters.resends)],
    ['Reconnects', formatCount(counters.reconnects)],
  ];
  return (
    <section className="panel" aria-labelledby="counters-h">
      <h2 id="counters-h">Counters since the agent started</h2>
      <dl className="facts">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
        <div>
          <dt>Errors</dt>
          <dd>
            {errors.length === 0 ? 'none' : errors.map(([k, v]) => `${k}: ${formatCount(v)}`).join(', ')}
          </dd>
        </div>
      </dl>
    </section>
  );
}

'use client';
import type { AgentEvent, HostPoint } from '@rdmaq/shared';
import Link from 'next/link';
import { useEffect, useMemo, useRef, useState } from 'react';
import { AlertList } from '@/components/AlertPages';
import { FrozenAge, isFrozen } from '@/components/Freshness';
import { useClockSkew, useLiveView } from '@/components/LiveProvider';
import { RangePicker } from '@/components/RangePicker';
import { StatePill } from '@/components/StatePill';
import { type ChartContext, type ChartSpec, Charts } from '@/components/TimeChart';
import { useHistory, useWidth } from '@/components/useHistory';
import { api } from '@/lib/api';
import {
  formatBitRate,
  formatBytes,
  formatDurationS,
  formatNs,
  formatPercent,
  formatTimestamp,
} from '@/lib/format';
import { clipFrom, pointsForWidth, type RangeId, rangeMs } from '@/lib/range';
import { joinHistory } from '@/lib/views';
import { ChaosPanel } from './ChaosPanel';

const fmtPct = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} %`;
const fmtMs = (v: number) => `${v.toFixed(v < 10 ? 2 : 0)} ms`;

/** The node page's host charts, declared as data (components/TimeChart.tsx `Charts` draws them). */
const HOST_CHARTS: readonly ChartSpec<HostPoint, ChartContext<HostPoint>>[] = [
  {
    testId: 'chart-cpu',
    title: 'Agent CPU',
    series: [{ key: 'cpuPercent', name: 'CPU', color: '#58a6ff' }],
    format: fmtPct,
    current: (last) => (last.cpuPercent != null ? fmtPct(last.cpuPercent) : undefined),
  },
  {
    testId: 'chart-rss',
    title: 'Agent memory (RSS)',
    series: [{ key: 'rssBytes', name: 'RSS', color: '#bc8cff' }],
    format: formatBytes,
    current: (last) => formatBytes(last.rssBytes),
  },
  {
    testId: 'chart-lag',
    title: 'Event-loop lag',
    series: [{ key: 'eventLoopLagMs', name: 'lag', color: '#d29922' }],
    format: fmtMs,
    current: (last) => (last.eventLoopLagMs != null ? fmtMs(last.eventLoopLagMs) : undefined),
  },
];

function agentLabel(f: string | undefined, connected: boolean): string {
  const fr = f ?? (connected ? 'fresh' : 'offline');
  return fr === 'fresh' ? 'reporting' : fr === 'stale' ? 'stale (silent)' : 'offline';
}

/** Node page: the host's agent, its figures over time and every link end it reports. */
export function NodeView({ nodeId }: { nodeId: string }) {
  const { state, stale, error } = useLiveView<'node'>(`node:${nodeId}`);
  const [range, setRange] = useState<RangeId>('15m');
  const boxRef = useRef<HTMLDivElement>(null);
  const width = useWidth(boxRef);
  const span = rangeMs(range);
  const skew = useClockSkew();
  const history = useHistory<HostPoint>(
    { node: nodeId },
    span,
    width ? pointsForWidth(width > 1100 ? width / 3 - 110 : width - 110) : 0,
    skew,
  );
  const live = state?.points;
  const data = useMemo(
    () => clipFrom(joinHistory<HostPoint>(history.points ?? [], live ?? []), Date.now() + skew - span),
    [history.points, live, span, skew],
  );
  const last = data.length ? data[data.length - 1] : undefined;
  const domain = useMemo<[number, number]>(() => {
    const end = Math.max(Date.now() + skew, last?.ts ?? 0);
    return [end - span, end];
  }, [last, span, skew]);

  if (error && !state) {
    return (
      <>
        <h1>Node {nodeId}</h1>
        <p className="error" role="alert">
          {error.code === 'ERR_RDMAQ_NO_VIEW' ? `The hub does not know the node ${nodeId}.` : error.message}
        </p>
        <Link href="/">Back to the overview</Link>
      </>
    );
  }
  const n = state?.node;
  return (
    <>
      <div className="crumbs">
        <Link href="/">Overview</Link> / node
      </div>
      <h1>{nodeId}</h1>
      {stale && state && <p className="stale">Reconnecting; figures may be out of date.</p>}
      {n && isFrozen(n.freshness) && (
        <p className="frozen-age" role="status" data-testid="node-frozen">
          {n.freshness === 'offline'
            ? `This host's agent is offline: the figures below are its last ones (last sample ${formatTimestamp(n.lastSampleTs)}).`
            : `This host's agent stopped sending: the figures below are frozen (last sample ${formatTimestamp(n.lastSampleTs)}).`}
        </p>
      )}
      {n && (
        <section className={`panel${isFrozen(n.freshness) ? ' frozen' : ''}`} aria-label="Node facts">
          <dl className="facts">
            <div>
              <dt>Agent</dt>
              <dd>
                <StatePill
                  state={
                    (n.freshness ?? (n.connected ? 'fresh' : 'offline')) === 'fresh'
                      ? 'ok'
                      : (n.freshness ?? 'offline')
                  }
                  label={agentLabel(n.freshness, n.connected)}
                />
                <FrozenAge lastDataAt={n.lastDataAt} freshness={n.freshness} />
              </dd>
            </div>
            <div>
              <dt>Health</dt>
              <dd>
                <StatePill state={n.health} />
              </dd>
            </div>
            <div>
              <dt>Host name</dt>
              <dd>{n.hostname || '—'}</dd>
            </div>
            <div>
              <dt>Agent version</dt>
              <dd>{n.version || '—'}</dd>
            </div>
            <div>
              <dt>Providers</dt>
              <dd>{n.providers.length ? n.providers.join(', ') : 'none'}</dd>
            </div>
            <div>
              <dt>Links up</dt>
              <dd>
                {n.linksUp} / {n.linkCount}
                {n.linksDownByPeer ? ` (${n.linksDownByPeer} down by their peer)` : ''}
              </dd>
            </div>
            <div>
              <dt>CPU</dt>
              <dd>{n.cpuPercent === null ? '—' : fmtPct(n.cpuPercent)}</dd>
            </div>
            <div>
              <dt>Agent memory (RSS)</dt>
              <dd>{formatBytes(n.rssBytes)}</dd>
            </div>
            <div>
              <dt title="The agent's main thread: sampling, WebSocket, HTTP">Event-loop lag</dt>
              <dd>{n.eventLoopLagMs === null ? '—' : fmtMs(n.eventLoopLagMs)}</dd>
            </div>
            {n.dataPathLagMs != null && (
              <div>
                <dt title="The thread that runs the links: what queue latency waits behind">Data-path lag</dt>
                <dd>{fmtMs(n.dataPathLagMs)}</dd>
              </div>
            )}
            <div>
              <dt>Uptime</dt>
              <dd>{formatDurationS(n.uptimeS)}</dd>
            </div>
            <div>
              <dt>Last sample</dt>
              <dd>{formatTimestamp(n.lastSampleTs)}</dd>
            </div>
          </dl>
        </section>
      )}
      {state && state.alerts.length > 0 && <AlertList alerts={state.alerts} />}
      {state && (
        <section className="panel" aria-labelledby="nl-h">
          <h2 id="nl-h">Link ends on this node ({state.links.length})</h2>
          <div className="table-wrap">
            <table data-testid="node-links">
              <thead>
                <tr>
                  <th scope="col">Link</th>
                  <th scope="col">Peer</th>
                  <th scope="col">Dir</th>
                  <th scope="col">State</th>
                  <th scope="col">Transport</th>
                  <th scope="col" className="num">
                    Throughput
                  </th>
                  <th scope="col" className="num">
                    p50 / p99
                  </th>
                  <th scope="col" className="num">
                    Ring
                  </th>
                  <th scope="col" className="num">
                    Errors/s
                  </th>
                </tr>
              </thead>
              <tbody>
                {state.links.map((l) => (
                  <tr key={l.key} className={isFrozen(l.freshness) ? 'frozen' : undefined}>
                    <td>
                      <Link href={`/links/${encodeURIComponent(l.key)}`}>{l.id}</Link>
                      {l.app !== undefined && <div className="badge-app">app {l.app}</div>}
                    </td>
                    <td>
                      <Link href={`/nodes/${encodeURIComponent(l.peer)}`}>{l.peer}</Link>
                    </td>
                    <td>{l.direction}</td>
                    <td>
                      <StatePill state={l.state} />
                      {l.reason && <div className="muted">{l.reason}</div>}
                      {l.blame && l.blame !== l.node && <div className="muted">cause: {l.blame}</div>}
                    </td>
                    <td>
                      {l.transport}/{l.provider}
                    </td>
                    <td className="num">{formatBitRate(l.bytesPerS)}</td>
                    <td className="num">
                      {formatNs(l.p50Ns)} / {formatNs(l.p99Ns)}
                    </td>
                    <td className="num">{formatPercent(l.occupancy)}</td>
                    <td className="num">{l.errorsPerS.toFixed(l.errorsPerS ? 1 : 0)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
      <ChaosPanel nodeId={nodeId} />
      <NodeEvents nodeId={nodeId} />
      <div className="panel-head">
        <h2>Host over time</h2>
        <RangePicker value={range} onChange={setRange} />
      </div>
      {history.error && <p className="error">History: {history.error}</p>}
      <div ref={boxRef} className="grid-3">
        <Charts<HostPoint, ChartContext<HostPoint>>
          specs={HOST_CHARTS}
          ctx={{ data, domain }}
          syncId="node"
        />
      </div>
    </>
  );
}

/** The agent's recent events (link state changes, errors), newest first, refreshed every 10 s over REST. */
function NodeEvents({ nodeId }: { nodeId: string }) {
  const [events, setEvents] = useState<AgentEvent[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    const load = () =>
      api<{ events?: AgentEvent[] }>(`/api/nodes/${encodeURIComponent(nodeId)}`, { signal: ctl.signal })
        .then((r) => {
          setEvents([...(r.events ?? [])].sort((a, b) => b.ts - a.ts));
          setErr(null);
        })
        .catch((e: Error) => {
          if (e.name !== 'AbortError') setErr(e.message);
        });
    load();
    const t = setInterval(load, 10_000);
    return () => {
      clearInterval(t);
      ctl.abort();
    };
  }, [nodeId]);
  return (
    <section className="panel" aria-labelledby="ev-h">
      <h2 id="ev-h">Recent agent events</h2>
      {err && <p className="error">{err}</p>}
      {events && events.length === 0 && <p className="muted">No events reported.</p>}
      {events && events.length > 0 && (
        <div className="table-wrap" style={{ maxHeight: 260, overflowY: 'auto' }}>
          <table data-testid="node-events">
            <thead>
              <tr>
                <th scope="col">Time (UTC)</th>
                <th scope="col">Severity</th>
                <th scope="col">Kind</th>
                <th scope="col">Link</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {events.slice(0, 50).map((e, i) => (
                <tr key={`${e.ts}-${i}`}>
                  <td className="mono">{formatTimestamp(e.ts)}</td>
                  <td>
                    <span className={`sev sev-${e.severity}`}>{e.severity}</span>
                  </td>
                  <td>
                    {e.kind}
                    {e.state ? ` → ${e.state}` : ''}
                  </td>
                  <td>{e.link ?? '—'}</td>
                  <td>
                    {e.message}
                    {e.code && <span className="muted mono"> {e.code}</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

'use client';
import type { LinkSummary, NodeSummary } from '@rdmaq/shared';
import Link from 'next/link';
import { memo, useDeferredValue, useMemo, useState } from 'react';
import { HEALTH_COLOR } from '../lib/ui/colors';
import { formatBitRate, formatDurationS, formatNs, formatPercent } from '../lib/ui/format';
import { compareIds, GRAPH_MAX_NODES } from '../lib/ui/layout';
import { FrozenAge, isFrozen } from './Freshness';
import { KpiStrip } from './KpiStrip';
import { useLiveView } from './LiveProvider';
import { OccupancyHeatmap } from './OccupancyHeatmap';
import { StatePill } from './StatePill';
import { Topology } from './Topology';

/** Rows shown in the tables before the filter narrows them (thousands of rows would drown the page). */
const TABLE_ROWS = 50;

export function Overview() {
  const { state, stale, error } = useLiveView<'overview'>('overview');
  // The host-to-host pictures draw links between hosts: an application's end whose peer the hub could not
  // resolve to a host (an address outside the cluster) has no second host to draw (it stays in the tables).
  const drawable = useMemo(() => {
    const links = state?.links ?? EMPTY_LINKS;
    const nodes = state?.nodes ?? EMPTY_NODES;
    if (!links.some((l) => l.app !== undefined)) return links;
    const ids = new Set(nodes.map((n) => n.id));
    return links.filter((l) => l.app === undefined || ids.has(l.peer));
  }, [state?.links, state?.nodes]);
  return (
    <>
      <h1>Cluster overview</h1>
      {stale && state && <p className="stale">Reconnecting to the hub; figures may be out of date.</p>}
      {error && <p className="error">{error.message}</p>}
      <KpiStrip kpi={state?.kpi} />
      {state && state.nodes.length === 0 && state.links.length === 0 ? (
        <section className="panel empty">
          No agent has reported yet. Start <code>rdmaq-agent</code> on your hosts with a token from an admin.
        </section>
      ) : (
        <>
          <section className="panel" aria-labelledby="topo-h">
            <div className="panel-head">
              <h2 id="topo-h">Topology</h2>
              <TopologyLegend grouped={(state?.nodes.length ?? 0) > GRAPH_MAX_NODES} />
            </div>
            <Topology nodes={state?.nodes ?? EMPTY_NODES} links={drawable} />
          </section>
          <section className="panel" aria-labelledby="heat-h">
            <div className="panel-head">
              <h2 id="heat-h">Ring occupancy, all links</h2>
            </div>
            <OccupancyHeatmap links={drawable} />
          </section>
          <div className="grid-2 offscreen-lazy">
            <NodesTable nodes={state?.nodes ?? EMPTY_NODES} />
            <LinksTable links={state?.links ?? EMPTY_LINKS} />
          </div>
        </>
      )}
    </>
  );
}

const EMPTY_NODES: NodeSummary[] = [];
const EMPTY_LINKS: LinkSummary[] = [];

function TopologyLegend({ grouped }: { grouped: boolean }) {
  return (
    <div className="legend" style={{ marginTop: 0 }}>
      {(['up', 'degraded', 'stalled', 'down', 'stale', 'offline'] as const).map((h) => (
        <span key={h}>
          <span className="swatch" style={{ background: HEALTH_COLOR[h] }} />
          {h}
        </span>
      ))}
      <span>
        {grouped
          ? '· groups by rack label or name: click to expand · drag to pan, wheel to zoom'
          : '· edge width = throughput · drag to pan, wheel to zoom'}
      </span>
    </div>
  );
}

const NODE_RANK: Record<NodeSummary['health'], number> = {
  offline: 0,
  down: 1,
  stale: 2,
  degraded: 3,
  ok: 4,
};

const NodesTable = memo(function NodesTable({ nodes }: { nodes: readonly NodeSummary[] }) {
  const [q, setQ] = useState('');
  const dq = useDeferredValue(q);
  const rows = useMemo(() => {
    const f = dq.trim().toLowerCase();
    return nodes
      .filter((n) => !f || n.id.toLowerCase().includes(f) || n.hostname.toLowerCase().includes(f))
      .sort((a, b) => NODE_RANK[a.health] - NODE_RANK[b.health] || compareIds(a.id, b.id));
  }, [nodes, dq]);
  return (
    <section className="panel" aria-labelledby="nodes-h">
      <div className="panel-head">
        <h2 id="nodes-h">Nodes ({nodes.length})</h2>
        <input
          type="search"
          placeholder="Filter nodes"
          aria-label="Filter nodes"
          value={q}
          onChange={(e) => setQ(e.target.value)}
        />
      </div>
      <div className="table-wrap">
        <table data-testid="nodes-table">
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">State</th>
              <th scope="col" className="num">
                Links up
              </th>
              <th scope="col" className="num">
                CPU
              </th>
              <th scope="col" className="num">
                Uptime
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, TABLE_ROWS).map((n) => (
              <tr key={n.id}>
                <td>
                  <Link href={`/nodes/${encodeURIComponent(n.id)}`}>{n.id}</Link>
                  {n.hostname && n.hostname !== n.id && <div className="muted">{n.hostname}</div>}
                </td>
                <td>
                  <StatePill state={n.health} />
                  <FrozenAge lastDataAt={n.lastDataAt} freshness={n.freshness} />
                </td>
                <td className="num">
                  {n.linksUp} / {n.linkCount}
                  {n.linksDownByPeer ? (
                    <div className="muted" title="links down because their peer is the host at fault">
                      {n.linksDownByPeer} down by peer
                    </div>
                  ) : null}
                </td>
                <td className="num">{n.cpuPercent === null ? '—' : `${n.cpuPercent.toFixed(0)} %`}</td>
                <td className="num">{formatDurationS(n.uptimeS)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length > TABLE_ROWS && (
          <p className="muted">
            Showing the {TABLE_ROWS} most urgent of {rows.length}; filter to narrow.
          </p>
        )}
      </div>
    </section>
  );
});

const LINK_RANK: Record<LinkSummary['state'], number> = {
  down: 0,
  stalled: 1,
  degraded: 2,
  connecting: 3,
  up: 4,
};

const LinksTable = memo(function LinksTable({ links }: { links: readonly LinkSummary[] }) {
  const [q, setQ] = useState('');
  const dq = useDeferredValue(q);
  const rows = useMemo(() => {
    const f = dq.trim().toLowerCase();
    return links
      .filter(
        (l) =>
          !f ||
          l.key.toLowerCase().includes(f) ||
          l.peer.toLowerCase().includes(f) ||
          (l.app ?? '').toLowerCase().includes(f),
      )
      .sort(
        (a, b) =>
          LINK_RANK[a.state] - LINK_RANK[b.state] ||
          (b.p99Ns ?? -1) - (a.p99Ns ?? -1) ||
          b.occupancy - a.occupancy ||
          compareIds(a.key, b.key),
      );
  }, [links, dq]);
  return (
    <section className="panel" aria-labelledby="links-h">
      <div className="panel-head">
        <h2 id="links-h">Link ends ({links.length})</h2>
        <input
          type="search"
          placeholder="Filter links (id, peer, app)"
          aria-label="Filter links"
          value={q}
          onChange={(e) => setQ(e.target.value)}
        />
      </div>
      <div className="table-wrap">
        <table data-testid="links-table">
          <thead>
            <tr>
              <th scope="col">Link</th>
              <th scope="col">State</th>
              <th scope="col" className="num">
                Throughput
              </th>
              <th scope="col" className="num">
                p99
              </th>
              <th scope="col" className="num">
                Ring
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, TABLE_ROWS).map((l) => (
              <tr key={l.key} className={isFrozen(l.freshness) ? 'frozen' : undefined}>
                <td>
                  <Link href={`/links/${encodeURIComponent(l.key)}`}>{l.id}</Link>
                  <div className="muted">
                    {l.app !== undefined && <span className="badge-app">app {l.app}</span>}
                    {l.direction === 'tx' ? `${l.node} → ${l.peer}` : `${l.peer} → ${l.node}`} · {l.direction}{' '}
                    end · {l.transport}/{l.provider}
                  </div>
                </td>
                <td>
                  <StatePill state={l.state} />
                  {isFrozen(l.freshness) && (
                    <div className="frozen-age">
                      frozen: {l.node} {l.freshness}
                    </div>
                  )}
                  {l.blame && l.blame !== l.node && <div className="muted">cause: {l.blame}</div>}
                </td>
                <td className="num">{formatBitRate(l.bytesPerS)}</td>
                <td className="num">{formatNs(l.p99Ns)}</td>
                <td className="num">{formatPercent(l.occupancy)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length > TABLE_ROWS && (
          <p className="muted">
            Showing the {TABLE_ROWS} most urgent of {rows.length}; filter to narrow.
          </p>
        )}
      </div>
    </section>
  );
});

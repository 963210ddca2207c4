'use client';
import {
  LINK_TABLE_SORTS,
  type LinkSummary,
  NODE_TABLE_SORTS,
  type NodeSummary,
  type TableQuery,
  tableView,
} from '@rdmaq/shared';
import Link from 'next/link';
import { type ReactNode, type UIEvent, useEffect, useMemo, useRef, useState } from 'react';
import { FrozenAge, isFrozen } from '@/components/Freshness';
import { useLiveView } from '@/components/LiveProvider';
import { StatePill } from '@/components/StatePill';
import { HEALTH_COLOR } from '@/lib/colors';
import { formatBitRate, formatDurationS, formatNs, formatPercent } from '@/lib/format';
import { GRAPH_MAX_NODES } from '@/lib/layout';
import type { OverviewLink, OverviewNode, TableState } from '@/lib/views';
import { KpiStrip } from './KpiStrip';
import { OccupancyHeatmap } from './OccupancyHeatmap';
import { Topology } from './Topology';

/**
 * The tables are windows the hub computes (sort, filter, paging are the view's parameters): the page holds
 * only the rows it can show, whatever the fleet's size. Rows have a fixed height, so the scroll position
 * names the window and spacer rows stand in for the rest.
 */
const ROW_H = 48;
/** Rows asked for at a time, and the step the window moves by (so nearby scroll positions share a view). */
const WINDOW_ROWS = 60;
const WINDOW_STEP = 20;
const VISIBLE_ROWS = 12;

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
            <NodesTable />
            <LinksTable />
          </div>
        </>
      )}
    </>
  );
}

const EMPTY_NODES: OverviewNode[] = [];
const EMPTY_LINKS: OverviewLink[] = [];

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

/**
 * One windowed table: a filter box, a sort picker, and a scrolled body whose window is subscribed on the
 * hub. While a new window loads, the previous rows stay on screen (no flash).
 */
function useTableWindow<R>(
  table: TableQuery['table'],
  sort: string,
  q: string,
  offset: number,
): { state: TableState<R> | undefined; error: string | undefined; stale: boolean } {
  const view = tableView({ table, sort, q, offset, limit: WINDOW_ROWS });
  const { state, error, stale } = useLiveView<'table'>(view);
  const last = useRef<TableState | undefined>(undefined);
  if (state) last.current = state;
  return {
    state: (state ?? last.current) as TableState<R> | undefined,
    error: error?.message,
    stale: stale && state !== undefined,
  };
}

/** Filter text as typed, and as subscribed (after a pause in typing: each change is a new hub view). */
function useDebounced(value: string, ms: number): string {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

function WindowedTable<R>({
  title,
  id,
  testId,
  table,
  sorts,
  placeholder,
  head,
  row,
  rowKey,
  rowClass,
}: {
  title: string;
  id: string;
  testId: string;
  table: TableQuery['table'];
  sorts: readonly string[];
  placeholder: string;
  head: ReactNode;
  row: (r: R) => ReactNode;
  rowKey: (r: R) => string;
  rowClass?: (r: R) => string | undefined;
}) {
  const [q, setQ] = useState('');
  const [sort, setSort] = useState('urgency');
  const [offset, setOffset] = useState(0);
  const dq = useDebounced(q.trim(), 250);
  const body = useRef<HTMLDivElement>(null);
  // A new filter or sort starts at the top.
  useEffect(() => {
    setOffset(0);
    if (body.current) body.current.scrollTop = 0;
  }, [dq, sort]);
  const { state, error } = useTableWindow<R>(table, sort, dq, offset);
  const onScroll = (e: UIEvent<HTMLDivElement>) => {
    const first = Math.floor(e.currentTarget.scrollTop / ROW_H);
    const next = Math.max(
      0,
      Math.floor((first - (WINDOW_ROWS - VISIBLE_ROWS) / 2) / WINDOW_STEP) * WINDOW_STEP,
    );
    if (next !== offset) setOffset(next);
  };
  const total = state?.total ?? 0;
  const rows = state?.rows ?? [];
  const from = state?.offset ?? 0;
  return (
    <section className="panel" aria-labelledby={id}>
      <div className="panel-head">
        <h2 id={id}>
          {title} ({total})
        </h2>
        <select
          aria-label={`Sort ${title.toLowerCase()}`}
          value={sort}
          onChange={(e) => setSort(e.target.value)}
        >
          {sorts.map((s) => (
            <option key={s} value={s}>
              {s === 'urgency' ? 'most urgent first' : `by ${s}`}
            </option>
          ))}
        </select>
        <input
          type="search"
          placeholder={placeholder}
          aria-label={placeholder}
          value={q}
          maxLength={64}
          onChange={(e) => setQ(e.target.value)}
        />
      </div>
      {error && <p className="error">{error}</p>}
      <div
        className="table-wrap table-window"
        ref={body}
        onScroll={onScroll}
        style={{ maxHeight: ROW_H * VISIBLE_ROWS + 40, overflowY: 'auto' }}
      >
        <table data-testid={testId} data-total={total} data-offset={from}>
          <thead>{head}</thead>
          <tbody>
            {from > 0 && (
              <tr className="spacer">
                <td colSpan={5} style={{ height: from * ROW_H, padding: 0 }} />
              </tr>
            )}
            {rows.map((r) => (
              <tr key={rowKey(r)} style={{ height: ROW_H }} className={rowClass?.(r)}>
                {row(r)}
              </tr>
            ))}
            {total - from - rows.length > 0 && (
              <tr className="spacer">
                <td colSpan={5} style={{ height: (total - from - rows.length) * ROW_H, padding: 0 }} />
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {total > 0 && (
        <p className="muted">
          {rows.length < total
            ? `Rows ${from + 1}–${from + rows.length} of ${total} held; scroll for more`
            : `All ${total} rows`}
          {dq ? `, filtered by “${dq}”` : ''}.
        </p>
      )}
    </section>
  );
}

function NodesTable() {
  return (
    <WindowedTable<NodeSummary>
      title="Nodes"
      id="nodes-h"
      testId="nodes-table"
      table="nodes"
      sorts={NODE_TABLE_SORTS}
      placeholder="Filter nodes"
      rowKey={(n) => n.id}
      head={
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
      }
      row={(n) => (
        <>
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
        </>
      )}
    />
  );
}

function LinksTable() {
  return (
    <WindowedTable<LinkSummary>
      title="Link ends"
      id="links-h"
      testId="links-table"
      table="links"
      sorts={LINK_TABLE_SORTS}
      placeholder="Filter links (id, peer, app)"
      rowKey={(l) => l.key}
      rowClass={(l) => (isFrozen(l.freshness) ? 'frozen' : undefined)}
      head={
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
      }
      row={(l) => (
        <>
          <td>
            <Link href={`/links/${encodeURIComponent(l.key)}`}>{l.id}</Link>
            <div className="muted">
              {l.app !== undefined && <span className="badge-app">app {l.app}</span>}
              {l.direction === 'tx' ? `${l.node} → ${l.peer}` : `${l.peer} → ${l.node}`} · {l.direction} end ·{' '}
              {l.transport}/{l.provider}
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
        </>
      )}
    />
  );
}

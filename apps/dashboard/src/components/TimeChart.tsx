'use client';
import { memo, useMemo } from 'react';
import {
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { formatTimestamp } from '@/lib/format';
import { timeTicks } from '@/lib/range';
import { usePalette } from './theme';

export interface Series<P> {
  key: keyof P & string;
  name: string;
  color: string;
}

export interface TimeChartProps<P extends { ts: number }> {
  title: string;
  data: readonly P[];
  series: readonly Series<P>[];
  format: (v: number) => string;
  domain: [number, number];
  /** Latest value shown beside the title. */
  current?: string;
  reference?: { y: number; label: string };
  testId?: string;
  /** Charts with the same id show their tooltips at the same time (hover one, read all). */
  syncId?: string;
}

/**
 * One recharts time series. No animation and no dots: it redraws once per hub delta with up to a few
 * thousand points and must stay cheap. Nulls are gaps (a link that was down is not drawn as zero).
 */
function TimeChartInner<P extends { ts: number }>({
  title,
  data,
  series,
  format,
  domain,
  current,
  reference,
  testId,
  syncId,
}: TimeChartProps<P>) {
  const hasData = data.length > 0;
  const axis = useMemo(() => timeTicks(domain), [domain]);
  const pal = usePalette();
  return (
    <figure className="panel" style={{ margin: 0 }} data-testid={testId} data-points={data.length}>
      <figcaption className="chart-title">
        <span>
          {title}{' '}
          <span className="muted" style={{ fontSize: 11, fontWeight: 400 }} title="Time axis in UTC">
            · UTC
          </span>
        </span>
        {current !== undefined && <span className="now">{current}</span>}
      </figcaption>
      <div
        className="chart-box"
        role="img"
        aria-label={`${title} over time${current ? `, now ${current}` : ''}`}
      >
        {hasData ? (
          <ResponsiveContainer width="100%" height="100%">
            <LineChart
              data={data as P[]}
              margin={{ top: 6, right: 8, bottom: 0, left: 0 }}
              syncId={syncId}
              syncMethod="value"
            >
              <CartesianGrid stroke={pal.grid} vertical={false} />
              <XAxis
                dataKey="ts"
                type="number"
                scale="time"
                domain={domain}
                allowDataOverflow
                ticks={axis.ticks}
                tickFormatter={axis.format}
                stroke={pal.muted}
                fontSize={11}
              />
              <YAxis stroke={pal.muted} fontSize={11} width={86} tickFormatter={(v: number) => format(v)} />
              <Tooltip
                contentStyle={{
                  background: pal.tooltipBg,
                  border: `1px solid ${pal.tooltipBorder}`,
                  fontSize: 12,
                }}
                labelFormatter={(v) => formatTimestamp(Number(v))}
                formatter={(v) => (typeof v === 'number' ? format(v) : String(v))}
                isAnimationActive={false}
              />
              {series.length > 1 && <Legend wrapperStyle={{ fontSize: 12 }} />}
              {reference && (
                <ReferenceLine
                  y={reference.y}
                  stroke={pal.muted}
                  strokeDasharray="4 4"
                  label={{
                    value: reference.label,
                    fill: pal.muted,
                    fontSize: 11,
                    position: 'insideTopRight',
                  }}
                />
              )}
              {series.map((s) => (
                <Line
                  key={s.key}
                  dataKey={s.key}
                  name={s.name}
                  stroke={s.color}
                  dot={false}
                  strokeWidth={1.6}
                  isAnimationActive={false}
                  connectNulls={false}
                  type="linear"
                />
              ))}
            </LineChart>
          </ResponsiveContainer>
        ) : (
          <div className="empty">No data in this range</div>
        )}
      </div>
    </figure>
  );
}

export const TimeChart = memo(TimeChartInner) as typeof TimeChartInner;

/**
 * One chart of a page, declared as data: what it plots from the page's context `C` and how. A page lists
 * its charts (LINK_CHARTS, HOST_CHARTS) and `Charts` draws them; adding a chart is adding an entry.
 */
export interface ChartSpec<P extends { ts: number }, C extends ChartContext<P>> {
  testId: string;
  title: string | ((ctx: C) => string);
  /** The points it plots; default `ctx.data`. */
  points?: (ctx: C) => readonly P[];
  series: readonly Series<P>[];
  format: (v: number) => string;
  /** The figure beside the title, from the last point plotted. */
  current?: (last: P, ctx: C) => string | undefined;
  reference?: (ctx: C) => { y: number; label: string } | undefined;
}

export interface ChartContext<P> {
  data: readonly P[];
  domain: [number, number];
}

/** Draws a page's chart list (no wrapper: the page's grid holds them), tooltips synchronised by `syncId`. */
export function Charts<P extends { ts: number }, C extends ChartContext<P>>({
  specs,
  ctx,
  syncId,
}: {
  specs: readonly ChartSpec<P, C>[];
  ctx: C;
  syncId: string;
}) {
  return (
    <>
      {specs.map((s) => {
        const points = s.points ? s.points(ctx) : ctx.data;
        const last = points.length ? points[points.length - 1] : undefined;
        return (
          <TimeChart<P>
            key={s.testId}
            syncId={syncId}
            testId={s.testId}
            title={typeof s.title === 'string' ? s.title : s.title(ctx)}
            data={points}
            series={s.series}
            format={s.format}
            domain={ctx.domain}
            current={last ? s.current?.(last, ctx) : undefined}
            reference={s.reference?.(ctx)}
          />
        );
      })}
    </>
  );
}

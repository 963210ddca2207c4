'use client';
import type { LinkSummary } from '@rdmaq/shared';
import { useRouter } from 'next/navigation';
import { type KeyboardEvent, type MouseEvent, memo, useEffect, useMemo, useRef, useState } from 'react';
import { HEALTH_COLOR, healthOf, occupancyColor } from '../lib/ui/colors';
import { formatBytes, formatPercent } from '../lib/ui/format';
import { cellAt, gridShape, ringEnds } from '../lib/ui/layout';
import { usePalette } from './theme';
import { prepareContext, useCanvasSize } from './useCanvas';

function fraction(l: LinkSummary): number {
  return l.capacityBytes > 0 ? l.occupancy : Number.NaN;
}

/**
 * Ring occupancy of every link as one canvas heatmap: a cell per link, ordered by receiving node then link
 * id (a host's rings sit together), colour from empty (dark) to full (hot). Down links get a red outline.
 * Hover names the link; click or Enter opens it. Thousands of links cost one canvas redraw per delta.
 */
export const OccupancyHeatmap = memo(function OccupancyHeatmap({
  links,
  height = 180,
}: {
  links: readonly LinkSummary[];
  height?: number;
}) {
  const router = useRouter();
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const size = useCanvasSize(boxRef, canvasRef, 0);
  const pal = usePalette();
  const ordered = useMemo(() => ringEnds(links), [links]);
  // The grid depends on the width and the height budget only (never on the measured height, which follows
  // from it): cells at most 28 px, the box as tall as the rows need.
  const shape = useMemo(() => {
    const s = gridShape(ordered.length, { width: size.width, height });
    if (s.cell <= 28) return s;
    const cols = Math.max(1, Math.floor(size.width / 28));
    return { cols, rows: Math.ceil(ordered.length / cols), cell: 28 };
  }, [ordered.length, size.width, height]);
  const boxHeight = Math.max(28, Math.ceil(shape.rows * shape.cell));
  const [hover, setHover] = useState<{ i: number; x: number; y: number } | null>(null);
  const [focusIdx, setFocusIdx] = useState(-1);

  useEffect(() => {
    const ctx = prepareContext(canvasRef.current, size);
    if (!ctx || shape.cell <= 0) return;
    const { cols, cell } = shape;
    const gap = cell >= 6 ? 1 : 0;
    ordered.forEach((l, i) => {
      const x = (i % cols) * cell;
      const y = Math.floor(i / cols) * cell;
      ctx.fillStyle = occupancyColor(fraction(l));
      ctx.fillRect(x, y, cell - gap, cell - gap);
      if (l.state !== 'up' && cell >= 6) {
        ctx.strokeStyle = HEALTH_COLOR[healthOf(l.state)];
        ctx.lineWidth = 1.5;
        ctx.strokeRect(x + 1, y + 1, cell - gap - 2, cell - gap - 2);
      }
    });
    const hi = hover?.i ?? focusIdx;
    if (hi >= 0 && hi < ordered.length) {
      ctx.strokeStyle = pal.highlight;
      ctx.lineWidth = 2;
      ctx.strokeRect((hi % cols) * cell, Math.floor(hi / cols) * cell, cell - gap, cell - gap);
    }
  }, [ordered, shape, size, hover, focusIdx, pal]);

  const at = (ev: MouseEvent<HTMLCanvasElement>) => {
    const r = ev.currentTarget.getBoundingClientRect();
    const p = { x: ev.clientX - r.left, y: ev.clientY - r.top };
    return { i: cellAt(p, shape.cols, shape.cell, ordered.length), ...p };
  };
  const open = (i: number) => {
    const l = ordered[i];
    if (l) router.push(`/links/${encodeURIComponent(l.key)}`);
  };
  const onKey = (ev: KeyboardEvent<HTMLCanvasElement>) => {
    const n = ordered.length;
    if (!n) return;
    const step: Record<string, number> = {
      ArrowRight: 1,
      ArrowLeft: -1,
      ArrowDown: shape.cols,
      ArrowUp: -shape.cols,
    };
    const d = step[ev.key];
    if (d !== undefined) {
      setFocusIdx((i) => Math.min(n - 1, Math.max(0, Math.max(0, i) + d)));
      ev.preventDefault();
    } else if (ev.key === 'Enter' && focusIdx >= 0) open(focusIdx);
  };
  const full = ordered.filter((l) => fraction(l) >= 0.8).length;
  const shown = hover && hover.i >= 0 ? ordered[hover.i] : focusIdx >= 0 ? ordered[focusIdx] : undefined;

  return (
    <div>
      <div ref={boxRef} className="heatmap" style={{ height: boxHeight }}>
        <canvas
          ref={canvasRef}
          tabIndex={0}
          role="img"
          data-testid="occupancy-heatmap"
          data-cells={ordered.length}
          aria-label={`Ring occupancy of ${ordered.length} links, ${full} at 80 % or more. Arrow keys move between links, Enter opens one.`}
          onMouseMove={(ev) => setHover(at(ev))}
          onMouseLeave={() => setHover(null)}
          onClick={(ev) => open(at(ev).i)}
          onKeyDown={onKey}
          onBlur={() => setFocusIdx(-1)}
          style={{ cursor: hover && hover.i >= 0 ? 'pointer' : 'default' }}
        />
        {hover && hover.i >= 0 && shown && (
          <div
            className="tooltip"
            role="tooltip"
            style={{ left: Math.min(hover.x + 14, size.width - 220), top: hover.y + 14 }}
          >
            <strong>{shown.key}</strong>
            <div>
              {shown.direction === 'rx' ? `${shown.peer} → ${shown.node}` : `${shown.node} → ${shown.peer}`} ·{' '}
              {shown.state}
            </div>
            <div>
              ring {formatBytes(shown.occupancyBytes)} / {formatBytes(shown.capacityBytes)} (
              {formatPercent(fraction(shown))})
            </div>
          </div>
        )}
      </div>
      <div className="legend" aria-hidden="true">
        <span>empty</span>
        <span className="ramp" />
        <span>full</span>
        <span className="muted">
          {shown && !hover ? `${shown.key}: ${formatPercent(fraction(shown))}` : ''}
        </span>
      </div>
      <div className="sr-only" aria-live="polite">
        {focusIdx >= 0 && shown
          ? `${shown.key}: ring ${formatPercent(fraction(shown))} full, ${shown.state}`
          : ''}
      </div>
    </div>
  );
});

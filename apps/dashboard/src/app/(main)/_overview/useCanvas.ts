'use client';
import { type RefObject, useEffect, useRef, useState } from 'react';
import type { Size } from '@/lib/layout';

/**
 * Tracks a container's CSS size (ResizeObserver) and keeps a canvas's backing store at devicePixelRatio,
 * so drawings stay sharp on HiDPI screens. Drawing itself stays imperative (no React per element): the
 * caller redraws in an effect keyed on the data version, at most once per hub delta.
 */
export function useCanvasSize(
  containerRef: RefObject<HTMLElement | null>,
  canvasRef: RefObject<HTMLCanvasElement | null>,
  minHeight = 200,
): Size {
  const [size, setSize] = useState<Size>({ width: 0, height: 0 });
  useEffect(() => {
    const el = containerRef.current;
    if (!el) return;
    const update = () => {
      const r = el.getBoundingClientRect();
      const width = Math.floor(r.width);
      const height = Math.max(minHeight, Math.floor(r.height));
      setSize((s) => (s.width === width && s.height === height ? s : { width, height }));
    };
    update();
    const ro = new ResizeObserver(update);
    ro.observe(el);
    return () => ro.disconnect();
  }, [containerRef, minHeight]);
  useEffect(() => {
    const c = canvasRef.current;
    if (!c || size.width === 0) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(size.width * dpr);
    c.height = Math.round(size.height * dpr);
    c.style.width = `${size.width}px`;
    c.style.height = `${size.height}px`;
  }, [canvasRef, size]);
  return size;
}

/** 2D context scaled to CSS pixels and cleared, or null before the canvas has a size. */
export function prepareContext(c: HTMLCanvasElement | null, size: Size): CanvasRenderingContext2D | null {
  if (!c || size.width === 0 || size.height === 0) return null;
  const ctx = c.getContext('2d');
  if (!ctx) return null;
  const dpr = window.devicePixelRatio || 1;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, size.width, size.height);
  return ctx;
}

/** Latest value in a ref, for event handlers that must not re-subscribe on every render. */
export function useLatest<T>(value: T): RefObject<T> {
  const ref = useRef(value);
  ref.current = value;
  return ref;
}

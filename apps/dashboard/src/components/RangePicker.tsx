'use client';
import { RANGES, type RangeId } from '@/lib/range';

/** Time range of the charts: a group of toggle buttons (Tab reaches each, Space/Enter picks). */
export function RangePicker({ value, onChange }: { value: RangeId; onChange: (r: RangeId) => void }) {
  return (
    <fieldset className="tabs">
      <legend className="sr-only">Time range</legend>
      {RANGES.map((r) => (
        <button key={r.id} type="button" aria-pressed={value === r.id} onClick={() => onChange(r.id)}>
          {r.label}
        </button>
      ))}
    </fieldset>
  );
}

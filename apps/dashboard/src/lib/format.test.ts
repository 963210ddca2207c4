import { describe, expect, it } from 'vitest';
import {
  formatAgo,
  formatBitRate,
  formatBytes,
  formatCount,
  formatDurationS,
  formatMetric,
  formatNs,
  formatPercent,
  formatRate,
  formatTimestamp,
  MISSING,
} from './format';

describe('format', () => {
  it('formats nanoseconds across units with three significant digits', () => {
    expect(formatNs(850)).toBe('850 ns');
    expect(formatNs(3_210)).toBe('3.21 µs');
    expect(formatNs(42_500)).toBe('42.5 µs');
    expect(formatNs(12_500_000)).toBe('12.5 ms');
    expect(formatNs(1_200_000_000)).toBe('1.2 s');
    expect(formatNs(0)).toBe('0 ns');
  });

  it('shows missing figures as a dash, never as zero', () => {
    for (const f of [
      formatNs,
      formatBytes,
      formatBitRate,
      formatRate,
      formatCount,
      formatPercent,
      formatDurationS,
    ]) {
      expect(f(null)).toBe(MISSING);
      expect(f(undefined)).toBe(MISSING);
      expect(f(Number.NaN)).toBe(MISSING);
    }
    expect(formatTimestamp(null)).toBe(MISSING);
    expect(formatAgo(undefined, 0)).toBe(MISSING);
  });

  it('uses binary units for sizes and decimal bits for throughput', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(4 * 1024 * 1024)).toBe('4 MiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    // 12.5 GB/s is the 100 Gbit/s the design targets
    expect(formatBitRate(12.5e9)).toBe('100 Gbit/s');
    expect(formatBitRate(125)).toBe('1 kbit/s');
  });

  it('formats rates, counts, percentages and durations', () => {
    expect(formatRate(12.34)).toBe('12.3/s');
    expect(formatRate(4_500)).toBe('4.5 k/s');
    expect(formatRate(1_230_000)).toBe('1.23 M/s');
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatPercent(0.123)).toBe('12.3 %');
    expect(formatDurationS(45)).toBe('45 s');
    expect(formatDurationS(3 * 3600 + 5 * 60)).toBe('3 h 5 min');
    expect(formatDurationS(2 * 86400 + 4 * 3600)).toBe('2 d 4 h');
    expect(formatAgo(10_000, 15_000)).toBe('5 s ago');
    expect(formatTimestamp(Date.UTC(2026, 10, 25, 16, 47, 11))).toBe('2026-11-25 16:47:11Z');
  });

  it('formats rule thresholds in the unit of their metric', () => {
    expect(formatMetric('latency_p99', 1_000_000)).toBe('1 ms');
    expect(formatMetric('occupancy_ratio', 0.9)).toBe('90 %');
    expect(formatMetric('errors_rate', 0.1)).toBe('0.1/s');
    expect(formatMetric('bytes_rate', 12.5e9)).toBe('100 Gbit/s');
    expect(formatMetric('agent_offline', 30)).toBe('30 s');
    expect(formatMetric('link_down', 1)).toBe('down');
    expect(formatMetric('latency_p50', null)).toBe(MISSING);
  });
});

import { describe, expect, it } from 'vitest';
import { formatPairs, fromUnit, parsePairs, toUnit, unitOf } from './rule-units';

describe('rule units', () => {
  it('shows thresholds in operator units and converts back to the raw value exactly', () => {
    expect(toUnit('latency_p99', 1_000_000)).toBe(1000);
    expect(unitOf('latency_p99').label).toBe('µs');
    expect(toUnit('occupancy_ratio', 0.8)).toBe(80);
    expect(fromUnit('occupancy_ratio', 80)).toBe(0.8);
    expect(fromUnit('occupancy_ratio', 70)).toBe(0.7);
    expect(toUnit('bytes_rate', 1.25e9)).toBe(10);
    expect(fromUnit('bytes_rate', 10)).toBe(1.25e9);
    expect(toUnit('agent_offline', 30)).toBe(30);
    expect(unitOf('ring_stuck').label).toBe('s');
    for (const m of ['latency_p50', 'occupancy_ratio', 'bytes_rate', 'errors_rate']) {
      for (const raw of [0, 0.1, 0.95, 3, 1234.5, 5e6]) expect(fromUnit(m, toUnit(m, raw))).toBe(raw);
    }
  });

  it('parses label=value pairs and names the malformed one', () => {
    expect(parsePairs('node=a1, direction = rx\nprovider=tcp;ofi_rxm')).toEqual({
      node: 'a1',
      direction: 'rx',
      provider: 'tcp;ofi_rxm',
    });
    expect(parsePairs('  ')).toEqual({});
    expect(() => parsePairs('node')).toThrow(/“node” is not label=value/);
    expect(formatPairs({ node: 'a1', link: 'l0' })).toBe('node=a1, link=l0');
  });
});

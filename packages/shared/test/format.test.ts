import { describe, expect, it } from 'vitest';
import {
  alertDescription,
  alertLinks,
  alertSummary,
  formatMetric,
  groupAlertsByHost,
  MISSING,
} from '../src/format.js';

const linkLabels = (
  node: string,
  peer: string,
  direction: 'tx' | 'rx',
  link = `${direction === 'tx' ? node : peer}-${direction === 'tx' ? peer : node}`,
) => ({
  alertname: 'RingFullNoProgress',
  node,
  link,
  link_key: `${node}~${link}`,
  peer,
  direction,
  transport: 'fabric',
  provider: 'tcp;ofi_rxm',
  provider_class: 'tcp',
});

describe('formatMetric: every alert value and threshold in its unit', () => {
  it('latency (ns) in ns/µs/ms/s, ratios in %, throughput in bit/s, rates per second, ages in s', () => {
    expect(formatMetric('latency_p99', 136_839_168)).toBe('137 ms');
    expect(formatMetric('latency_p99', 1_000_000)).toBe('1 ms');
    expect(formatMetric('latency_p50', 42_500)).toBe('42.5 µs');
    expect(formatMetric('latency_p999', 850)).toBe('850 ns');
    expect(formatMetric('latency_p99', 2_500_000_000)).toBe('2.5 s');
    expect(formatMetric('occupancy_ratio', 0.9)).toBe('90 %');
    expect(formatMetric('bytes_rate', 12.5e9)).toBe('100 Gbit/s');
    expect(formatMetric('records_rate', 4_500)).toBe('4.5 k/s');
    expect(formatMetric('errors_rate', 0.1)).toBe('0.1/s');
    expect(formatMetric('agent_offline', 30)).toBe('30 s');
    expect(formatMetric('ring_stuck', 75)).toBe('1 min');
    expect(formatMetric('link_down', 1)).toBe('down');
    expect(formatMetric('link_stalled', 0)).toBe('moving');
    expect(formatMetric('latency_p99', null)).toBe(MISSING);
  });
});

describe('alert texts', () => {
  const rule = {
    name: 'LinkLatencyP99High',
    metric: 'latency_p99',
    comparison: '>' as const,
    threshold: 1_000_000,
    clear: 500_000,
    windowS: 30,
  };
  const labels = linkLabels('node-1', 'node-2', 'rx', 'node-2-node-1');

  it('the summary reads in units, names the link both ways and the window', () => {
    expect(alertSummary(rule, labels, 136_839_168)).toBe(
      'LinkLatencyP99High: latency_p99 over 30 s > 1 ms (clears below 500 µs) on link node-2-node-1 node-2 → node-1 (rx end on node-1, tcp;ofi_rxm, class tcp): value 137 ms',
    );
    expect(alertSummary(rule, labels, null)).toMatch(/: value no data$/);
    expect(
      alertSummary(
        { ...rule, name: 'AgentOffline', metric: 'agent_offline', threshold: 10, clear: 5, windowS: 0 },
        { node: 'node-2' },
        42,
      ),
    ).toBe('AgentOffline: agent_offline > 10 s (clears below 5 s) on node node-2: value 42 s');
  });

  it('links to the link page /links/<node>~<link> and the node pages, absolute under a base URL', () => {
    expect(alertLinks(labels)).toEqual({
      link: '/links/node-1~node-2-node-1',
      node: '/nodes/node-1',
      peer: '/nodes/node-2',
    });
    expect(alertLinks(labels, 'https://dash.example:3000/')).toEqual({
      link: 'https://dash.example:3000/links/node-1~node-2-node-1',
      node: 'https://dash.example:3000/nodes/node-1',
      peer: 'https://dash.example:3000/nodes/node-2',
    });
    expect(alertLinks({ node: 'a/b' })).toEqual({ node: '/nodes/a%2Fb' });
  });

  it('the description says what, where, in units, and which pages to open', () => {
    const d = alertDescription(
      {
        ruleName: 'LinkLatencyP99High',
        state: 'firing',
        severity: 'warning',
        labels,
        summary: '',
        value: 136_839_168,
        threshold: 1_000_000,
        metric: 'latency_p99',
      },
      'http://h:3000',
    );
    expect(d).toBe(
      'WARNING LinkLatencyP99High (firing). Queue latency p99 is 137 ms on link node-2-node-1 node-2 → node-1 (rx end on node-1, tcp;ofi_rxm, class tcp) (threshold 1 ms). Open the link page: http://h:3000/links/node-1~node-2-node-1; node page: http://h:3000/nodes/node-1; peer page: http://h:3000/nodes/node-2.',
    );
    const stuck = alertDescription({
      ruleName: 'RingFullNoProgress',
      state: 'firing',
      severity: 'critical',
      labels: linkLabels('node-1', 'node-2', 'tx'),
      summary: '',
      value: 14,
      threshold: 10,
      metric: 'ring_stuck',
    });
    expect(stuck).toMatch(
      /^CRITICAL RingFullNoProgress \(firing\)\. The ring of link node-1-node-2 node-1 → node-2 \(tx end on node-1/,
    );
    expect(stuck).toMatch(/no record delivered for 14 s \(alert at 10 s\)/);
    expect(stuck).toMatch(
      /Open the link page: \/links\/node-1~node-1-node-2; node page: \/nodes\/node-1; peer page: \/nodes\/node-2\.$/,
    );
  });
});

describe('groupAlertsByHost', () => {
  it('six link alerts whose node or peer is node-2 (and its AgentOffline) form one group node-2', () => {
    const alerts = [
      ...['node-1', 'node-3', 'node-4'].map((n) => ({
        id: `tx-${n}`,
        labels: linkLabels(n, 'node-2', 'tx'),
      })),
      ...['node-1', 'node-3', 'node-4'].map((n) => ({
        id: `rx-${n}`,
        labels: linkLabels('node-2', n, 'rx'),
      })),
      { id: 'off', labels: { alertname: 'AgentOffline', node: 'node-2' } },
      { id: 'lat', labels: linkLabels('node-3', 'node-4', 'rx') },
    ];
    const g = groupAlertsByHost(alerts);
    expect(g.map((x) => [x.host, x.alerts.map((a) => a.id)])).toEqual([
      ['node-2', ['tx-node-1', 'tx-node-3', 'tx-node-4', 'rx-node-1', 'rx-node-3', 'rx-node-4', 'off']],
      [null, ['lat']],
    ]);
  });

  it('alerts that share no host stay ungrouped, in their order', () => {
    const alerts = [
      { id: 'a', labels: linkLabels('n1', 'n2', 'tx') },
      { id: 'b', labels: linkLabels('n3', 'n4', 'tx') },
      { id: 'c', labels: { node: 'n5' } },
    ];
    expect(groupAlertsByHost(alerts)).toEqual([{ host: null, alerts }]);
    expect(groupAlertsByHost([])).toEqual([]);
  });

  it('ties go to the alert’s own node', () => {
    const alerts = [
      { id: 'a', labels: linkLabels('n1', 'n2', 'tx') },
      { id: 'b', labels: linkLabels('n1', 'n2', 'tx', 'other') },
    ];
    expect(groupAlertsByHost(alerts).map((x) => x.host)).toEqual(['n1']);
  });
});

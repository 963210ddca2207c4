/**
 * Prometheus metric names exported by every agent (`/metrics`). Base units, `_total` for counters,
 * histograms (not summaries); labels are bounded: link, peer, transport, provider (never per pair of
 * records or per sequence), so a cluster of thousands of hosts stays scrapeable.
 */
export const METRIC_PREFIX = 'rdmaq_';

export const LinkMetric = {
  records: 'rdmaq_link_records_total',
  bytes: 'rdmaq_link_bytes_total',
  completions: 'rdmaq_link_completions_total',
  creditUpdates: 'rdmaq_link_credit_updates_total',
  backpressure: 'rdmaq_link_backpressure_events_total',
  wraps: 'rdmaq_link_wraps_total',
  resends: 'rdmaq_link_resends_total',
  reconnects: 'rdmaq_link_reconnects_total',
  errors: 'rdmaq_link_errors_total',
  up: 'rdmaq_link_up',
  stalled: 'rdmaq_link_stalled',
  occupancy: 'rdmaq_link_ring_occupancy_bytes',
  peakOccupancy: 'rdmaq_link_ring_peak_occupancy_bytes',
  capacity: 'rdmaq_link_ring_capacity_bytes',
  queueLatency: 'rdmaq_link_queue_latency_seconds',
  probeRtt: 'rdmaq_link_probe_rtt_seconds',
} as const;

export const LINK_LABELS = ['link', 'peer', 'transport', 'provider'] as const;
export type LinkLabel = (typeof LINK_LABELS)[number];

export * from './backoff.js';
export * from './format.js';
export * from './histogram.js';
export * from './live.js';
export * from './metrics.js';
export * from './overview.js';
export * from './protocol.js';
export * from './providers.js';

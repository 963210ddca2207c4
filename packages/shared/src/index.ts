export * from './backoff.js';
export * from './format.js';
export * from './histogram.js';
export * from './live.js';
export * from './metrics.js';
export * from './protocol.js';
export * from './providers.js';

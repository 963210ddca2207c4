export * from './histogram.js';
export * from './metrics.js';
export * from './protocol.js';

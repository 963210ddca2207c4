/**
 * Hand-written declarations of the native addon (native/addon.cc). Keep in step with the C++ side:
 * one interface per C++ class, same names.
 */
import { createRequire } from 'node:module';

export interface NativeAddon {
  /** libfabric providers fi_getinfo offers on this host (deduplicated, sorted). */
  providers(): string[];
  /** libfabric runtime version, e.g. "1.17". */
  fabricVersion(): string;
}

const require = createRequire(import.meta.url);

/** The loaded addon; built by `pnpm build:native` (node-gyp) into build/Release. */
export const native: NativeAddon = require('../build/Release/rdmaq.node');

import { native } from './native.js';

/** libfabric providers available on this host (e.g. `["net", "shm", "tcp", ...]`). */
export function providers(): string[] {
  return native.providers();
}

/** libfabric version the addon runs against. */
export function fabricVersion(): string {
  return native.fabricVersion();
}

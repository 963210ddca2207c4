import { describe, expect, it } from 'vitest';
import { fabricVersion, providers } from '../src/index.js';

describe('libfabric discovery', () => {
  it('lists the providers fi_getinfo offers here, shm and tcp among them', () => {
    const list = providers();
    expect(list).toEqual([...list].sort());
    expect(list).toContain('shm');
    expect(list).toContain('tcp');
  });

  it('reports the libfabric runtime version', () => {
    expect(fabricVersion()).toMatch(/^1\.\d+$/);
  });
});

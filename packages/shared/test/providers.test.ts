import { describe, expect, it } from 'vitest';
import { providerClass } from '../src/providers.js';

describe('providerClass', () => {
  it('sorts libfabric providers into rdma / tcp / shm / other by their core provider', () => {
    for (const p of ['verbs', 'verbs;ofi_rxm', 'efa', 'psm2', 'psm3', 'opx', 'cxi', 'ucx', 'usnic'])
      expect(providerClass(p, 'fabric')).toBe('rdma');
    for (const p of ['tcp', 'tcp;ofi_rxm', 'net', 'sockets', 'udp;ofi_rxd', 'TCP;OFI_RXM'])
      expect(providerClass(p, 'fabric')).toBe('tcp');
    expect(providerClass('shm', 'fabric')).toBe('shm');
    expect(providerClass('sm2')).toBe('shm');
    expect(providerClass('', 'fabric')).toBe('other');
    expect(providerClass('lnx', 'fabric')).toBe('other');
  });
  it('the shm transport is shm whatever the provider string says', () => {
    expect(providerClass('', 'shm')).toBe('shm');
    expect(providerClass('tcp;ofi_rxm', 'shm')).toBe('shm');
  });
});

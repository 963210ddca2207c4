/**
 * Environment the native addon must see before its first fi_getinfo: imported (for its side effect) by both
 * modules that load the addon, src/native.ts and src/fabric/native.ts, ahead of the load.
 *
 * libfabric reads its FI_* variables once, at the process's first fi_getinfo. rdmaq moves data with RMA writes only, so ofi_rxm's receive bounce buffers (by default 4096 of
 * 16 KiB per endpoint) are dead weight: measured here, one tcp;ofi_rxm link (both ends in one process) cost
 * 160 MB of RSS with the defaults and 24 MB with these. An operator's own setting wins.
 */
process.env.FI_OFI_RXM_MSG_RX_SIZE ??= '128';
process.env.FI_OFI_RXM_BUFFER_SIZE ??= '4096';
process.env.FI_OFI_RXM_EAGER_LIMIT ??= '4096';
// fi_getinfo without a provider filter loads psm, whose libinfinipath installs signal handlers that write
// node.*.btr files into the working directory when the process dies (FABRIC.md): not for a daemon.
process.env.IPATH_NO_BACKTRACE ??= '1';

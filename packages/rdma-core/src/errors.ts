/** Errors of rdma-core: always an Error with a stable `code` (ERR_RDMAQ_*), plus `errno` text when the OS gave one. */
export class RdmaqError extends Error {
  readonly code: string;
  readonly errno?: number;
  constructor(code: string, message: string, options?: { errno?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RdmaqError';
    this.code = code;
    if (options?.errno !== undefined) this.errno = options.errno;
  }
}

/** The `code` of any thrown value if it has a string one (native errors carry one too). */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err) {
    const c = (err as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}

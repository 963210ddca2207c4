/** Errors with a stable `code` (ERR_RDMAQ_*) and, for the REST API, an HTTP status. */
export class HubError extends Error {
  readonly code: string;
  readonly status: number;
  /** Seconds for a Retry-After header (429, 503). */
  readonly retryAfterS: number | undefined;
  constructor(
    code: string,
    message: string,
    status = 500,
    options?: { cause?: unknown; retryAfterS?: number },
  ) {
    super(message, options);
    this.name = 'HubError';
    this.code = code;
    this.status = status;
    this.retryAfterS = options?.retryAfterS;
  }
}

export const badRequest = (message: string) => new HubError('ERR_RDMAQ_BAD_REQUEST', message, 400);
export const notFound = (message: string) => new HubError('ERR_RDMAQ_NOT_FOUND', message, 404);
export const forbidden = (message: string) => new HubError('ERR_RDMAQ_FORBIDDEN', message, 403);
export const conflict = (message: string) => new HubError('ERR_RDMAQ_CONFLICT', message, 409);
export const unauthenticated = (message = 'log in first: POST /api/auth/login') =>
  new HubError('ERR_RDMAQ_UNAUTHENTICATED', message, 401);

import type { Role } from '@rdmaq/shared';

/** `GET /api/agent-tokens` rows (API.md). */
export interface TokenRow {
  id: string;
  name: string;
  nodes: string[];
  createdAt: number;
  createdBy: string;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** `POST /api/agent-tokens` answer: the secret, shown once. */
export interface CreatedToken {
  id: string;
  name: string;
  token: string;
  nodes: string[];
  warning?: string;
}

export interface UserRow {
  name: string;
  role: Role;
  createdAt: number;
}

/** `GET /api/audit` entries (src/server/audit.ts). */
export interface AuditEntry {
  id: number;
  ts: number;
  user: string;
  role: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  address: string | null;
}

const VERBS: Record<string, string> = {
  'token.create': 'created agent token',
  'token.update': 're-bound agent token',
  'token.revoke': 'revoked agent token',
  'user.create': 'created user',
  'user.update': 'changed user',
  'user.delete': 'deleted user',
  'rule.create': 'created rule',
  'rule.update': 'changed rule',
  'rule.delete': 'deleted rule',
  'silence.create': 'created silence',
  'silence.expire': 'expired silence',
  'alert.ack': 'acknowledged alert',
  'alert.unack': 'took back the acknowledgement of alert',
  'password.change': 'changed their password',
  'setup.admin': 'created the first admin',
};

/** "revoked agent token rack-7 (3f2a…)" — a short sentence for an audit entry. */
export function describeAction(e: AuditEntry): string {
  const verb = VERBS[e.action] ?? e.action;
  if (e.action === 'password.change') return verb;
  const name = typeof e.detail.name === 'string' ? e.detail.name : undefined;
  return `${verb} ${name ? `${name} (${e.target})` : e.target}`.trim();
}

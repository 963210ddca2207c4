/**
 * Operator accounts (scrypt hashes), sessions (random tokens, stored as SHA-256), agent tokens (stored as
 * SHA-256, cached in memory so thousands of reconnecting agents cost no database read) and the first-admin
 * setup (from the environment, or a one-time token printed at first start).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { Role } from '@rdmaq/shared';
import { badRequest, conflict, HubError, notFound } from './errors.js';
import type { Logger } from './log.js';
import { MAX_PASSWORD_LENGTH, passwordProblem } from './password-policy.js';
import type { Store } from './store/store.js';
import { FailureThrottle, Gate } from './throttle.js';

const SCRYPT = { N: 16_384, r: 8, p: 1, keylen: 32 };
const ROLE_RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[needed];
}

function scryptAsync(password: string, salt: Buffer, N: number, r: number, p: number, len: number) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, len, { N, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** Runs a hash through the gate; 503 with Retry-After when too many wait already. */
async function gated<T>(gate: Gate, fn: () => Promise<T>): Promise<T> {
  const r = await gate.run(fn);
  if (!r.ok) {
    throw new HubError('ERR_RDMAQ_BUSY', 'the hub is busy checking passwords; retry in a second', 503, {
      retryAfterS: 1,
    });
  }
  return r.value;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64url');
  const got = await scryptAsync(
    password,
    Buffer.from(salt, 'base64url'),
    Number(n),
    Number(r),
    Number(p),
    want.length,
  );
  return timingSafeEqual(want, got);
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const token = (prefix: string) => `${prefix}${randomBytes(32).toString('base64url')}`;

/** Most operator accounts. */
export const MAX_USERS = 1000;
/** Most agent tokens (revoked ones included: they are kept for the record). */
export const MAX_AGENT_TOKENS = 10_000;

export interface SessionUser {
  name: string;
  role: Role;
}

/** Checks a new password against the policy (password-policy.ts); 400 naming the rule it breaks. */
export function validatePassword(password: unknown, user: string): string {
  const problem = passwordProblem(password, user);
  if (problem) throw badRequest(problem);
  return password as string;
}

export interface LoginLimits {
  /** Failed logins (or current-password checks) per account before it is locked out. */
  maxFailuresPerAccount: number;
  /** … per client address. */
  maxFailuresPerAddress: number;
  /** The first lockout; each further failure doubles it, up to lockoutMaxS. */
  lockoutBaseS: number;
  lockoutMaxS: number;
  /** Password hashes computed at once (scrypt runs on libuv's pool; more would starve the hub's loop). */
  maxConcurrentHashes: number;
  /** Logins waiting for a hash slot; beyond, 503 with Retry-After. */
  maxQueuedHashes: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  maxFailuresPerAccount: 5,
  maxFailuresPerAddress: 20,
  lockoutBaseS: 1,
  lockoutMaxS: 900,
  maxConcurrentHashes: 2,
  maxQueuedHashes: 64,
};

/** Most sessions one user keeps; the oldest go when a login would make more. */
export const MAX_SESSIONS_PER_USER = 100;

const NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;

const tooMany = (waitMs: number) => {
  const s = Math.max(1, Math.ceil(waitMs / 1000));
  return new HubError(
    'ERR_RDMAQ_TOO_MANY_ATTEMPTS',
    `too many failed password attempts for this account or from this address; try again in ${s} s`,
    429,
    { retryAfterS: s },
  );
};

/** A node id (protocol.ts's id characters) where `*` stands for any run of characters. */
const NODE_PATTERN_RE = /^[A-Za-z0-9._:@/>*-]{1,128}$/;
export const MAX_TOKEN_NODES = 64;
/** What tokens created before node binding (and tokens created without `nodes`) may speak for. */
export const ANY_NODE = '*';

/** Validates the `nodes` of an agent token: 1–64 node ids or patterns (`rack12-*`). */
export function validateNodePatterns(v: unknown): string[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_TOKEN_NODES) {
    throw badRequest(
      `nodes: give 1 to ${MAX_TOKEN_NODES} node ids or patterns such as "rack12-*" (["*"]: any node)`,
    );
  }
  for (const p of v) {
    if (typeof p !== 'string' || !NODE_PATTERN_RE.test(p)) {
      throw badRequest(
        `nodes: ${JSON.stringify(p)} is not a node id or pattern (1-128 of letters, digits, . _ : @ / - > and * for any run of characters)`,
      );
    }
  }
  return [...new Set(v as string[])];
}

/** Whether a node id matches a pattern (`*`: any run of characters). O(len × len), no backtracking blow-up. */
export function nodeMatches(pattern: string, id: string): boolean {
  if (!pattern.includes('*')) return pattern === id;
  let p = 0;
  let s = 0;
  let star = -1;
  let mark = 0;
  while (s < id.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === id[s]) {
      p++;
      s++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = s;
    } else if (star >= 0) {
      p = star + 1;
      s = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

export interface AgentToken {
  id: string;
  name: string;
  revoked: boolean;
  /** Node ids or patterns this token may say hello as. */
  nodes: string[];
}

/** Whether an agent token may speak for `nodeId`. */
export function tokenAllows(t: AgentToken, nodeId: string): boolean {
  return t.nodes.some((p) => nodeMatches(p, nodeId));
}

export class Auth {
  private readonly agentTokens = new Map<string, AgentToken>();
  private readonly lastUsed = new Map<string, number>();
  /** Dummy hash so an unknown user costs the same scrypt time as a wrong password. */
  private dummyHash: string | undefined;
  readonly byAccount: FailureThrottle;
  readonly byAddress: FailureThrottle;
  /** Every password hash (login, setup, user creation, password change) passes through it. */
  readonly hashGate: Gate;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly sessionTtlMs: number,
    private readonly now: () => number,
    limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
  ) {
    const lockout = {
      baseMs: limits.lockoutBaseS * 1000,
      maxMs: limits.lockoutMaxS * 1000,
      forgetMs: Math.max(3600_000, 2 * limits.lockoutMaxS * 1000),
      maxEntries: 10_000,
    };
    this.byAccount = new FailureThrottle({ ...lockout, threshold: limits.maxFailuresPerAccount }, now);
    this.byAddress = new FailureThrottle({ ...lockout, threshold: limits.maxFailuresPerAddress }, now);
    this.hashGate = new Gate(limits.maxConcurrentHashes, limits.maxQueuedHashes);
    for (const row of store.db
      .prepare('SELECT id, name, hash, revoked_at, nodes FROM agent_tokens')
      .all() as Array<{
      id: string;
      name: string;
      hash: string;
      revoked_at: number | null;
      nodes: string;
    }>) {
      let nodes: string[];
      try {
        nodes = validateNodePatterns(JSON.parse(row.nodes));
      } catch {
        // Unreadable binding: the token speaks for nothing (fail closed) until an admin sets its nodes.
        nodes = [];
        log.error({ token: row.id }, 'agent token has an unreadable node binding: it is refused');
      }
      const revoked = row.revoked_at !== null;
      this.agentTokens.set(row.hash, { id: row.id, name: row.name, revoked, nodes });
      if (!revoked && nodes.includes(ANY_NODE)) {
        log.warn(
          { token: row.id, name: row.name },
          'agent token may speak for ANY node id: bind it to its nodes with PATCH /api/agent-tokens/:id {"nodes": [...]}',
        );
      }
    }
  }

  userCount(): number {
    return (this.store.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }

  /**
   * First start: create the admin from config/env, or print a one-time setup token (its hash is stored).
   * Returns the token when one was created so the caller can print it.
   */
  async bootstrap(admin?: { user: string; password: string }): Promise<string | undefined> {
    if (this.userCount() > 0) return undefined;
    if (admin) {
      await this.createUser(admin.user, admin.password, 'admin');
      this.log.info({ user: admin.user }, 'first admin created from RDMAQ_ADMIN_USER');
      return undefined;
    }
    const setup = token('setup_');
    this.store.setSetting('setup_token_hash', sha256(setup));
    return setup;
  }

  async setupFirstAdmin(setupToken: string, name: string, password: string): Promise<SessionUser> {
    if (this.userCount() > 0) {
      throw new HubError('ERR_RDMAQ_SETUP_DONE', 'the first admin exists already; log in instead', 403);
    }
    const want = this.store.getSetting('setup_token_hash');
    const got = sha256(String(setupToken));
    if (!want || !timingSafeEqual(Buffer.from(want), Buffer.from(got))) {
      throw new HubError(
        'ERR_RDMAQ_BAD_SETUP_TOKEN',
        'setup token is wrong; use the one the server printed at its first start',
        403,
      );
    }
    await this.createUser(name, password, 'admin');
    this.store.destructive("DELETE FROM settings WHERE key = 'setup_token_hash'").run();
    return { name, role: 'admin' };
  }

  async createUser(name: string, password: string, role: Role): Promise<void> {
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw badRequest('name: 1-64 letters, digits and . _ @ -');
    }
    validatePassword(password, name);
    if (this.userCount() >= MAX_USERS) {
      throw new HubError('ERR_RDMAQ_LIMIT', `at most ${MAX_USERS} users; delete unused ones`, 409);
    }
    const hash = await gated(this.hashGate, () => hashPassword(password));
    try {
      this.store.db
        .prepare('INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?)')
        .run(name, role, hash, this.now());
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
        throw conflict(`user ${name} exists`);
      throw err;
    }
  }

  listUsers(): Array<{ name: string; role: Role; createdAt: number }> {
    return this.store.db
      .prepare('SELECT name, role, created_at AS createdAt FROM users ORDER BY name')
      .all() as Array<{ name: string; role: Role; createdAt: number }>;
  }

  private getUser(name: string) {
    return this.store.db.prepare('SELECT name, role, hash FROM users WHERE name = ?').get(name) as
      | { name: string; role: Role; hash: string }
      | undefined;
  }

  async updateUser(name: string, patch: { role?: Role; password?: string }): Promise<void> {
    const u = this.getUser(name);
    if (!u) throw notFound(`no user ${name}`);
    if (patch.role && patch.role !== 'admin' && u.role === 'admin') this.assertNotLastAdmin(name);
    if (patch.role) this.store.destructive('UPDATE users SET role = ? WHERE name = ?').run(patch.role, name);
    if (patch.password !== undefined) {
      const pw = validatePassword(patch.password, name);
      const hash = await gated(this.hashGate, () => hashPassword(pw));
      this.store.destructive('UPDATE users SET hash = ? WHERE name = ?').run(hash, name);
      this.store.destructive('DELETE FROM sessions WHERE user = ?').run(name);
    }
  }

  deleteUser(name: string): void {
    const u = this.getUser(name);
    if (!u) throw notFound(`no user ${name}`);
    if (u.role === 'admin') this.assertNotLastAdmin(name);
    this.store.destructive('DELETE FROM users WHERE name = ?').run(name);
  }

  private assertNotLastAdmin(name: string): void {
    const n = (
      this.store.db
        .prepare("SELECT count(*) AS n FROM users WHERE role = 'admin' AND name <> ?")
        .get(name) as {
        n: number;
      }
    ).n;
    if (n === 0) throw conflict(`${name} is the last admin; make another admin first`);
  }

  /**
   * Throttled credential check (login, current-password check): 429 with Retry-After while the account or
   * the address is locked out — then no hash is computed at all; failures count for both.
   */
  private async checkThrottled(name: string, password: string, address: string): Promise<boolean> {
    const acct = `u:${name}`;
    const addr = `a:${address}`;
    const wait = Math.max(this.byAccount.blockedFor(acct), this.byAddress.blockedFor(addr));
    if (wait > 0) throw tooMany(wait);
    const u = NAME_RE.test(name) ? this.getUser(name) : undefined;
    let ok: boolean;
    if (!u) {
      this.dummyHash ??= await gated(this.hashGate, () => hashPassword('not-a-real-password'));
      const dummy = this.dummyHash;
      await gated(this.hashGate, () => verifyPassword(password, dummy));
      ok = false;
    } else ok = await gated(this.hashGate, () => verifyPassword(password, u.hash));
    if (ok) {
      this.byAccount.succeed(acct);
      return true;
    }
    const lock = Math.max(this.byAccount.fail(acct), this.byAddress.fail(addr));
    if (lock > 0) this.log.warn({ user: name, address, lockoutMs: lock }, 'login failures: locked out');
    return false;
  }

  /** Checks credentials; returns a new session token (for the cookie) or undefined. */
  async login(
    name: string,
    password: string,
    address = 'unknown',
  ): Promise<{ token: string; user: SessionUser } | undefined> {
    if (typeof name !== 'string' || typeof password !== 'string') return undefined;
    // Longer than any valid password: refused without hashing (still a failure for the address).
    if (name.length > 64 || password.length > MAX_PASSWORD_LENGTH) {
      const wait = this.byAddress.blockedFor(`a:${address}`);
      if (wait > 0) throw tooMany(wait);
      this.byAddress.fail(`a:${address}`);
      return undefined;
    }
    if (!(await this.checkThrottled(name, password, address))) return undefined;
    const u = this.getUser(name)!;
    const t = token('');
    const now = this.now();
    // A user keeps at most MAX_SESSIONS_PER_USER sessions: the oldest go.
    this.store
      .destructive(
        'DELETE FROM sessions WHERE user = ? AND id NOT IN (SELECT id FROM sessions WHERE user = ? ORDER BY created_at DESC LIMIT ?)',
      )
      .run(u.name, u.name, MAX_SESSIONS_PER_USER - 1);
    this.store.db
      .prepare('INSERT INTO sessions (id, user, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(sha256(t), u.name, now, now + this.sessionTtlMs);
    return { token: t, user: { name: u.name, role: u.role } };
  }

  async changePassword(name: string, current: string, password: string, address = 'unknown'): Promise<void> {
    // The policy first: a weak new password is refused without spending a guess of the current one.
    validatePassword(password, name);
    if (
      typeof current !== 'string' ||
      current.length > MAX_PASSWORD_LENGTH ||
      !(await this.checkThrottled(name, current, address))
    ) {
      throw new HubError('ERR_RDMAQ_BAD_CREDENTIALS', 'current password is wrong', 403);
    }
    await this.updateUser(name, { password });
  }

  /** The user of a session token, sliding its expiry; undefined when unknown or expired. */
  session(t: string | undefined): SessionUser | undefined {
    if (!t) return undefined;
    const id = sha256(t);
    const row = this.store.db
      .prepare(
        'SELECT u.name AS name, u.role AS role, s.expires_at AS exp FROM sessions s JOIN users u ON u.name = s.user WHERE s.id = ?',
      )
      .get(id) as { name: string; role: Role; exp: number } | undefined;
    const now = this.now();
    if (!row || row.exp < now) return undefined;
    if (row.exp - now < this.sessionTtlMs / 2) {
      this.store
        .destructive('UPDATE sessions SET expires_at = ? WHERE id = ?')
        .run(now + this.sessionTtlMs, id);
    }
    return { name: row.name, role: row.role };
  }

  logout(t: string | undefined): void {
    if (t) this.store.destructive('DELETE FROM sessions WHERE id = ?').run(sha256(t));
  }

  expireSessions(): number {
    return this.store.destructive('DELETE FROM sessions WHERE expires_at < ?').run(this.now()).changes;
  }

  createAgentToken(
    name: string,
    by: string,
    nodesIn?: unknown,
  ): { id: string; name: string; token: string; nodes: string[]; warning?: string } {
    if (typeof name !== 'string' || name.length < 1 || name.length > 128)
      throw badRequest('name: 1-128 characters');
    const nodes = nodesIn === undefined ? [ANY_NODE] : validateNodePatterns(nodesIn);
    if (this.agentTokens.size >= MAX_AGENT_TOKENS) {
      throw new HubError(
        'ERR_RDMAQ_LIMIT',
        `at most ${MAX_AGENT_TOKENS} agent tokens; revoke unused ones`,
        409,
      );
    }
    const t = token('rdmaq_');
    const id = randomBytes(8).toString('hex');
    const hash = sha256(t);
    this.store.db
      .prepare(
        'INSERT INTO agent_tokens (id, name, hash, created_at, created_by, nodes) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(id, name, hash, this.now(), by, JSON.stringify(nodes));
    this.agentTokens.set(hash, { id, name, revoked: false, nodes });
    if (nodes.includes(ANY_NODE)) {
      const warning =
        'this token may speak for ANY node id: give "nodes" (e.g. ["node-3"] or ["rack12-*"]) so a leaked token cannot impersonate other nodes';
      this.log.warn({ token: id, name, by }, warning);
      return { id, name, token: t, nodes, warning };
    }
    return { id, name, token: t, nodes };
  }

  /** Re-binds a token to other nodes; returns the token (its live connections are checked by the caller). */
  setAgentTokenNodes(id: string, nodesIn: unknown): AgentToken {
    const nodes = validateNodePatterns(nodesIn);
    const r = this.store
      .destructive('UPDATE agent_tokens SET nodes = ? WHERE id = ? AND revoked_at IS NULL')
      .run(JSON.stringify(nodes), id);
    if (r.changes === 0) throw notFound(`no active agent token ${id}`);
    for (const v of this.agentTokens.values()) {
      if (v.id === id) {
        v.nodes = nodes;
        return v;
      }
    }
    throw notFound(`no active agent token ${id}`);
  }

  listAgentTokens() {
    for (const [id, at] of this.lastUsed) {
      this.store.destructive('UPDATE agent_tokens SET last_used_at = ? WHERE id = ?').run(at, id);
    }
    this.lastUsed.clear();
    return (
      this.store.db
        .prepare(
          'SELECT id, name, nodes, created_at AS createdAt, created_by AS createdBy, last_used_at AS lastUsedAt, revoked_at AS revokedAt FROM agent_tokens ORDER BY created_at',
        )
        .all() as Array<Record<string, unknown> & { nodes: string }>
    ).map((r) => {
      let nodes: unknown = [];
      try {
        nodes = JSON.parse(r.nodes);
      } catch {
        // shown as bound to nothing, as the hub treats it
      }
      return { ...r, nodes };
    });
  }

  revokeAgentToken(id: string): void {
    const r = this.store.destructive(
      'UPDATE agent_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
    );
    if (r.run(this.now(), id).changes === 0) throw notFound(`no active agent token ${id}`);
    for (const v of this.agentTokens.values()) if (v.id === id) v.revoked = true;
  }

  /** A token's name by id (memory only), revoked ones included; undefined when unknown. */
  agentTokenName(id: string): string | undefined {
    for (const v of this.agentTokens.values()) if (v.id === id) return v.name;
    return undefined;
  }

  /** The token's id when it is a live agent token. Memory only (hot path at reconnect storms). */
  checkAgentToken(t: string | undefined): AgentToken | undefined {
    if (!t || t.length > 256) return undefined;
    const e = this.agentTokens.get(sha256(t));
    if (!e || e.revoked) return undefined;
    this.lastUsed.set(e.id, this.now());
    return e;
  }
}

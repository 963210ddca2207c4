/** REST API under /api (see API.md). A small table-driven router on node:http; JSON in and out. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AlertRule, mergeSparse, type Role, RoleSchema, sparseQuantile } from '@rdmaq/shared';
import type { AlertEngine } from './alerts.js';
import { type AuditInput, type AuditLog, MAX_AUDIT_PAGE } from './audit.js';
import { type Auth, roleAtLeast, type SessionUser } from './auth.js';
import { ChaosRequestSchema, type DemoChaos } from './demo-chaos.js';
import { badRequest, conflict, forbidden, HubError, notFound, unauthenticated } from './errors.js';
import type { Ingest } from './ingest.js';
import type { Logger } from './log.js';
import type { Fleet } from './model/fleet.js';
import type { Tsdb } from './tsdb/index.js';
import { SLOT_MS } from './window.js';

export const SESSION_COOKIE = 'rdmaq_session';
const MAX_BODY = 64 * 1024;

export interface ApiContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
  query: URLSearchParams;
  user: SessionUser | undefined;
  body: () => Promise<Record<string, unknown>>;
}

type Result = unknown | { status: number; body?: unknown; headers?: Record<string, string | string[]> };
interface Route {
  method: string;
  re: RegExp;
  /** Minimum role; null = no login needed. */
  role: Role | null;
  handler: (ctx: ApiContext) => Result | Promise<Result>;
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) {
      try {
        out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        // A malformed cookie is ignored, not fatal.
      }
    }
  }
  return out;
}

class Reply {
  constructor(
    readonly status: number,
    readonly body?: unknown,
    readonly headers: Record<string, string | string[]> = {},
  ) {}
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let size = 0;
    let over = false;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (over) {
        // Discard the rest so the 413 can be read; a client that keeps sending is cut off.
        if (size > 16 * MAX_BODY) req.destroy();
        return;
      }
      if (size > MAX_BODY) {
        over = true;
        chunks.length = 0;
        reject(new HubError('ERR_RDMAQ_TOO_LARGE', `request body over ${MAX_BODY} bytes`, 413));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (over) return;
      if (!size) return resolve({});
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (typeof v !== 'object' || v === null || Array.isArray(v))
          throw new Error('expected a JSON object');
        resolve(v as Record<string, unknown>);
      } catch (err) {
        reject(badRequest(`body is not a JSON object: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

export interface ApiDeps {
  fleet: Fleet;
  alerts: AlertEngine;
  auth: Auth;
  ingest: Ingest;
  audit: AuditLog;
  log: Logger;
  now: () => number;
  secureCookies: boolean;
  sessionTtlS: number;
  originAllowed: (req: IncomingMessage) => boolean;
  /** Demo mode only (RDMAQ_DEMO_CHAOS_SOCKET): the chaos buttons' way to the demo process. */
  chaos?: DemoChaos | undefined;
  /** A configured TSDB: history beyond the hub's memory comes from it; its remote-write figures in /api/ingest. */
  tsdb?: Tsdb | undefined;
  /** history.memoryS: ranges starting before now - memoryS go to the TSDB when there is one. */
  memoryS?: number;
}

/** The client's address as the hub sees it (no proxy header is trusted). */
const addressOf = (req: IncomingMessage): string => req.socket.remoteAddress ?? 'unknown';

const str = (v: unknown, name: string): string => {
  if (typeof v !== 'string') throw badRequest(`${name}: expected a string`);
  return v;
};
const intParam = (q: URLSearchParams, name: string, def: number, min: number, max: number): number => {
  const raw = q.get(name);
  if (raw === null || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max)
    throw badRequest(`${name}: expected a number in [${min}, ${max}]`);
  return Math.floor(n);
};

/** The fields of a rule an update changed, as `{field: [before, after]}` (bounded: a rule is small). */
function ruleChanges(before: AlertRule | undefined, after: AlertRule): Record<string, unknown> {
  if (!before) return {};
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(after) as Array<keyof AlertRule>) {
    const a = JSON.stringify(before[k]);
    const b = JSON.stringify(after[k]);
    if (a !== b) out[k] = [before[k], after[k]];
  }
  return out;
}

export function createApi(d: ApiDeps) {
  const cookie = (token: string, maxAgeS: number) =>
    `${SESSION_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${d.secureCookies ? '; Secure' : ''}`;
  const loggedIn = (user: SessionUser, token: string) =>
    new Reply(200, { name: user.name, role: user.role }, { 'set-cookie': cookie(token, d.sessionTtlS) });
  const me = (ctx: ApiContext) => ctx.user!;
  /** Records a successful change by the signed-in user (see audit.ts); never a secret in `detail`. */
  const note = (
    ctx: ApiContext,
    action: string,
    target: string,
    detail?: AuditInput['detail'],
    who: { name: string; role: Role } | undefined = ctx.user,
  ) =>
    d.audit.record({
      user: who?.name ?? '',
      role: who?.role ?? '',
      action,
      target,
      ...(detail ? { detail } : {}),
      address: addressOf(ctx.req),
    });
  const linkOr404 = (key: string) => {
    const l = d.fleet.links.get(key);
    if (!l) throw notFound(`no link ${key} (keys are <nodeId>~<linkId>)`);
    return l;
  };

  const routes: Route[] = [];
  const add = (method: string, path: string, role: Role | null, handler: Route['handler']) => {
    const re = new RegExp(`^${path.replace(/:[a-zA-Z]+/g, '([^/]+)')}$`);
    routes.push({ method, re, role, handler });
  };

  add('GET', '/api/health', null, () => d.fleet.health());

  // ── auth
  add('POST', '/api/auth/login', null, async (ctx) => {
    const b = await ctx.body();
    const r = await d.auth.login(
      typeof b.name === 'string' ? b.name : '',
      typeof b.password === 'string' ? b.password : '',
      addressOf(ctx.req),
    );
    if (!r) throw new HubError('ERR_RDMAQ_BAD_CREDENTIALS', 'wrong user name or password', 401);
    return loggedIn(r.user, r.token);
  });
  add('POST', '/api/auth/logout', null, (ctx) => {
    d.auth.logout(parseCookies(ctx.req.headers.cookie)[SESSION_COOKIE]);
    return new Reply(204, undefined, { 'set-cookie': cookie('', 0) });
  });
  add('GET', '/api/auth/me', 'viewer', me);
  add('GET', '/api/auth/setup', null, () => ({ needed: d.auth.userCount() === 0 }));
  add('POST', '/api/auth/setup', null, async (ctx) => {
    const b = await ctx.body();
    const name = str(b.name, 'name');
    const password = str(b.password, 'password');
    await d.auth.setupFirstAdmin(str(b.token, 'token'), name, password);
    note(ctx, 'setup.admin', name, undefined, { name, role: 'admin' });
    const r = await d.auth.login(name, password, addressOf(ctx.req));
    return loggedIn(r!.user, r!.token);
  });
  add('POST', '/api/auth/password', 'viewer', async (ctx) => {
    const b = await ctx.body();
    await d.auth.changePassword(
      ctx.user!.name,
      str(b.current, 'current'),
      str(b.password, 'password'),
      addressOf(ctx.req),
    );
    note(ctx, 'password.change', ctx.user!.name);
    return new Reply(204);
  });

  // ── nodes and links
  add('GET', '/api/nodes', 'viewer', () => ({
    nodes: [...d.fleet.nodes.values()].map((n) => d.fleet.nodeSummary(n)),
  }));
  add('GET', '/api/nodes/:id', 'viewer', (ctx) => {
    const n = d.fleet.nodes.get(ctx.params[0]!);
    if (!n) throw notFound(`no node ${ctx.params[0]}`);
    return {
      node: d.fleet.nodeSummary(n),
      links: [...n.links.values()].map((l) => d.fleet.linkSummary(l)),
      ingest: { runId: n.runId, lastSeq: n.lastSeq, duplicatesDropped: n.duplicatesDropped },
      events: n.events,
    };
  });
  add('GET', '/api/ingest', 'viewer', () =>
    d.tsdb ? { ...d.ingest.stats(), tsdb: d.tsdb.writer.stats() } : d.ingest.stats(),
  );
  add('GET', '/api/links', 'viewer', (ctx) => {
    const node = ctx.query.get('node');
    const links = [...d.fleet.links.values()].filter((l) => !node || l.node === node);
    return { links: links.map((l) => d.fleet.linkSummary(l)) };
  });
  add('GET', '/api/links/:key', 'viewer', (ctx) => {
    const l = linkOr404(ctx.params[0]!);
    return { link: d.fleet.linkSummary(l), counters: l.counters };
  });

  // ── history
  add('GET', '/api/history', 'viewer', (ctx) => {
    const now = d.now();
    const to = intParam(ctx.query, 'to', now, 0, Number.MAX_SAFE_INTEGER);
    const from = intParam(ctx.query, 'from', to - 15 * 60_000, 0, Number.MAX_SAFE_INTEGER);
    const points = intParam(ctx.query, 'points', 300, 1, 2000);
    if (from >= to) throw badRequest('from must be before to');
    const link = ctx.query.get('link');
    const node = ctx.query.get('node');
    // With a TSDB, ranges reaching past the hub's 1 s memory come from PromQL; SQLite otherwise.
    if (d.tsdb && from < now - (d.memoryS ?? 900) * 1000) {
      if (link) return d.tsdb.promql.linkHistory(link, from, to, points);
      if (node) return d.tsdb.promql.nodeHistory(node, from, to, points);
    }
    if (link) return d.fleet.linkHistory(link, from, to, points);
    if (node) return d.fleet.nodeHistory(node, from, to, points);
    throw badRequest('give link=<nodeId>~<linkId> or node=<nodeId>');
  });

  // ── queue-latency histograms of the last minutes (windowed alert rules use the same data)
  add('GET', '/api/latency', 'viewer', (ctx) => {
    const kept = d.fleet.latencyWindowS;
    const windowS = intParam(ctx.query, 'windowS', Math.min(120, kept), 1, 86_400);
    if (windowS > kept) {
      throw badRequest(
        `windowS: this hub keeps ${kept} s of latency histograms (history.latencyWindowS); ask for at most that`,
      );
    }
    const link = ctx.query.get('link');
    const node = ctx.query.get('node');
    const withSlots = ['1', 'true'].includes(ctx.query.get('slots') ?? '');
    if (link) linkOr404(link);
    const now = d.now();
    const links = [...d.fleet.links.values()]
      .filter((l) => (!link || l.key === link) && (!node || l.node === node))
      .map((l) => {
        const slots = d.fleet.windowSlots(l, windowS, now);
        const merged = mergeSparse(...slots.map((x) => x.buckets));
        let count = 0;
        for (const [, n] of merged) count += n;
        const q = (p: number) => (count ? sparseQuantile(merged, p) : null);
        return {
          key: l.key,
          node: l.node,
          link: l.id,
          peer: l.peer,
          direction: l.direction,
          transport: l.transport,
          provider: l.provider,
          providerClass: l.providerClass,
          state: l.state,
          connected: d.fleet.nodes.get(l.node)?.connected ?? false,
          count,
          p50Ns: q(0.5),
          p99Ns: q(0.99),
          p999Ns: q(0.999),
          ...(withSlots ? { slots } : {}),
        };
      });
    return { now, windowS, keptS: kept, slotMs: SLOT_MS, links };
  });

  // ── alerts, silences, rules
  add('GET', '/api/alerts', 'viewer', () => ({
    active: d.alerts.activeAlerts(),
    recent: d.alerts.recentResolved(),
  }));
  add('GET', '/api/alerts/history', 'viewer', (ctx) => {
    const before = ctx.query.get('before');
    return {
      events: d.alerts.history(
        intParam(ctx.query, 'limit', 100, 1, 1000),
        before ? intParam(ctx.query, 'before', 0, 0, Number.MAX_SAFE_INTEGER) : undefined,
      ),
    };
  });
  add('POST', '/api/alerts/:id/ack', 'operator', async (ctx) => {
    const b = await ctx.body();
    const a = d.alerts.ack(ctx.params[0]!, ctx.user!.name, b.comment ?? '');
    note(ctx, 'alert.ack', a.id, { rule: a.ruleId, comment: a.ack?.comment ?? '' });
    return a;
  });
  add('DELETE', '/api/alerts/:id/ack', 'operator', (ctx) => {
    const a = d.alerts.unack(ctx.params[0]!, ctx.user!.name);
    note(ctx, 'alert.unack', a.id, { rule: a.ruleId });
    return a;
  });
  add('GET', '/api/silences', 'viewer', () => ({ silences: d.alerts.listSilences() }));
  add('POST', '/api/silences', 'operator', async (ctx) => {
    const s = d.alerts.createSilence(await ctx.body(), ctx.user!.name);
    note(ctx, 'silence.create', s.id, {
      matchers: s.matchers,
      startsAt: s.startsAt,
      endsAt: s.endsAt,
      comment: s.comment,
    });
    return new Reply(201, s);
  });
  add('DELETE', '/api/silences/:id', 'operator', (ctx) => {
    const s = d.alerts.expireSilence(ctx.params[0]!);
    note(ctx, 'silence.expire', s.id);
    return s;
  });
  add('GET', '/api/rules', 'viewer', () => ({ rules: d.alerts.listRules() }));
  add('POST', '/api/rules', 'operator', async (ctx) => {
    const r = d.alerts.createRule(await ctx.body(), ctx.user!.name);
    note(ctx, 'rule.create', r.id, { rule: r });
    return new Reply(201, r);
  });
  add('PUT', '/api/rules/:id', 'operator', async (ctx) => {
    const before = d.alerts.listRules().find((r) => r.id === ctx.params[0]);
    const r = d.alerts.updateRule(ctx.params[0]!, await ctx.body(), ctx.user!.name);
    note(ctx, 'rule.update', r.id, { changed: ruleChanges(before, r) });
    return r;
  });
  add('DELETE', '/api/rules/:id', 'operator', (ctx) => {
    d.alerts.deleteRule(ctx.params[0]!);
    note(ctx, 'rule.delete', ctx.params[0]!);
    return new Reply(204);
  });

  // ── agent tokens and users (admin)
  add('GET', '/api/agent-tokens', 'admin', () => ({ tokens: d.auth.listAgentTokens() }));
  add('POST', '/api/agent-tokens', 'admin', async (ctx) => {
    const b = await ctx.body();
    const t = d.auth.createAgentToken(str(b.name, 'name'), ctx.user!.name, b.nodes);
    note(ctx, 'token.create', t.id, { name: t.name, nodes: t.nodes });
    return new Reply(201, t);
  });
  add('PATCH', '/api/agent-tokens/:id', 'admin', async (ctx) => {
    const b = await ctx.body();
    const t = d.auth.setAgentTokenNodes(ctx.params[0]!, b.nodes);
    const disconnected = d.ingest.tokenRebound(t.id);
    note(ctx, 'token.update', t.id, { name: t.name, nodes: t.nodes, disconnected });
    return { id: t.id, name: t.name, nodes: t.nodes, disconnected };
  });
  add('DELETE', '/api/agent-tokens/:id', 'admin', (ctx) => {
    const name = d.auth.agentTokenName(ctx.params[0]!);
    d.auth.revokeAgentToken(ctx.params[0]!);
    const disconnected = d.ingest.revokeToken(ctx.params[0]!);
    note(ctx, 'token.revoke', ctx.params[0]!, { ...(name !== undefined ? { name } : {}), disconnected });
    return { revoked: ctx.params[0], disconnected };
  });
  add('GET', '/api/users', 'admin', () => ({ users: d.auth.listUsers() }));
  add('POST', '/api/users', 'admin', async (ctx) => {
    const b = await ctx.body();
    const role = RoleSchema.safeParse(b.role);
    if (!role.success) throw badRequest('role: viewer, operator or admin');
    await d.auth.createUser(str(b.name, 'name'), str(b.password, 'password'), role.data);
    note(ctx, 'user.create', String(b.name), { role: role.data });
    return new Reply(201, { name: b.name, role: role.data });
  });
  add('PATCH', '/api/users/:name', 'admin', async (ctx) => {
    const b = await ctx.body();
    const patch: { role?: Role; password?: string } = {};
    if (b.role !== undefined) {
      const role = RoleSchema.safeParse(b.role);
      if (!role.success) throw badRequest('role: viewer, operator or admin');
      patch.role = role.data;
    }
    if (b.password !== undefined) patch.password = str(b.password, 'password');
    // An admin never demotes themselves by a slip (the last admin is guarded in auth.ts as well).
    if (ctx.params[0] === ctx.user!.name && patch.role && patch.role !== ctx.user!.role) {
      throw conflict('you cannot change your own role; another admin can');
    }
    await d.auth.updateUser(ctx.params[0]!, patch);
    note(ctx, 'user.update', ctx.params[0]!, {
      ...(patch.role ? { role: patch.role } : {}),
      ...(patch.password !== undefined ? { password: 'reset' } : {}),
    });
    return { name: ctx.params[0], ...(patch.role ? { role: patch.role } : {}) };
  });
  add('DELETE', '/api/users/:name', 'admin', (ctx) => {
    if (ctx.params[0] === ctx.user!.name) {
      throw conflict('you cannot delete your own account; another admin can');
    }
    d.auth.deleteUser(ctx.params[0]!);
    note(ctx, 'user.delete', ctx.params[0]!);
    return new Reply(204);
  });

  // ── demo chaos (demo mode only): viewers see whether it is on, admins act; every action is audited
  add('GET', '/api/demo/chaos', 'viewer', async () =>
    d.chaos ? { enabled: true, ...(await d.chaos.status()) } : { enabled: false, nodes: [] },
  );
  add('POST', '/api/demo/chaos', 'admin', async (ctx) => {
    if (!d.chaos) throw notFound('chaos controls exist only in the demo (make demo)');
    const parsed = ChaosRequestSchema.safeParse(await ctx.body());
    if (!parsed.success)
      throw badRequest(
        parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
      );
    const r = await d.chaos.act(parsed.data);
    note(
      ctx,
      `chaos.${parsed.data.action}`,
      parsed.data.node,
      parsed.data.rate ? { rate: parsed.data.rate } : undefined,
    );
    return r;
  });

  // ── audit trail (admin): newest first; `before` is the `next` of the previous page
  add('GET', '/api/audit', 'admin', (ctx) => {
    const limit = intParam(ctx.query, 'limit', 100, 1, MAX_AUDIT_PAGE);
    const before = ctx.query.has('before')
      ? intParam(ctx.query, 'before', 0, 0, Number.MAX_SAFE_INTEGER)
      : undefined;
    return d.audit.list(limit, before);
  });

  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string | string[]> = {},
  ) => {
    const payload = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...(payload ? { 'content-type': 'application/json; charset=utf-8' } : {}),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...headers,
    });
    res.end(payload);
  };

  /** Handles a request under /api; never throws. */
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    try {
      let matched: { route: Route; params: string[] } | undefined;
      let pathMatched = false;
      for (const route of routes) {
        const m = route.re.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (route.method === method) {
          let params: string[];
          try {
            params = m.slice(1).map((p) => decodeURIComponent(p));
          } catch {
            throw badRequest(`malformed percent-encoding in ${url.pathname}`);
          }
          matched = { route, params };
          break;
        }
      }
      if (!matched) {
        if (pathMatched)
          throw new HubError('ERR_RDMAQ_METHOD', `${method} is not supported on ${url.pathname}`, 405);
        throw notFound(`no API endpoint ${method} ${url.pathname} (see API.md)`);
      }
      // Cookie-authenticated writes must come from an allowed origin (CSRF defence besides SameSite).
      if (method !== 'GET' && req.headers.origin && !d.originAllowed(req)) {
        throw forbidden(`origin ${req.headers.origin} may not change data here`);
      }
      const user = d.auth.session(parseCookies(req.headers.cookie)[SESSION_COOKIE]);
      if (matched.route.role) {
        if (!user) throw unauthenticated();
        if (!roleAtLeast(user.role, matched.route.role)) {
          throw forbidden(`this needs the ${matched.route.role} role; you are ${user.role}`);
        }
      }
      const out = await matched.route.handler({
        req,
        res,
        params: matched.params,
        query: url.searchParams,
        user,
        body: () => readBody(req),
      });
      if (out instanceof Reply) send(res, out.status, out.body, out.headers);
      else send(res, 200, out);
    } catch (err) {
      const e =
        err instanceof HubError
          ? err
          : new HubError('ERR_RDMAQ_INTERNAL', 'internal error; see the server log', 500, { cause: err });
      if (e.status >= 500) d.log.error({ err, url: url.pathname }, 'API error');
      if (!res.headersSent) {
        send(
          res,
          e.status,
          { error: { code: e.code, message: e.message } },
          {
            ...(e.status === 413 ? { connection: 'close' } : {}),
            ...(e.retryAfterS !== undefined ? { 'retry-after': String(e.retryAfterS) } : {}),
          },
        );
      } else res.end();
    }
  };
}

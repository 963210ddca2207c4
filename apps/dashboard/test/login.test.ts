import { afterEach, describe, expect, it } from 'vitest';
import { passwordProblem } from '../src/server/password-policy.js';
import { ADMIN, api, startHub, type TestHub } from './helpers.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  for (const h of hubs.splice(0)) await h.close();
});

async function loginAs(hub: TestHub, name: string, password: string) {
  const res = await fetch(`${hub.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  const body = (await res.json()) as { error?: { code: string; message: string } };
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
}

describe('login is throttled per account and per address', () => {
  it('5 wrong passwords lock the account: 429 with Retry-After, doubling, and no hash while locked', async () => {
    const hub = await startHub();
    hubs.push(hub);
    expect(
      (await api(hub, 'POST', '/api/users', { name: 'lena', password: 'lena-strong-pass-1', role: 'viewer' }))
        .status,
    ).toBe(201);
    for (let i = 0; i < 5; i++) expect((await loginAs(hub, 'lena', `wrong-guess-${i}`)).status).toBe(401);
    const hashes = hub.app.auth.hashGate.runs;
    // Locked for 1 s: even the right password is not checked.
    const locked = await loginAs(hub, 'lena', 'lena-strong-pass-1');
    expect(locked.status).toBe(429);
    expect(locked.retryAfter).toBe('1');
    expect(locked.body.error).toMatchObject({ code: 'ERR_RDMAQ_TOO_MANY_ATTEMPTS' });
    expect(locked.body.error!.message).toMatch(/try again in 1 s/);
    expect(hub.app.auth.hashGate.runs).toBe(hashes);
    // Each further failure doubles the lockout.
    hub.clock.t += 1000;
    expect((await loginAs(hub, 'lena', 'wrong-again')).status).toBe(401);
    expect((await loginAs(hub, 'lena', 'lena-strong-pass-1')).retryAfter).toBe('2');
    hub.clock.t += 2000;
    expect((await loginAs(hub, 'lena', 'wrong-again')).status).toBe(401);
    expect((await loginAs(hub, 'lena', 'lena-strong-pass-1')).retryAfter).toBe('4');
    hub.clock.t += 4000;
    // Other accounts from the same address are not locked by lena's lockout.
    expect((await loginAs(hub, ADMIN.user, ADMIN.password)).status).toBe(200);
    expect((await loginAs(hub, 'lena', 'lena-strong-pass-1')).status).toBe(200);
    // A success clears the account's failures.
    expect((await loginAs(hub, 'lena', 'one-wrong')).status).toBe(401);
    expect((await loginAs(hub, 'lena', 'lena-strong-pass-1')).status).toBe(200);
  });

  it('20 failures from one address (any accounts) lock the address', async () => {
    const hub = await startHub();
    hubs.push(hub);
    for (let i = 0; i < 20; i++)
      expect((await loginAs(hub, `nobody${i}`, 'some-password-x')).status).toBe(401);
    const r = await loginAs(hub, ADMIN.user, ADMIN.password);
    expect(r.status).toBe(429);
    expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    hub.clock.t += 900_000;
    expect((await loginAs(hub, ADMIN.user, ADMIN.password)).status).toBe(200);
  });

  it('the current-password check of a password change is throttled like a login', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const change = (current: string) =>
      api<{ error: { code: string } }>(hub, 'POST', '/api/auth/password', {
        current,
        password: 'brand-new-secret-42',
      });
    for (let i = 0; i < 5; i++) expect((await change(`guess-${i}-wrong`)).status).toBe(403);
    const r = await change(ADMIN.password);
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('ERR_RDMAQ_TOO_MANY_ATTEMPTS');
  });

  it('password hashes run at most maxConcurrentHashes at once; the loop stays responsive', async () => {
    const hub = await startHub({
      auth: {
        maxConcurrentHashes: 2,
        maxFailuresPerAddress: 1000,
        maxFailuresPerAccount: 5,
        lockoutBaseS: 1,
        lockoutMaxS: 900,
        maxQueuedHashes: 64,
      },
    });
    hubs.push(hub);
    const worst = { ms: 0 };
    let done = false;
    const probe = (async () => {
      while (!done) {
        const t0 = performance.now();
        await fetch(`${hub.url}/api/health`);
        worst.ms = Math.max(worst.ms, performance.now() - t0);
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => loginAs(hub, `user${i}`, 'not-the-password')),
    );
    done = true;
    await probe;
    expect(results.every((r) => r.status === 401)).toBe(true);
    expect(hub.app.auth.hashGate.peak).toBeLessThanOrEqual(2);
    expect(hub.app.auth.hashGate.runs).toBeGreaterThanOrEqual(40);
    console.log(`40 concurrent logins: /api/health worst ${worst.ms.toFixed(0)} ms`);
  });
});

describe('password policy', () => {
  it('refuses short, user-name-based, common, repetitive and keyboard-run passwords, naming the rule', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['elevenchars', 'ann', /at least 12 characters/],
      ['mallory', 'mallory', /at least 12/],
      ['mallory12345', 'mallory', /user name/],
      ['MALLORY-mallory', 'mallory', /user name/],
      ['Password2024!', 'x', /commonly used/],
      ['  welcome123456', 'x', /commonly used/],
      ['iloveyou1234', 'x', /commonly used/],
      ['passwordpassword', 'x', /commonly used/],
      ['correct horse battery staple', 'x', /commonly used/],
      ['aaaaaaaaaaaa', 'x', /repeated|different characters/],
      ['abababababab', 'x', /repeated/],
      ['qwertyuiop12', 'x', /keyboard or alphabet run/],
      ['abcdefghijklmn', 'x', /keyboard or alphabet run/],
      ['234567890123', 'x', /only digits/],
      ['x'.repeat(257), 'x', /at most 256/],
    ];
    for (const [pw, user, msg] of cases) expect(passwordProblem(pw, user), pw).toMatch(msg);
    for (const [pw, user] of [
      ['correct horse battery', 'admin'],
      ['e2e-admin-password', 'admin'],
      ['viewer-password-1', 'vera'],
      ['kettle orbit 7 lantern', 'olga'],
    ]) {
      expect(passwordProblem(pw, user!), pw).toBeUndefined();
    }
  });

  it('applies to user creation, admin resets and own changes, with a 400 naming the rule', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const weak = await api<{ error: { message: string } }>(hub, 'POST', '/api/users', {
      name: 'mallory',
      password: 'Password2024!',
      role: 'viewer',
    });
    expect(weak.status).toBe(400);
    expect(weak.body.error.message).toMatch(/^password: this is a commonly used password/);
    expect(
      (await api(hub, 'POST', '/api/users', { name: 'mallory', password: 'mallory-0001', role: 'viewer' }))
        .status,
    ).toBe(400);
    expect(
      (
        await api(hub, 'POST', '/api/users', {
          name: 'mallory',
          password: 'kettle orbit lantern',
          role: 'viewer',
        })
      ).status,
    ).toBe(201);
    const reset = await api<{ error: { message: string } }>(hub, 'PATCH', '/api/users/mallory', {
      password: 'qwertyuiop12',
    });
    expect(reset.status).toBe(400);
    expect(reset.body.error.message).toMatch(/keyboard/);
    const own = await api<{ error: { message: string } }>(hub, 'POST', '/api/auth/password', {
      current: ADMIN.password,
      password: 'short',
    });
    expect(own.status).toBe(400);
    expect(own.body.error.message).toMatch(/at least 12/);
  });
});

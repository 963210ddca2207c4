import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/server/app.js';
import { ADMIN, tempDir } from './helpers.js';

function request(url: string, init: { method?: string; body?: string } = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = https.request(
        url,
        {
          method: init.method ?? 'GET',
          rejectUnauthorized: false,
          headers: init.body ? { 'content-type': 'application/json' } : {},
        },
        (res) => {
          let body = '';
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end(init.body);
    },
  );
}

describe('optional TLS', () => {
  it('serves HTTPS from cert/key paths and marks the session cookie Secure', async () => {
    const dir = tempDir('rdmaq-tls-');
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const app = await buildApp({
      config: {
        dataDir: path.join(dir, 'data'),
        admin: ADMIN,
        tls: { certPath: cert, keyPath: key },
        logLevel: 'silent',
      },
      next: false,
      timers: false,
      logger: pino({ level: 'silent' }),
    });
    try {
      await app.listen(0, '127.0.0.1');
      expect(app.url()).toMatch(/^https:\/\//);
      const h = await request(`${app.url()}/api/health`);
      expect(h.status).toBe(200);
      const login = await request(`${app.url()}/api/auth/login`, {
        method: 'POST',
        body: JSON.stringify({ name: ADMIN.user, password: ADMIN.password }),
      });
      expect(login.status).toBe(200);
      expect(String(login.headers['set-cookie'])).toMatch(/; Secure/);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TLS misconfiguration', () => {
  it('names the unreadable file and the setting', async () => {
    const dir = tempDir('rdmaq-tls-bad-');
    try {
      await expect(
        buildApp({
          config: {
            dataDir: path.join(dir, 'data'),
            admin: ADMIN,
            tls: { certPath: path.join(dir, 'missing.pem'), keyPath: path.join(dir, 'missing.key') },
          },
          next: false,
          timers: false,
          logger: pino({ level: 'silent' }),
        }),
      ).rejects.toThrow(/cannot read the TLS certificate .*missing\.pem.*RDMAQ_TLS_CERT/);
      // The data folder is not left locked.
      const again = await buildApp({
        config: { dataDir: path.join(dir, 'data'), admin: ADMIN },
        next: false,
        timers: false,
        logger: pino({ level: 'silent' }),
      });
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { ConfigError, type ConfigIssue, loadConfig, parseSize } from '../src/config.js';
import { SECRET, TOKEN, tempDir } from './helpers.js';

const tmp = tempDir('config');
afterAll(() => tmp.cleanup());

let n = 0;
function file(text: string): string {
  const p = join(tmp.dir, `c${++n}.yaml`);
  writeFileSync(p, text);
  return p;
}

const VALID = `
nodeId: node-a
secret: ${SECRET}
hub: { url: "ws://127.0.0.1:9/ws/agent", token: ${TOKEN} }
links:
  - { peer: node-b, address: "10.0.0.2:7470", transport: fabric, provider: "tcp;ofi_rxm" }
`;

function issuesOf(
  text: string,
  env: NodeJS.ProcessEnv = {},
  flags: Record<string, string> = {},
): ConfigIssue[] {
  try {
    loadConfig({ file: file(text), env, flags });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_RDMAQ_CONFIG');
    return (err as ConfigError).issues;
  }
  throw new Error('expected the configuration to be refused');
}

describe('config', () => {
  it('accepts a valid file and fills defaults', () => {
    const c = loadConfig({ file: file(VALID), env: {} });
    expect(c.nodeId).toBe('node-a');
    expect(c.links[0]!.id).toBe('node-a->node-b');
    expect(c.links[0]!.ringBytes).toBe(4 * 1024 * 1024);
    expect(c.links[0]!.idle).toBe('backoff');
    expect(c.sampling.intervalMs).toBe(1000);
    expect(c.hub!.bufferSeconds).toBe(600);
    expect(c.listen.socket).toBe('/run/rdmaq/node-a.sock');
  });

  it('takes optional labels for the hub (numbers as text), bounded', () => {
    expect(loadConfig({ file: file(VALID), env: {} }).labels).toBeUndefined();
    const c = loadConfig({ file: file(`${VALID}labels: { rack: 7, zone: eu-1 }\n`), env: {} });
    expect(c.labels).toEqual({ rack: '7', zone: 'eu-1' });
    const many = Array.from({ length: 17 }, (_, i) => `k${i}: v`).join(', ');
    expect(
      issuesOf(`${VALID}labels: { ${many} }\n`)
        .map((i) => i.message)
        .join(),
    ).toMatch(/at most 16/);
    expect(issuesOf(`${VALID}labels: { rack: ${'x'.repeat(129)} }\n`).length).toBeGreaterThan(0);
    expect(issuesOf(`${VALID}labels: { "bad key": v }\n`).length).toBeGreaterThan(0);
  });

  it('appends /ws/agent to a hub URL without a path', () => {
    const c = loadConfig({
      file: file(`nodeId: a\nsecret: ${SECRET}\nhub: { url: "wss://hub.example:8443", token: ${TOKEN} }\n`),
      env: {},
    });
    expect(c.hub!.url).toBe('wss://hub.example:8443/ws/agent');
  });

  it('takes log.pretty as a YAML boolean as well as auto/true/false', () => {
    expect(loadConfig({ file: file(`${VALID}\nlog:\n  pretty: false\n`), env: {} }).log.pretty).toBe('false');
    expect(loadConfig({ file: file(`${VALID}\nlog:\n  pretty: true\n`), env: {} }).log.pretty).toBe('true');
    expect(() => loadConfig({ file: file(`${VALID}\nlog:\n  pretty: sometimes\n`), env: {} })).toThrow(
      /log.pretty must be auto, true or false/,
    );
  });

  it('parses sizes with binary units', () => {
    expect(parseSize('4MiB')).toBe(4 * 1024 * 1024);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('1.5 KiB')).toBe(1536);
    expect(parseSize('12 parsecs')).toBeNaN();
  });

  // One case per field: the key is named, the value shown, and the message says what is wrong.
  const cases: Array<[string, string, string, RegExp]> = [
    ['nodeId', 'nodeId: "bad id!"', 'nodeId', /letters, digits/],
    ['missing nodeId', 'nodeId: null', 'nodeId', /must be a string/],
    ['hub.url', `hub: { url: "http://x", token: ${TOKEN} }`, 'hub.url', /ws:\/\/ or wss:\/\//],
    ['hub.token', 'hub: { url: "ws://h:1", token: short }', 'hub.token', /at least 8/],
    [
      'hub.bufferSeconds',
      `hub: { url: "ws://h:1", token: ${TOKEN}, bufferSeconds: 0 }`,
      'hub.bufferSeconds',
      /at least 1/,
    ],
    ['secret', 'secret: abc', 'secret', /at least 16/],
    ['http.port', 'http: { port: 70000 }', 'http.port', /at most 65535/],
    ['listen.port', 'listen: { port: -1 }', 'listen.port', /at least 0/],
    ['listen.socket', 'listen: { socket: relative.sock }', 'listen.socket', /absolute/],
    ['listen.ringBytes', 'listen: { ringBytes: 3MiB }', 'listen.ringBytes', /power of two/],
    ['sampling.intervalMs', 'sampling: { intervalMs: 5 }', 'sampling.intervalMs', /at least 100/],
    ['probe.timeoutMs', 'probe: { timeoutMs: 1.5 }', 'probe.timeoutMs', /whole number/],
    [
      'reconnect order',
      'reconnect: { initialMs: 5000, maxMs: 1000 }',
      'reconnect.initialMs',
      /must not exceed/,
    ],
    ['log.level', 'log: { level: loud }', 'log.level', /one of fatal/],
    ['journalDir', 'journalDir: var/lib', 'journalDir', /absolute/],
    ['unknown key', 'htp: { port: 1 }', 'htp', /unknown key/],
    ['links type', 'links: { peer: b }', 'links', /must be a list/],
    ['link peer', 'links: [{ peer: "", address: "h:1" }]', 'links.0.peer', /must not be empty/],
    ['link address (fabric)', 'links: [{ peer: b, address: nohost }]', 'links.0.address', /host:port/],
    [
      'link address (shm)',
      'links: [{ peer: b, address: "x.sock", transport: shm }]',
      'links.0.address',
      /absolute path/,
    ],
    [
      'link transport',
      'links: [{ peer: b, address: "h:1", transport: rdma }]',
      'links.0.transport',
      /fabric" or "shm/,
    ],
    [
      'link provider',
      'links: [{ peer: b, address: "h:1", provider: "TCP RXM" }]',
      'links.0.provider',
      /look like/,
    ],
    [
      'link ringBytes',
      'links: [{ peer: b, address: "h:1", ringBytes: 1000 }]',
      'links.0.ringBytes',
      /between 64KiB/,
    ],
    [
      'link ringBytes unit',
      'links: [{ peer: b, address: "h:1", ringBytes: 4 parsecs }]',
      'links.0.ringBytes',
      /size like/,
    ],
    [
      'link idle',
      'links: [{ peer: b, address: "h:1", idle: spin }]',
      'links.0.idle',
      /busy-spin, backoff or event/,
    ],
    [
      'link journal',
      'links: [{ peer: b, address: "h:1", journal: maybe }]',
      'links.0.journal',
      /true or false/,
    ],
    [
      'link checksum',
      'links: [{ peer: b, address: "h:1", checksum: yes-please }]',
      'links.0.checksum',
      /true or false/,
    ],
    [
      'journal on shm',
      'links: [{ peer: b, address: "/x.sock", transport: shm, journal: true }]',
      'links.0.journal',
      /applies to fabric links/,
    ],
    ['link self', 'nodeId: a\nlinks: [{ peer: a, address: "h:1" }]', 'links.0.peer', /own node/],
    [
      'duplicate link id',
      'links: [{ peer: b, address: "h:1" }, { peer: b, address: "h:2" }]',
      'links.1.peer',
      /already used by links.0/,
    ],
    [
      'traffic.rate',
      'links: [{ peer: b, address: "h:1", traffic: { rate: 0 } }]',
      'links.0.traffic.rate',
      /> 0/,
    ],
    [
      'traffic.size',
      'links: [{ peer: b, address: "h:1", traffic: { rate: 1, size: { dist: uniform, min: 9, max: 3 } } }]',
      'links.0.traffic.size.max',
      /min must not exceed/,
    ],
    [
      'traffic.burst',
      'links: [{ peer: b, address: "h:1", traffic: { rate: 1, burst: { onMs: 0, offMs: 1 } } }]',
      'links.0.traffic.burst.onMs',
      /at least 1/,
    ],
  ];

  for (const [name, yaml, key, message] of cases) {
    it(`names the key, value and fix: ${name}`, () => {
      const base = yaml.includes('nodeId:') ? '' : 'nodeId: node-a\n';
      const sec = yaml.includes('secret:') ? '' : `secret: ${SECRET}\n`;
      const issues = issuesOf(`${base}${sec}${yaml}\n`);
      const issue = issues.find((i) => i.key === key);
      expect(issue, `issues: ${JSON.stringify(issues)}`).toBeDefined();
      expect(issue!.message).toMatch(message);
      expect(issue!.fix.length).toBeGreaterThan(10);
      expect(issue!.source).toMatch(/^file /);
    });
  }

  it('reports every problem of a file in one go, each with its own message', () => {
    const issues = issuesOf(
      'nodeId: "x y"\nsecret: s\nhttp: { port: 99999 }\nlinks: [{ peer: b, address: nohost, idle: nap }]\n',
    );
    const keys = issues.map((i) => i.key);
    expect(keys).toEqual(
      expect.arrayContaining(['nodeId', 'secret', 'http.port', 'links.0.address', 'links.0.idle']),
    );
    expect(new Set(issues.map((i) => i.message)).size).toBe(issues.length);
  });

  it('never prints secrets', () => {
    const issues = issuesOf('nodeId: a\nsecret: hunter2\nhub: { url: "ws://h:1", token: tiny }\n');
    const text = JSON.stringify(issues);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('tiny');
    expect(issues.find((i) => i.key === 'secret')!.value).toMatch(/redacted, 7 characters/);
  });

  it('names an unreadable file and bad YAML', () => {
    expect(() => loadConfig({ file: join(tmp.dir, 'nope.yaml'), env: {} })).toThrow(
      /--config.*cannot read the file \(ENOENT\)/s,
    );
    expect(() => loadConfig({ file: file('nodeId: [unclosed\n'), env: {} })).toThrow(/not valid YAML/);
    expect(() => loadConfig({ file: file('- a\n- b\n'), env: {} })).toThrow(/YAML mapping/);
  });

  it('precedence: flags beat env, env beats the file, the file beats defaults', () => {
    const f = file(`${VALID}http: { port: 1111 }\nsampling: { intervalMs: 2000 }\n`);
    const fileOnly = loadConfig({ file: f, env: {} });
    expect(fileOnly.http.port).toBe(1111);
    expect(fileOnly.http.host).toBe('0.0.0.0');

    const env = { RDMAQ_HTTP_PORT: '2222', RDMAQ_NODE_ID: 'from-env', RDMAQ_SAMPLE_INTERVAL_MS: '500' };
    const withEnv = loadConfig({ file: f, env });
    expect(withEnv.http.port).toBe(2222);
    expect(withEnv.nodeId).toBe('from-env');
    expect(withEnv.sampling.intervalMs).toBe(500);

    const withFlags = loadConfig({ file: f, env, flags: { 'http-port': '3333', 'node-id': 'from-flag' } });
    expect(withFlags.http.port).toBe(3333);
    expect(withFlags.nodeId).toBe('from-flag');
    expect(withFlags.sampling.intervalMs).toBe(500); // env still applies where no flag was given
  });

  it('names the env variable or flag a bad value came from', () => {
    const f = file(VALID);
    const fromEnv = issuesOf(VALID, { RDMAQ_HTTP_PORT: 'eighty' });
    expect(fromEnv.find((i) => i.key === 'http.port')).toMatchObject({
      source: 'env RDMAQ_HTTP_PORT',
      value: '"eighty"',
    });
    try {
      loadConfig({ file: f, env: {}, flags: { 'log-level': 'chatty' } });
      throw new Error('accepted');
    } catch (err) {
      expect((err as ConfigError).issues[0]).toMatchObject({ key: 'log.level', source: 'flag --log-level' });
    }
  });

  it('reads the token and the secret from files', () => {
    const tokenFile = join(tmp.dir, 'token');
    const secretFile = join(tmp.dir, 'secret');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    writeFileSync(secretFile, `${SECRET}\n`);
    const c = loadConfig({
      file: file(`nodeId: a\nsecretFile: ${secretFile}\nhub: { url: "ws://h:1", tokenFile: ${tokenFile} }\n`),
      env: {},
    });
    expect(c.hub!.token).toBe(TOKEN);
    expect(c.secret).toBe(SECRET);
    const missing = issuesOf(`nodeId: a\nsecretFile: ${join(tmp.dir, 'absent')}\n`);
    expect(missing[0]).toMatchObject({ key: 'secretFile', message: expect.stringMatching(/ENOENT/) });
  });

  it('the example config in the package is valid', () => {
    const secretFile = join(tmp.dir, 'cluster-secret');
    const tokenFile = join(tmp.dir, 'hub-token');
    writeFileSync(secretFile, SECRET);
    writeFileSync(tokenFile, TOKEN);
    const example = new URL('../agent.example.yaml', import.meta.url).pathname;
    const c = loadConfig({
      file: example,
      env: { RDMAQ_SECRET_FILE: secretFile, RDMAQ_HUB_TOKEN_FILE: tokenFile },
    });
    expect(c.links.length).toBeGreaterThan(0);
    expect(c.links.some((l) => l.traffic)).toBe(true);
  });
});

describe('cli', () => {
  function io() {
    const out = new PassThrough();
    const err = new PassThrough();
    let o = '';
    let e = '';
    out.on('data', (d: Buffer) => {
      o += d.toString();
    });
    err.on('data', (d: Buffer) => {
      e += d.toString();
    });
    return { io: { stdout: out, stderr: err }, out: () => o, err: () => e };
  }

  it('--help and --version exit 0', async () => {
    const a = io();
    expect(await main(['--help'], {}, a.io)).toBe(0);
    expect(a.out()).toMatch(/Usage:/);
    expect(a.out()).toMatch(/--http-port/);
    expect(a.out()).toMatch(/RDMAQ_HTTP_PORT/);
    const b = io();
    expect(await main(['--version'], {}, b.io)).toBe(0);
    expect(b.out().trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('exits 2 with every problem listed for an invalid config, starting nothing', async () => {
    const a = io();
    const code = await main(['--config', file('nodeId: a\nsecret: x\nhttp: { port: -5 }\n')], {}, a.io);
    expect(code).toBe(2);
    expect(a.err()).toMatch(/secret = \(redacted.*at least 16.*Fix:/);
    expect(a.err()).toMatch(/http\.port = -5 .*Fix:/);
  });

  it('exits 2 for an unknown flag or command', async () => {
    const a = io();
    expect(await main(['--frobnicate'], {}, a.io)).toBe(2);
    expect(a.err()).toMatch(/frobnicate/);
    const b = io();
    expect(await main(['launch'], {}, b.io)).toBe(2);
    expect(b.err()).toMatch(/unknown command "launch"/);
  });

  it('check validates, lists providers and devices, and flags a missing provider', async () => {
    const a = io();
    const ok = await main(
      ['check', '--config', file(VALID), '--listen-socket', join(tmp.dir, 'a.sock')],
      {},
      a.io,
    );
    expect(a.out()).toMatch(/configuration: valid/);
    expect(a.out()).toMatch(/providers: .*tcp;ofi_rxm/);
    expect(a.out()).toMatch(/RDMA device|RDMA devices: none/);
    expect(ok).toBe(0);

    const b = io();
    const bad = await main(
      [
        'check',
        '--json',
        '--config',
        file(
          `nodeId: a\nsecret: ${SECRET}\nlisten: { socket: ${join(tmp.dir, 'b.sock')} }\nlinks: [{ peer: b, address: "h:1", provider: warp_drive }]\n`,
        ),
      ],
      {},
      b.io,
    );
    expect(bad).toBe(1);
    const report = JSON.parse(b.out()) as { ok: boolean; problems: string[]; providers: string[] };
    expect(report.ok).toBe(false);
    expect(report.providers).toContain('tcp;ofi_rxm');
    expect(report.problems.join('\n')).toMatch(/provider "warp_drive".*not offered/);
  });
});

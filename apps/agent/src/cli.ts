/**
 * Command line: `rdmaq-agent [run|check] --config agent.yaml [flags]`. Exit codes: 0 ok, 1 runtime failure
 * (or a failed check), 2 bad usage or configuration (nothing was started).
 */
import { parseArgs } from 'node:util';
import type { Agent } from './app.js';
import { type AgentConfig, ConfigError, loadConfig, OVERRIDES } from './config.js';
import { errorCode, errorMessage } from './errors.js';
import { AGENT_VERSION } from './version.js';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

export function helpText(): string {
  const flags = OVERRIDES.map((o) => `  --${o.flag.padEnd(22)} ${o.help} (env ${o.env})`).join('\n');
  return `rdmaq-agent ${AGENT_VERSION} — per-host daemon of rdmaq: runs the queue's links and streams their statistics

Usage:
  rdmaq-agent [run] --config agent.yaml [flags]   run the agent (SIGTERM drains and stops; a second signal exits at once)
  rdmaq-agent check --config agent.yaml [--json]  validate the configuration, list libfabric providers and RDMA devices
  rdmaq-agent --help | --version

Options:
  -c, --config <file>          YAML configuration (env RDMAQ_CONFIG); see agent.example.yaml
      --json                   check: print the report as JSON
  -h, --help                   this text
  -V, --version                print the version
Overrides (flags beat RDMAQ_* variables, which beat the file):
${flags}
  RDMAQ_HUB_TOKEN_FILE / RDMAQ_SECRET_FILE   read the hub token / cluster secret from a file

Endpoints: GET /metrics (Prometheus), GET /healthz (200 when every link is up, else 503 with the reasons).
Exit codes: 0 ok, 1 runtime failure or failed check, 2 invalid usage or configuration.
`;
}

interface Parsed {
  command: 'run' | 'check';
  configFile: string | undefined;
  json: boolean;
  flags: Record<string, string | undefined>;
}

type ParseResult =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'error'; message: string }
  | ({ kind: 'ok' } & Parsed);

export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv): ParseResult {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    config: { type: 'string', short: 'c' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
  };
  for (const o of OVERRIDES) options[o.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    values = r.values as Record<string, string | boolean | undefined>;
    positionals = r.positionals;
  } catch (err) {
    return { kind: 'error', message: `${errorMessage(err)}; run rdmaq-agent --help for the options` };
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (positionals.length > 1) {
    return {
      kind: 'error',
      message: `unexpected arguments: ${positionals.slice(1).join(' ')}; run rdmaq-agent --help`,
    };
  }
  const cmd = positionals[0] ?? 'run';
  if (cmd !== 'run' && cmd !== 'check') {
    return { kind: 'error', message: `unknown command "${cmd}": use run or check (rdmaq-agent --help)` };
  }
  const flags: Record<string, string | undefined> = {};
  for (const o of OVERRIDES) {
    const v = values[o.flag];
    if (typeof v === 'string') flags[o.flag] = v;
  }
  const configFile = typeof values.config === 'string' ? values.config : env.RDMAQ_CONFIG;
  return { kind: 'ok', command: cmd, configFile, json: values.json === true, flags };
}

function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Runs a command; for `run` resolves when the agent has stopped (after a signal). */
export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  io: Io = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const parsed = parseCommandLine(argv, env);
  if (parsed.kind === 'help') {
    write(io.stdout, helpText());
    return EXIT_OK;
  }
  if (parsed.kind === 'version') {
    write(io.stdout, AGENT_VERSION);
    return EXIT_OK;
  }
  if (parsed.kind === 'error') {
    write(io.stderr, `rdmaq-agent: ${parsed.message}`);
    return EXIT_CONFIG;
  }
  let config: AgentConfig;
  try {
    config = loadConfig({ file: parsed.configFile, env, flags: parsed.flags });
  } catch (err) {
    if (err instanceof ConfigError) {
      write(io.stderr, `rdmaq-agent: ${err.message}`);
      return EXIT_CONFIG;
    }
    throw err;
  }
  if (parsed.command === 'check') return check(config, parsed.json, io);
  return run(config, io);
}

async function check(config: AgentConfig, json: boolean, io: Io): Promise<number> {
  const { formatCheck, runCheck } = await import('./check.js');
  let rdma: { providers(): string[]; fabricVersion(): string };
  try {
    rdma = await import('@rdmaq/rdma-core');
  } catch (err) {
    rdma = {
      providers: () => {
        throw err;
      },
      fabricVersion: () => {
        throw err;
      },
    };
  }
  const report = runCheck(config, rdma);
  write(io.stdout, json ? JSON.stringify(report, null, 2) : formatCheck(report, config));
  return report.ok ? EXIT_OK : EXIT_FAILURE;
}

async function run(config: AgentConfig, io: Io): Promise<number> {
  const { buildAgent } = await import('./app.js');
  let agent: Agent;
  try {
    agent = await buildAgent(config);
  } catch (err) {
    write(io.stderr, `rdmaq-agent: cannot build the agent: ${errorMessage(err)}`);
    return EXIT_FAILURE;
  }
  if (agent.links.mode === 'worker') {
    // An uncaught error on this thread must not end the process while the data-path worker holds open shm
    // links: rdma-core would crash it (SIGSEGV) tearing the worker down (see link-worker.ts). Log it, close
    // the links (bounded), exit 1.
    let failing = false;
    process.on('uncaughtException', (err: Error) => {
      if (failing) return;
      failing = true;
      agent.logger.fatal(
        { code: errorCode(err), stack: err?.stack },
        `uncaught error: ${errorMessage(err)}; closing the links and exiting`,
      );
      agent.logger.flush?.();
      void agent.links.closeBeforeExit(1000).finally(() => process.exit(EXIT_FAILURE));
    });
  }
  let signals = 0;
  const done = new Promise<number>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        if (signals > 2) return; // already exiting
        agent.logger.warn({ signal: sig }, 'second signal: exiting at once');
        agent.logger.flush?.();
        // A data-path worker must close its shm links before the process exits (it would crash otherwise:
        // see link-worker.ts); bounded, so this stays "at once".
        const code = sig === 'SIGINT' ? 130 : 143;
        void agent.links.closeBeforeExit(1000).finally(() => process.exit(code));
        return;
      }
      agent.logger.info({ signal: sig }, 'signal received: shutting down (send it again to exit at once)');
      agent.stop(`received ${sig}`).then(
        () => resolve(EXIT_OK),
        (err: unknown) => {
          agent.logger.error(`shutdown failed: ${errorMessage(err)}`);
          resolve(EXIT_FAILURE);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  try {
    await agent.start();
  } catch (err) {
    agent.logger.fatal({ code: errorCode(err) }, `cannot start: ${errorMessage(err)}`);
    await agent.stop('start failed').catch(() => {});
    return EXIT_FAILURE;
  }
  return done;
}

/** @rdmaq/agent — programmatic entry points; bin.ts is the command. */
export { type Agent, type AgentDeps, buildAgent, type Health } from './app.js';
export { main } from './cli.js';
export { type Clock, realClock, scaledClock } from './clock.js';
export { type AgentConfig, ConfigError, type ConfigIssue, type LinkConfig, loadConfig } from './config.js';
export { AGENT_VERSION } from './version.js';

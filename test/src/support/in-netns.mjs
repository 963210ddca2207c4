// Runs `node <args…>` inside network namespace argv[2] (ip netns exec), forwarding signals, so a test can
// start and stop an agent in a namespace like any other child process.
import { spawn } from 'node:child_process';

const [, , ns, ...args] = process.argv;
const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: 'inherit' });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

// Runs `next build` for the UI (src/app/) when it exists; the hub (dist/) works without it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'build';
if (!existsSync(path.join(dir, 'src', 'app'))) {
  console.log('[dashboard] no src/app/ directory: skipping the Next.js step');
  process.exit(0);
}
const args = mode === 'typecheck' ? ['tsc', '-p', 'tsconfig.next.json', '--noEmit'] : ['next', 'build'];
const r = spawnSync('pnpm', ['exec', ...args], {
  cwd: dir,
  stdio: 'inherit',
  env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
});
process.exit(r.status ?? 1);

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Next.js (app router) hosted by the hub's custom server (src/server/app.ts); see API.md. */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // The monorepo root, so output tracing does not guess (and warn) across the workspace.
  outputFileTracingRoot: path.join(here, '../..'),
  // The server's tsconfig covers src/ and test/ (NodeNext); the UI has its own.
  typescript: { tsconfigPath: 'tsconfig.next.json' },
  // biome lints the repo; next's eslint integration is not installed.
  eslint: { ignoreDuringBuilds: true },
};

export default nextConfig;

/**
 * Signed-out visitors go straight to /login (with `next=` the page they asked for), before any page,
 * script or live socket loads: without it `/` stayed blank while `/ws/live` and `/api/auth/me` were
 * refused (401) and only then redirected.
 *
 * Only the session cookie's presence is checked here (it is httpOnly and its value is checked by the hub on
 * every API call and socket); an expired cookie still reaches the page, which then redirects as before.
 * `/api/*` and `/ws/*` never reach Next (the hub's server answers them first).
 */
import { type NextRequest, NextResponse } from 'next/server';

/** The hub's session cookie (src/server/api.ts SESSION_COOKIE). */
export const SESSION_COOKIE = 'rdmaq_session';

export function middleware(req: NextRequest) {
  if (req.cookies.get(SESSION_COOKIE)?.value) return NextResponse.next();
  const url = req.nextUrl.clone();
  url.pathname = '/login';
  url.search = '';
  url.searchParams.set('next', req.nextUrl.pathname + req.nextUrl.search);
  // 307 keeps the method; `no-store` so a browser never replays the redirect after signing in.
  const res = NextResponse.redirect(url, 307);
  res.headers.set('cache-control', 'no-store');
  return res;
}

export const config = {
  // Every page except sign-in, first-start setup, Next's own assets and the icon.
  matcher: ['/((?!login|setup|_next/|icon\\.svg|favicon\\.ico|api/|ws/).*)'],
};

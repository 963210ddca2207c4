/**
 * The password policy for operator accounts (creation, admin reset, own change): at least 12 characters
 * (at most 256), not the user name nor built on it, not a commonly used password (a small list, also with
 * digits and punctuation around it: "Password2024!"), not a keyboard or alphabet run, not mostly one
 * character. Each refusal says which rule and how to fix it.
 */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Words and phrases at the top of every leaked-password list, lower case. Short ones matter too: the
 * check strips digits and punctuation around a password before looking it up ("welcome12345!").
 */
const COMMON = new Set([
  '123456',
  '1234567890',
  '123456789012',
  '1q2w3e4r',
  '1q2w3e4r5t6y',
  '1qaz2wsx',
  '1qaz2wsx3edc',
  'abc123',
  'access',
  'admin',
  'administrator',
  'adminadmin',
  'letmein',
  'login',
  'master',
  'masterkey',
  'monkey',
  'dragon',
  'football',
  'baseball',
  'basketball',
  'soccer',
  'hockey',
  'sunshine',
  'princess',
  'welcome',
  'welcome to',
  'password',
  'passw0rd',
  'p@ssw0rd',
  'p@ssword',
  'pass',
  'passpass',
  'passphrase',
  'password password',
  'mypassword',
  'my password',
  'secret',
  'topsecret',
  'supersecret',
  'changeme',
  'change me',
  'default',
  'root',
  'toor',
  'qwerty',
  'qwertz',
  'azerty',
  'iloveyou',
  'i love you',
  'trustno1',
  'shadow',
  'superman',
  'batman',
  'spiderman',
  'starwars',
  'pokemon',
  'whatever',
  'freedom',
  'michael',
  'jennifer',
  'jordan',
  'charlie',
  'hello',
  'hello world',
  'helloworld',
  'computer',
  'internet',
  'killer',
  'ninja',
  'mustang',
  'maggie',
  'summer',
  'winter',
  'spring',
  'autumn',
  'january',
  'december',
  'monday',
  'friday',
  'love',
  'lovely',
  'flower',
  'cheese',
  'chocolate',
  'cookie',
  'pepper',
  'ginger',
  'orange',
  'banana',
  'purple',
  'silver',
  'golden',
  'diamond',
  'matrix',
  'hunter',
  'ranger',
  'thomas',
  'daniel',
  'andrew',
  'joshua',
  'robert',
  'george',
  'liverpool',
  'chelsea',
  'arsenal',
  'barcelona',
  'dashboard',
  'rdmaq',
  'operator',
  'viewer',
  'guest',
  'user',
  'test',
  'testing',
  'test test',
  'demo',
  'sample',
  'server',
  'cluster',
  'system',
  'security',
  'zaq12wsx',
  'asdfgh',
  'zxcvbn',
  'correct horse battery staple',
  'correcthorsebatterystaple',
]);

const RUNS = [
  'abcdefghijklmnopqrstuvwxyz',
  '0123456789'.repeat(4),
  'qwertyuiopasdfghjklzxcvbnm',
  'qwertzuiopasdfghjklyxcvbnm',
  'azertyuiopqsdfghjklmwxcvbn',
  '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p',
  '!@#$%^&*()',
];

/** The problem with a password for `user`, or undefined when it passes. */
export function passwordProblem(password: unknown, user: string): string | undefined {
  if (typeof password !== 'string') return 'password: expected a string';
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `password: use at least ${MIN_PASSWORD_LENGTH} characters (a few unrelated words make a good one)`;
  }
  if (password.length > MAX_PASSWORD_LENGTH) return `password: at most ${MAX_PASSWORD_LENGTH} characters`;
  const p = password.toLowerCase();
  const u = user.toLowerCase();
  if (u.length > 0) {
    const rest = p.split(u).join('');
    if (p === u || rest.length < 8 || p === [...u].reverse().join('')) {
      return 'password: must not be the user name or built on it; choose something unrelated';
    }
  }
  // Strip digits, punctuation and spaces around it: "Password2024!" is "password".
  const core = p.replace(/^[\d\W_]+|[\d\W_]+$/g, '');
  const squeezed = core.replace(/[\s._-]+/g, '');
  const repeatedWord = (s: string) => {
    for (let n = 1; n <= s.length / 2; n++) {
      if (s.length % n === 0 && s.slice(0, n).repeat(s.length / n) === s) return s.slice(0, n);
    }
    return undefined;
  };
  if (/^[\d\s]+$/.test(p)) return 'password: not only digits; a few unrelated words make a good one';
  const unit = repeatedWord(squeezed);
  if (COMMON.has(p) || COMMON.has(core) || COMMON.has(squeezed) || (unit && COMMON.has(unit))) {
    return 'password: this is a commonly used password (or one with digits around it); choose something unrelated';
  }
  if ((unit !== undefined && unit.length <= 4) || new Set(p).size < 5) {
    return 'password: a short pattern repeated, or too few different characters (use at least 5 distinct ones)';
  }
  for (const candidate of [p.replace(/\s+/g, ''), core.replace(/\s+/g, '')]) {
    if (candidate.length < 6) continue;
    for (const run of RUNS) {
      const rev = [...run].reverse().join('');
      if (!run.includes(candidate) && !rev.includes(candidate)) continue;
      return 'password: a keyboard or alphabet run (qwerty…, abcd…, 1234…) is guessed first; choose something unrelated';
    }
  }
  return undefined;
}

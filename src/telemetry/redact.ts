/**
 * Hides the secrets a URL (or a `host:port` with userinfo) can carry before
 * it is logged, put in an error message or served: the username and password,
 * and the value of any query or fragment parameter whose name looks like a
 * credential. Every URL the process prints goes through this, including the
 * hosts of features still to come (PLC, API, Tap, Ozone).
 *
 * Text with nothing to hide comes back unchanged, byte for byte, so messages
 * keep showing exactly what the operator typed. It never throws: a log line
 * must not be the thing that crashes the process.
 */
export function redactUrl(url: string): string {
  try {
    return redactText(redactParsed(url));
  } catch {
    // Unreachable in practice; if it ever happens, hiding everything is the safe side.
    return '[redacted]';
  }
}

/** `password`, `token`, `api_key`, `X-Auth`, `client_secret`, `sig`, `jwt`, ... */
const SECRET_NAME = /pass|pwd|token|secret|key|auth|cred|sig|session|jwt|bearer|cookie/i;

const MASK = '***';

/** What the WHATWG parser sees, so a form only it understands (`ws:\\user:pw@host`) is caught too. */
function redactParsed(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  let changed = false;
  if (u.username !== '' && u.username !== MASK) {
    u.username = MASK;
    changed = true;
  }
  if (u.password !== '' && u.password !== MASK) {
    u.password = MASK;
    changed = true;
  }
  for (const name of new Set(u.searchParams.keys())) {
    if (SECRET_NAME.test(name) && u.searchParams.getAll(name).some((v) => v !== MASK)) {
      u.searchParams.set(name, MASK);
      changed = true;
    }
  }
  return changed ? u.href : url;
}

/**
 * On the raw text, for what the parser does not see as credentials: a
 * scheme-less `user:pw@host:9092` parses as scheme `user:`, and unparsable
 * input is not parsed at all.
 */
function redactText(text: string): string {
  const out = text
    .replace(/^(\s*(?:[a-z][a-z0-9+._-]*:)?\/\/|\s*)([^/?#\\\s]*)@/i, (match, prefix: string, userinfo: string) =>
      userinfo === '' ? match : `${prefix}${userinfo.includes(':') ? `${MASK}:${MASK}` : MASK}@`,
    )
    .replace(/([?&;#])([^=&;#]*)=([^&;#]*)/g, (match, sep: string, name: string) => (SECRET_NAME.test(safeDecode(name)) ? `${sep}${name}=${MASK}` : match));
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

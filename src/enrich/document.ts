/**
 * The syntax rules and document shapes of atproto identity, as indigo reads
 * them (atproto/syntax, atproto/identity): what the Go at-kafka puts in
 * `eventMetadata` is indigo's parse of the document, re-serialised.
 */

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
// did:plc identifiers are 24 base32 characters; anything else cannot be in the directory,
// and checking here keeps odd characters out of the request path.
const PLC_RE = /^did:plc:[a-z2-7]{24}$/;
const HANDLE_RE = /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
/** TLDs no atproto handle or did:web host may use; `.test` stays allowed for development, as in indigo. */
const RESERVED_TLDS = new Set(['alt', 'arpa', 'example', 'internal', 'invalid', 'local', 'localhost', 'onion']);

export const HANDLE_INVALID = 'handle.invalid';

export function isValidDid(s: string): boolean {
  return s.length <= 2048 && DID_RE.test(s);
}

export function isValidHandle(s: string): boolean {
  return s.length <= 253 && HANDLE_RE.test(s);
}

export function allowedTld(handle: string): boolean {
  const tld = handle.slice(handle.lastIndexOf('.') + 1).toLowerCase();
  return !RESERVED_TLDS.has(tld);
}

export type DidKind = { method: 'plc' } | { method: 'web'; host: string } | { method: 'unsupported'; reason: string };

/** Which resolver a DID goes to, or why it cannot be resolved. */
export function classifyDid(did: string): DidKind {
  if (!isValidDid(did)) return { method: 'unsupported', reason: 'not a DID' };
  if (did.startsWith('did:plc:')) return PLC_RE.test(did) ? { method: 'plc' } : { method: 'unsupported', reason: 'malformed did:plc' };
  if (did.startsWith('did:web:')) {
    const host = did.slice('did:web:'.length);
    return webHostOk(host) ? { method: 'web', host } : { method: 'unsupported', reason: 'did:web is not a bare hostname (atproto allows no paths)' };
  }
  return { method: 'unsupported', reason: `DID method ${did.split(':')[1]} is not supported` };
}

/**
 * A did:web identifier atproto can use: a hostname (no path segments), with
 * an optional `%3A`-encoded port, which the did:web spec allows and atproto
 * keeps for local development (then `localhost` is fine too).
 */
function webHostOk(id: string): boolean {
  const m = /^(.+?)(?:%3[aA](\d{1,5}))?$/.exec(id);
  if (m === null) return false;
  const hostname = m[1]!;
  const port = m[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  if (port !== undefined && hostname.toLowerCase() === 'localhost') return true;
  return isValidHandle(hostname) && allowedTld(hostname);
}

export function defaultDidWebUrl(host: string): string {
  return `https://${host.replace(/%3A/gi, ':')}/.well-known/did.json`;
}

export function defaultWellKnownUrl(handle: string): string {
  return `https://${handle}/.well-known/atproto-did`;
}

/** What the enricher keeps of a resolved document. */
export interface ParsedDocument {
  /** `didDocument` as Go re-serialises indigo's parse of it. */
  readonly json: string;
  readonly pdsEndpoint: string;
  readonly pdsHostname: string;
  /** First syntactically valid `at://` handle of alsoKnownAs, lowercased; undefined when none. */
  readonly declaredHandle: string | undefined;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

interface Key {
  type: string;
  publicKeyMultibase: string;
}
interface Service {
  type: string;
  serviceEndpoint: string;
}

/**
 * Validates and reduces a DID document the way indigo does: Go's decoder
 * fails on a field of the wrong type (a `serviceEndpoint` map, a number
 * where a string goes), ignores fields it does not know, and reads null as
 * the zero value. Then ParseIdentity keeps only keys the DID controls and the
 * first key and service per fragment. Go iterates those maps at random when
 * it writes them back; here they keep the document's order.
 */
export function parseDocument(did: string, text: string): Parsed<ParsedDocument> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, message: 'document is not JSON' };
  }
  if (!isObject(raw)) return { ok: false, message: 'document is not a JSON object' };
  const id = stringField(raw, 'id');
  if (id === undefined) return { ok: false, message: 'document id is not a string' };
  if (id !== did) return { ok: false, message: 'document id does not match the DID' };
  const aka = stringArray(raw.alsoKnownAs);
  if (aka === undefined) return { ok: false, message: 'alsoKnownAs is not an array of strings' };
  const methods = objectArray(raw.verificationMethod, ['id', 'type', 'controller', 'publicKeyMultibase']);
  if (methods === undefined) return { ok: false, message: 'verificationMethod is not an array of verification methods' };
  const services = objectArray(raw.service, ['id', 'type', 'serviceEndpoint']);
  if (services === undefined) return { ok: false, message: 'service is not an array of services with string endpoints' };

  const keys = new Map<string, Key>();
  for (const vm of methods) {
    const fragment = fragmentOf(vm.id!);
    if (fragment === undefined || vm.controller !== did || keys.has(fragment)) continue;
    keys.set(fragment, { type: vm.type!, publicKeyMultibase: vm.publicKeyMultibase! });
  }
  const svcs = new Map<string, Service>();
  for (const s of services) {
    const fragment = fragmentOf(s.id!);
    if (fragment === undefined || svcs.has(fragment)) continue;
    svcs.set(fragment, { type: s.type!, serviceEndpoint: s.serviceEndpoint! });
  }

  const out: Record<string, unknown> = { id: did };
  if (aka.length > 0) out.alsoKnownAs = aka;
  if (keys.size > 0) {
    out.verificationMethod = [...keys].map(([fragment, k]) => ({ id: `${did}#${fragment}`, type: k.type, controller: did, publicKeyMultibase: k.publicKeyMultibase }));
  }
  if (svcs.size > 0) {
    out.service = [...svcs].map(([fragment, s]) => ({ id: `#${fragment}`, type: s.type, serviceEndpoint: s.serviceEndpoint }));
  }
  const declared = svcs.get('atproto_pds')?.serviceEndpoint ?? '';
  const pdsEndpoint = goUrlParses(declared) ? declared : '';
  return { ok: true, value: { json: JSON.stringify(out), pdsEndpoint, pdsHostname: hostnameOf(pdsEndpoint), declaredHandle: declaredHandle(aka) } };
}

/** indigo's DeclaredHandle: the first `at://` entry that is a valid handle, lowercased. */
export function declaredHandle(alsoKnownAs: readonly string[]): string | undefined {
  for (const u of alsoKnownAs) {
    if (u.startsWith('at://') && u.length > 5 && isValidHandle(u.slice(5))) return u.slice(5).toLowerCase();
  }
  return undefined;
}

/** Go's SplitN(id, "#", 2): everything after the first `#`, even when empty. */
function fragmentOf(id: string): string | undefined {
  const i = id.indexOf('#');
  return i < 0 ? undefined : id.slice(i + 1);
}

/**
 * Roughly where Go's url.Parse gives up (then indigo reports no PDS): control
 * characters, a bad percent escape, no scheme before a leading colon, a
 * non-numeric port.
 */
function goUrlParses(s: string): boolean {
  if (s === '') return false;
  if (/[\x00-\x1f\x7f]/.test(s) || /%(?![0-9a-fA-F]{2})/.test(s) || s.startsWith(':')) return false;
  const authority = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(s)?.[1];
  if (authority !== undefined) {
    const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
    const port = /^(?:\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostPort)?.[1];
    if (port !== undefined && !/^\d*$/.test(port)) return false;
  }
  return true;
}

function hostnameOf(url: string): string {
  if (url === '') return '';
  try {
    const host = new URL(url).hostname.toLowerCase();
    return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  } catch {
    return '';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go's decode of a string field: absent and null read as "", any other type is an error. */
function stringField(o: Record<string, unknown>, name: string): string | undefined {
  const v = o[name];
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : undefined;
}

function stringArray(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const item of v) {
    if (item === null) out.push('');
    else if (typeof item === 'string') out.push(item);
    else return undefined;
  }
  return out;
}

function objectArray(v: unknown, fields: readonly string[]): Record<string, string>[] | undefined {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return undefined;
  const out: Record<string, string>[] = [];
  for (const item of v) {
    const entry: Record<string, string> = {};
    if (item !== null) {
      if (!isObject(item)) return undefined;
      for (const f of fields) {
        const s = stringField(item, f);
        if (s === undefined) return undefined;
        entry[f] = s;
      }
    } else {
      for (const f of fields) entry[f] = '';
    }
    out.push(entry);
  }
  return out;
}

/** The first entry of a PLC audit log: its createdAt ('' when absent, as Go reads it). */
export function parseAuditLog(text: string, truncated: boolean): Parsed<string> {
  let first: unknown;
  try {
    if (truncated) {
      // Only the first entry matters; a long history past the size cap still has it at the front.
      const head = firstArrayElement(text);
      if (head === undefined) return { ok: false, message: 'audit log too large and its first entry unreadable' };
      first = JSON.parse(head);
    } else {
      const all: unknown = JSON.parse(text);
      if (!Array.isArray(all)) return { ok: false, message: 'audit log is not a JSON array' };
      if (all.length === 0) return { ok: false, message: 'audit log is empty' };
      first = all[0];
    }
  } catch {
    return { ok: false, message: 'audit log is not JSON' };
  }
  if (!isObject(first)) return { ok: false, message: 'audit log entry is not an object' };
  const createdAt = stringField(first, 'createdAt');
  if (createdAt === undefined) return { ok: false, message: 'audit log createdAt is not a string' };
  return { ok: true, value: createdAt };
}

/** The text of the first element of a JSON array, found without parsing the (possibly cut) rest. */
export function firstArrayElement(text: string): string | undefined {
  let i = 0;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (text[i] !== '[') return undefined;
  i++;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  const start = i;
  if (text[i] !== '{') return undefined;
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      if (--depth === 0) return text.slice(start, i + 1);
    }
  }
  return undefined;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** ms since the epoch of an RFC 3339 timestamp (what Go's time.Parse(RFC3339Nano) accepts), else undefined. */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  // From the digits, not a float: 0.029 * 1000 is 28.999...
  const ms = m[7] === undefined ? 0 : Number(`${m[7].slice(1)}00`.slice(0, 3));
  let offset = 0;
  const zone = m[8]!;
  if (zone !== 'Z' && zone !== 'z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offset = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const utc = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, ms);
  return utc.getTime() - offset;
}

// A real Ozone (moderation service) as a child process (tools/peers/ozone.ts):
//   startOzone(): @atproto/dev-env's TestNetwork (PLC, PDS, AppView, Ozone) on its own
//                 PostgreSQL and Redis, a moderator, a non-moderator, users with posts,
//                 and a control server for the failures a queryEvents client must survive
//   eventKinds:   ready-made emitEvent bodies Ozone 0.4.2 accepts, in an order that works
// Resolves once the peer prints its ready line; dispose stops it (SIGTERM, then SIGKILL).
// What each failure looks like from the client's side: tools/peers/README.md.
import { spawnPeer, type Peer } from './peers.ts';

/** The atproto-proxy service id of an Ozone (what goes after its DID). */
export const LABELER_SERVICE = '#atproto_labeler';
export const REPO_REF = 'com.atproto.admin.defs#repoRef';
export const STRONG_REF = 'com.atproto.repo.strongRef';
const DEFS = 'tools.ozone.moderation.defs#';

export interface OzoneAccount {
  did: string;
  handle: string;
  password: string;
}
export interface StrongRef {
  uri: string;
  cid: string;
}
export interface OzoneUser extends OzoneAccount {
  /** app.bsky.feed.post records (3 each), for record subjects */
  posts: StrongRef[];
}
export type Subject = { $type: typeof REPO_REF; did: string } | { $type: typeof STRONG_REF; uri: string; cid: string };

/** What com.atproto.server.createSession / refreshSession answered (the fields tests use). */
export interface Session {
  accessJwt: string;
  refreshJwt: string;
  did: string;
  handle: string;
}
/** A tools.ozone.moderation.defs#modEventView exactly as Ozone answered it. */
export interface ModEventView {
  id: number;
  event: { $type: string; [k: string]: unknown };
  subject: { $type: string; [k: string]: unknown };
  subjectBlobCids: string[];
  createdBy: string;
  createdAt: string;
  creatorHandle?: string;
  subjectHandle?: string;
  modTool?: { name: string; meta?: unknown };
  [k: string]: unknown;
}

/** A non-2xx XRPC answer, with everything the PDS sent. */
export class XrpcError extends Error {
  readonly status: number;
  readonly body: { error?: string; message?: string; [k: string]: unknown } | string;
  readonly headers: Headers;
  constructor(nsid: string, status: number, body: XrpcError['body'], headers: Headers) {
    super(`${nsid} -> HTTP ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
  /** the XRPC error name ("ExpiredToken", "RateLimitExceeded", ...) */
  get error(): string | undefined {
    return typeof this.body === 'object' ? this.body.error : undefined;
  }
}

export interface XrpcOptions {
  /** a Session, or an access/refresh JWT */
  auth?: Session | string;
  params?: Record<string, string | number | boolean | string[] | undefined>;
  /** JSON body; a procedure (POST) when set */
  body?: unknown;
  /** POST without a body (refreshSession) */
  post?: boolean;
  /**
   * true: send atproto-proxy: <ozoneDid>#atproto_labeler (the PDS forwards the call to
   * Ozone); a string: send that as the header. Without it the PDS forwards tools.ozone.*
   * and createReport to its configured mod service, which is this Ozone too.
   */
  proxy?: boolean | string;
  /** send the PDS's rate-limit bypass header (default false here; the helpers below default to true) */
  bypassRateLimit?: boolean;
}

export interface EmitOptions {
  createdBy?: string;
  modTool?: { name: string; meta?: Record<string, unknown> };
  externalId?: string;
  subjectBlobCids?: string[];
  bypassRateLimit?: boolean;
}

export interface OzonePeer extends Peer {
  /** http://127.0.0.1:PORT of the PDS (its XRPC API; everything below goes through it) */
  readonly pdsUrl: string;
  readonly plcUrl: string;
  readonly appviewUrl: string;
  /** http://127.0.0.1:PORT of Ozone itself (direct calls need a service JWT; use the PDS) */
  readonly ozoneUrl: string;
  /** Ozone's service DID (did:plc:...), the labeler whose #atproto_labeler the PDS proxies to */
  readonly ozoneDid: string;
  /** `${ozoneDid}#atproto_labeler`: the atproto-proxy header value */
  readonly proxyHeader: string;
  /** the peer's control server (POST JSON), see tools/peers/README.md */
  readonly controlUrl: string;
  /** an Ozone moderator (tools.ozone.team.defs#roleModerator) with an account on the PDS */
  readonly moderator: OzoneAccount;
  /** an account on the PDS that is not on Ozone's team: queryEvents answers 401 */
  readonly nonModerator: OzoneAccount;
  /** alice, bob, carol, dave, erin (.test), 3 posts each */
  readonly users: OzoneUser[];
  readonly rateLimits: { enabled: boolean; bypassHeader?: string; bypassKey?: string };
  /** how long TestNetwork.create took in the peer */
  readonly startupMs: number;
  readonly versions: Record<string, string>;

  /** One XRPC call on the PDS; resolves with the parsed JSON, rejects with an XrpcError. */
  xrpc<T = any>(nsid: string, opts?: XrpcOptions): Promise<T>;
  /** com.atproto.server.createSession on the PDS (rate-limit bypass unless told otherwise) */
  login(identifier: string, password: string, opts?: { bypassRateLimit?: boolean }): Promise<Session>;
  /** com.atproto.server.refreshSession */
  refresh(refreshJwt: string, opts?: { bypassRateLimit?: boolean }): Promise<Session>;
  /** tools.ozone.moderation.emitEvent through the PDS (createdBy = moderator); the created modEventView */
  emit(auth: Session | string, event: Record<string, unknown>, subject: Subject, opts?: EmitOptions): Promise<ModEventView>;
  /** com.atproto.moderation.createReport from an ordinary user through the PDS to Ozone */
  report(userAuth: Session | string, subject: Subject, reasonType?: string, reason?: string): Promise<Record<string, unknown>>;
  /** One page of tools.ozone.moderation.queryEvents through the PDS, as Ozone answered it. */
  queryEvents(auth: Session | string, params?: XrpcOptions['params'], opts?: { bypassRateLimit?: boolean }): Promise<{ cursor?: string; events: ModEventView[] }>;
  /** Every event, ascending, paged with Ozone's own cursor (limit 100) as the moderator. */
  queryAll(params?: XrpcOptions['params']): Promise<ModEventView[]>;
  /** A session of the moderator, kept and renewed by queryAll (log in again if it fails). */
  moderatorSession(): Promise<Session>;

  /** POST /auth-clock: the PDS's token clock runs skewMs ahead (0 to undo) */
  authClock(skewMs: number): Promise<void>;
  /** POST /revoke-sessions: every refresh token of the account revoked; the number revoked */
  revokeSessions(did: string): Promise<number>;
  /** POST /set-created-at: rewrite createdAt of those moderation_event rows; the number updated */
  setCreatedAt(ids: number[], iso: string): Promise<number>;
  /** POST /clone-events: `count` copies of the events so far, createdAt 1 ms apart ending a minute ago (benchmarks) */
  cloneEvents(count: number): Promise<number>;
  /** POST /ozone: Ozone's port refuses connections (false) or listens again (true) */
  ozoneUp(up: boolean): Promise<void>;
  /** POST /pds: the PDS's port refuses connections (false) or listens again (true) */
  pdsUp(up: boolean): Promise<void>;
  /** POST /rate-limits/reset: every PDS rate-limit counter back to zero; the number of counters */
  resetRateLimits(): Promise<number>;
  /** POST /rate-limits/exhaust: the PDS's global per-IP limit (3000/5 min) used up for `ms` */
  exhaustRateLimit(ms?: number, ip?: string): Promise<void>;
}

export interface StartOzoneOptions {
  /** use this PostgreSQL (schemas of its own) instead of starting one */
  postgresUrl?: string;
  /** the PDS's rate limits (default on) */
  rateLimits?: boolean;
  timeoutMs?: number;
}

export const repoRef = (did: string): Subject => ({ $type: REPO_REF, did });
export const strongRef = (r: StrongRef): Subject => ({ $type: STRONG_REF, uri: r.uri, cid: r.cid });

export interface EventKind {
  /** the event's $type without the tools.ozone.moderation.defs# prefix, plus a suffix when a type appears twice */
  name: string;
  /** the subjects Ozone 0.4.2 accepts it for (some are repo-only) */
  subjects: ('account' | 'record')[];
  event: { $type: string; [k: string]: unknown };
}

/**
 * emitEvent bodies of every kind a moderator (not admin) may emit in Ozone 0.4.2,
 * checked by test/peers/ozone.test.ts. Emitted in this order on one fresh subject of
 * each type they all pass (reverseTakedown needs the takedown before it, unmute the
 * mute). Left out: modEventDivert (no blob diverter configured: 400 "BlobDiverter not
 * configured for this service"; on an account subject it is accepted and followed by
 * an automatic takedown), revokeAccountCredentialsEvent (admins only: 401 "Must be an
 * admin to revoke account credentials").
 * ageAssurancePurgeEvent DELETES the subject's earlier ageAssuranceEvent rows: they
 * are gone from queryEvents afterwards (the one history rewrite Ozone does itself).
 * A takedown of an account subject is pushed to the PDS by Ozone's daemon (the account
 * is taken down there until the reverseTakedown): use an account no test logs in with.
 */
export const eventKinds: EventKind[] = [
  { name: 'modEventReport', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventReport`, reportType: 'com.atproto.moderation.defs#reasonSpam', comment: 'reported by the moderator' } },
  { name: 'modEventComment', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventComment`, comment: 'a note', sticky: false } },
  { name: 'modEventLabel:create', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventLabel`, createLabelVals: ['spam', 'rude'], negateLabelVals: [] } },
  { name: 'modEventLabel:negate', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventLabel`, createLabelVals: [], negateLabelVals: ['rude'], comment: 'not rude after all' } },
  { name: 'modEventAcknowledge', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventAcknowledge`, comment: 'seen' } },
  { name: 'modEventEscalate', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventEscalate`, comment: 'needs a second look' } },
  { name: 'modEventMute', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventMute`, durationInHours: 24 } },
  { name: 'modEventUnmute', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventUnmute` } },
  { name: 'modEventTag:add', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventTag`, add: ['peers-test', 'second-tag'], remove: [] } },
  { name: 'modEventTag:remove', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventTag`, add: [], remove: ['second-tag'] } },
  { name: 'modEventPriorityScore', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventPriorityScore`, score: 42, comment: 'urgent-ish' } },
  { name: 'modEventTakedown', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventTakedown`, comment: 'taken down', policies: ['policy-one'] } },
  { name: 'modEventReverseTakedown', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventReverseTakedown`, comment: 'restored' } },
  { name: 'modEventResolveAppeal', subjects: ['account', 'record'], event: { $type: `${DEFS}modEventResolveAppeal`, comment: 'appeal resolved' } },
  { name: 'modEventMuteReporter', subjects: ['account'], event: { $type: `${DEFS}modEventMuteReporter`, durationInHours: 24, comment: 'too many reports' } },
  { name: 'modEventUnmuteReporter', subjects: ['account'], event: { $type: `${DEFS}modEventUnmuteReporter` } },
  { name: 'modEventEmail', subjects: ['account'], event: { $type: `${DEFS}modEventEmail`, subjectLine: 'About your account', comment: 'logged only: no content, so no mail is sent' } },
  { name: 'accountEvent', subjects: ['account'], event: { $type: `${DEFS}accountEvent`, active: true, timestamp: '2026-01-01T00:00:00.000Z', comment: 'account status seen' } },
  { name: 'identityEvent', subjects: ['account'], event: { $type: `${DEFS}identityEvent`, handle: 'renamed.test', timestamp: '2026-01-01T00:00:00.000Z' } },
  { name: 'ageAssuranceEvent', subjects: ['account'], event: { $type: `${DEFS}ageAssuranceEvent`, createdAt: '2026-01-01T00:00:00.000Z', attemptId: 'attempt-1', status: 'pending' } },
  { name: 'ageAssuranceOverrideEvent', subjects: ['account'], event: { $type: `${DEFS}ageAssuranceOverrideEvent`, status: 'assured', comment: 'checked by hand' } },
  { name: 'ageAssurancePurgeEvent', subjects: ['account'], event: { $type: `${DEFS}ageAssurancePurgeEvent`, comment: 'purged' } },
  { name: 'scheduleTakedownEvent', subjects: ['account', 'record'], event: { $type: `${DEFS}scheduleTakedownEvent`, executeAt: '2030-01-01T00:00:00.000Z', comment: 'logged only (scheduleAction schedules)' } },
  { name: 'cancelScheduledTakedownEvent', subjects: ['account', 'record'], event: { $type: `${DEFS}cancelScheduledTakedownEvent`, comment: 'logged only' } },
  { name: 'recordEvent', subjects: ['record'], event: { $type: `${DEFS}recordEvent`, op: 'update', timestamp: '2026-01-01T00:00:00.000Z', comment: 'record changed' } },
];

export async function startOzone(opts: StartOzoneOptions = {}): Promise<OzonePeer> {
  const args: string[] = [];
  if (opts.postgresUrl) args.push('--postgres-url', opts.postgresUrl);
  if (opts.rateLimits === false) args.push('--no-rate-limits');
  const { child, info, logs, dispose } = await spawnPeer('ozone.ts', 'ozoneDid', args, opts.timeoutMs ?? 120_000);

  const pdsUrl = info.pdsUrl as string;
  const ozoneDid = info.ozoneDid as string;
  const controlUrl = info.controlUrl as string;
  const proxyHeader = ozoneDid + LABELER_SERVICE;
  const rateLimits = info.rateLimits as OzonePeer['rateLimits'];
  const moderator = info.moderator as OzoneAccount;

  const jwt = (auth: Session | string) => (typeof auth === 'string' ? auth : auth.accessJwt);
  const xrpc = async <T>(nsid: string, o: XrpcOptions = {}): Promise<T> => {
    const url = new URL(`/xrpc/${nsid}`, pdsUrl);
    for (const [k, v] of Object.entries(o.params ?? {})) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(one));
    }
    const headers: Record<string, string> = {};
    if (o.auth !== undefined) headers.authorization = `Bearer ${jwt(o.auth)}`;
    if (o.proxy) headers['atproto-proxy'] = typeof o.proxy === 'string' ? o.proxy : proxyHeader;
    if (o.bypassRateLimit && rateLimits.enabled) headers[rateLimits.bypassHeader!] = rateLimits.bypassKey!;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url, {
      method: o.body !== undefined || o.post ? 'POST' : 'GET',
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {}
    if (!res.ok) throw new XrpcError(nsid, res.status, body as XrpcError['body'], res.headers);
    return body as T;
  };
  const control = async (path: string, body: unknown) => {
    const res = await fetch(controlUrl + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const out = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`control ${path} -> HTTP ${res.status}: ${JSON.stringify(out)}`);
    return out;
  };

  const login = (identifier: string, password: string, o: { bypassRateLimit?: boolean } = {}) =>
    xrpc<Session>('com.atproto.server.createSession', { body: { identifier, password }, bypassRateLimit: o.bypassRateLimit ?? true });
  const refresh = (refreshJwt: string, o: { bypassRateLimit?: boolean } = {}) =>
    xrpc<Session>('com.atproto.server.refreshSession', { auth: refreshJwt, post: true, bypassRateLimit: o.bypassRateLimit ?? true });
  const queryEvents = (auth: Session | string, params: XrpcOptions['params'] = {}, o: { bypassRateLimit?: boolean } = {}) =>
    xrpc<{ cursor?: string; events: ModEventView[] }>('tools.ozone.moderation.queryEvents', { auth, params, proxy: true, bypassRateLimit: o.bypassRateLimit ?? true });

  let modSession: Session | undefined;
  const moderatorSession = async () => (modSession ??= await login(moderator.handle, moderator.password));
  /** As the moderator; a session that stopped working (expired, revoked) is replaced once. */
  const asModerator = async <T>(call: (s: Session) => Promise<T>): Promise<T> => {
    try {
      return await call(await moderatorSession());
    } catch (err) {
      if (!(err instanceof XrpcError) || !(err.status === 401 || err.error === 'ExpiredToken' || err.error === 'InvalidToken')) throw err;
      modSession = await login(moderator.handle, moderator.password);
      return call(modSession);
    }
  };

  return {
    child,
    logs,
    pdsUrl,
    plcUrl: info.plcUrl as string,
    appviewUrl: info.appviewUrl as string,
    ozoneUrl: info.ozoneUrl as string,
    ozoneDid,
    proxyHeader,
    controlUrl,
    moderator,
    nonModerator: info.nonModerator as OzoneAccount,
    users: info.users as OzoneUser[],
    rateLimits,
    startupMs: info.startupMs as number,
    versions: info.versions as Record<string, string>,
    xrpc,
    login,
    refresh,
    moderatorSession,
    emit: (auth, event, subject, o = {}) =>
      xrpc<ModEventView>('tools.ozone.moderation.emitEvent', {
        auth,
        proxy: true,
        bypassRateLimit: o.bypassRateLimit ?? true,
        body: {
          event,
          subject,
          createdBy: o.createdBy ?? moderator.did,
          ...(o.modTool && { modTool: o.modTool }),
          ...(o.externalId && { externalId: o.externalId }),
          ...(o.subjectBlobCids && { subjectBlobCids: o.subjectBlobCids }),
        },
      }),
    report: (userAuth, subject, reasonType = 'com.atproto.moderation.defs#reasonSpam', reason) =>
      xrpc('com.atproto.moderation.createReport', {
        auth: userAuth,
        proxy: true,
        bypassRateLimit: true,
        body: { reasonType, subject, ...(reason !== undefined && { reason }) },
      }),
    queryEvents,
    queryAll: (params = {}) =>
      asModerator(async (s) => {
        const all: ModEventView[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await queryEvents(s, { ...params, sortDirection: 'asc', limit: 100, cursor });
          all.push(...page.events);
          // Ozone returns a cursor with every non-empty page, the last one included.
          if (!page.cursor || page.events.length === 0) return all;
          cursor = page.cursor;
        }
      }),
    authClock: async (skewMs) => void (await control('/auth-clock', { skewMs })),
    revokeSessions: async (did) => (await control('/revoke-sessions', { did })).revoked as number,
    setCreatedAt: async (ids, iso) => (await control('/set-created-at', { ids, createdAt: iso })).updated as number,
    cloneEvents: async (count) => (await control('/clone-events', { count })).inserted as number,
    ozoneUp: async (up) => void (await control('/ozone', { up })),
    pdsUp: async (up) => void (await control('/pds', { up })),
    resetRateLimits: async () => (await control('/rate-limits/reset', {})).deleted as number,
    exhaustRateLimit: async (ms, ip) => void (await control('/rate-limits/exhaust', { ...(ms !== undefined && { ms }), ...(ip !== undefined && { ip }) })),
    [Symbol.asyncDispose]: dispose,
  };
}

// A real Ozone (moderation service) for tests, in one process, on loopback:
// @atproto/dev-env's TestNetwork (PLC, PDS, AppView + bsync, Ozone with its
// daemon) on a throwaway PostgreSQL and Redis, with a moderator, a
// non-moderator and ordinary users with posts, plus a control server that
// creates the failures a client of tools.ozone.moderation.queryEvents must
// survive (expired tokens, revoked sessions, Ozone or PDS down, rate limits,
// events sharing a millisecond or committed late).
//
//   node ozone.ts [--postgres-url URL] [--no-rate-limits] [--exit-with-stdin]
//
// Ready line: {"pdsUrl","plcUrl","appviewUrl","ozoneUrl","ozoneDid","controlUrl",
//              "moderator":{did,handle,password},"nonModerator":{...},
//              "users":[{did,handle,password,posts:[{uri,cid}]}],
//              "rateLimits":{enabled,bypassHeader,bypassKey},"startupMs","versions":{...}}
// See README.md.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { LOOPBACK, die, listenOnLoopbackOnly, onStop, quietStdout, ready } from './common.ts';
import { startPostgres, type Postgres } from './postgres.ts';
import { startRedis } from './redis.ts';

quietStdout();
listenOnLoopbackOnly();

const { values: args } = parseArgs({
  options: {
    'postgres-url': { type: 'string' },
    'rate-limits': { type: 'boolean', default: true },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
  allowNegative: true,
  strict: true,
});

const version = (pkg: string): string =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'node_modules', pkg, 'package.json'), 'utf8')).version;

const HANDLE_DOMAIN = '.test';
const RATE_LIMIT_BYPASS_KEY = 'peers-ratelimit-bypass';

// Everything started so far, stopped in reverse order.
const stops: (() => Promise<unknown>)[] = [];
const stopAll = async () => {
  for (const stop of stops.splice(0).reverse()) {
    await stop().catch((err) => process.stderr.write(`ozone: while stopping: ${err?.stack ?? err}\n`));
  }
};
onStop(stopAll, args['exit-with-stdin']!);
const fail = async (err: unknown) => {
  await stopAll();
  die(`startup failed: ${(err as Error)?.stack ?? err}`);
};
process.on('unhandledRejection', (err) => void fail(err));

/**
 * Every socket each server in this process ever accepted and still has open,
 * counted from its first listen (connections made while dev-env starts, such
 * as the AppView's firehose WebSocket to the PDS, included).
 */
const openSockets = new WeakMap<net.Server, Set<Socket>>();
function trackSockets(): void {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...a: unknown[]) {
    if (!openSockets.has(this)) {
      const set = new Set<Socket>();
      openSockets.set(this, set);
      this.on('connection', (s: Socket) => {
        set.add(s);
        s.once('close', () => set.delete(s));
      });
    }
    return (listen as (...x: unknown[]) => net.Server).apply(this, a);
  } as typeof net.Server.prototype.listen;
}
trackSockets();

/**
 * Take an http.Server off its port and put it back on the same one. Down means
 * nothing listens (connection refused) and every open socket, WebSockets
 * included, is destroyed; the server object and the app behind it stay as they
 * are, so up again serves the same data.
 */
class Switch {
  private readonly server: Server;
  readonly name: string;
  readonly port: number;
  up = true;
  constructor(name: string, server: Server, port: number) {
    this.name = name;
    this.server = server;
    this.port = port;
  }
  async set(up: boolean): Promise<void> {
    if (up === this.up) return;
    if (!up) {
      const closed = new Promise<void>((ok) => this.server.close(() => ok()));
      for (const s of openSockets.get(this.server) ?? []) s.destroy();
      this.server.closeAllConnections();
      await closed;
      this.up = false;
    } else {
      await new Promise<void>((ok, bad) => {
        const onError = (err: Error) => bad(new Error(`${this.name}: cannot listen on ${this.port} again: ${err.message}`));
        this.server.once('error', onError);
        this.server.listen(this.port, LOOPBACK, () => {
          this.server.off('error', onError);
          ok();
        });
      });
      this.up = true;
    }
  }
}

try {
  // ---------------------------------------------------------------- PostgreSQL, Redis
  let pg: Postgres | undefined;
  let dbUrl = args['postgres-url'];
  const schema = dbUrl
    ? // A shared server: schemas of letters and _ only, unique to this run.
      'peers_' + Array.from({ length: 10 }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('')
    : 'peers';
  if (!dbUrl) {
    pg = await startPostgres();
    stops.push(() => pg!.stop());
    dbUrl = pg.url;
  }
  const redis = await startRedis();
  stops.push(() => redis.stop());
  // dev-env's TestNetwork asserts REDIS_HOST (the AppView takes it; the PDS's
  // rate limiter below is what actually uses this Redis).
  process.env.REDIS_HOST = redis.host;

  // dev-env's TestPds puts its data and blob folders in os.tmpdir() and never
  // removes them: give it a folder of ours (after PostgreSQL, whose folder must
  // stay reachable by the postgres user).
  const workDir = mkdtempSync(join(tmpdir(), 'atkafka-peers-ozone-'));
  stops.push(async () => rmSync(workDir, { recursive: true, force: true }));
  process.env.TMPDIR = workDir;

  // ---------------------------------------------------------------- the network
  const { TestNetwork } = await import('@atproto/dev-env');
  const rateLimits = args['rate-limits']!;
  const network = await TestNetwork.create({
    dbPostgresUrl: dbUrl,
    dbPostgresSchema: schema,
    pds: rateLimits
      ? { rateLimitsEnabled: true, redisScratchAddress: redis.host, rateLimitBypassKey: RATE_LIMIT_BYPASS_KEY }
      : {},
  } as never);
  const pds = network.pds;
  const ozone = network.ozone;
  const pdsSwitch = new Switch('PDS', pds.server.server as Server, pds.port);
  const ozoneSwitch = new Switch('Ozone', ozone.server.server as Server, ozone.port);
  // Closing needs both servers listening (their terminators close them).
  stops.push(async () => {
    await pdsSwitch.set(true);
    await ozoneSwitch.set(true);
    await network.close();
  });

  const pdsUrl = `http://${LOOPBACK}:${pds.port}`;
  const ozoneUrl = `http://${LOOPBACK}:${ozone.port}`;
  const plcUrl = `http://${LOOPBACK}:${network.plc.port}`;
  const appviewUrl = `http://${LOOPBACK}:${network.bsky.port}`;
  const ozoneDid: string = ozone.ctx.cfg.service.did;

  // ---------------------------------------------------------------- accounts
  // (with the rate-limit bypass: setup spends none of the tests' budget)
  const xrpc = async (nsid: string, opts: { auth?: string; body?: unknown } = {}) => {
    const url = new URL(`/xrpc/${nsid}`, pdsUrl);
    const headers: Record<string, string> = { 'x-ratelimit-bypass': RATE_LIMIT_BYPASS_KEY };
    if (opts.auth) headers.authorization = opts.auth;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url, { method: opts.body === undefined ? 'GET' : 'POST', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${nsid} -> HTTP ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
  interface Account {
    did: string;
    handle: string;
    password: string;
  }
  const createAccount = async (name: string): Promise<Account & { auth: string }> => {
    const handle = `${name}${HANDLE_DOMAIN}`;
    const password = `${name}-password`;
    const r = await xrpc('com.atproto.server.createAccount', { body: { handle, email: `${name}@example.com`, password } });
    return { did: r.did, handle, password, auth: `Bearer ${r.accessJwt}` };
  };
  const time = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  let clock = 0;

  const moderator = await createAccount('moderator');
  await ozone.addModeratorDid(moderator.did as `did:${string}:${string}`);
  const nonModerator = await createAccount('nobody');
  const users: (Account & { posts: { uri: string; cid: string }[] })[] = [];
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    const a = await createAccount(name);
    await xrpc('com.atproto.repo.createRecord', {
      auth: a.auth,
      body: { repo: a.did, collection: 'app.bsky.actor.profile', rkey: 'self', record: { $type: 'app.bsky.actor.profile', displayName: name } },
    });
    const posts: { uri: string; cid: string }[] = [];
    for (let i = 1; i <= 3; i++) {
      const r = await xrpc('com.atproto.repo.createRecord', {
        auth: a.auth,
        body: { repo: a.did, collection: 'app.bsky.feed.post', record: { $type: 'app.bsky.feed.post', text: `${name}'s post ${i}`, langs: ['en'], createdAt: time(clock++) } },
      });
      posts.push({ uri: r.uri, cid: r.cid });
    }
    users.push({ did: a.did, handle: a.handle, password: a.password, posts });
  }

  // Ozone shows handles from the AppView (creatorHandle, subjectHandle): let it index first.
  await network.processAll();

  // ---------------------------------------------------------------- control hooks
  // The PDS's token clock: verifies bearer JWTs as if it were skewMs ahead, and
  // issues access tokens (createSession, refreshSession) on that clock too, so
  // after a refresh the new token works while old ones have expired.
  let skewMs = 0;
  const jose = await import('jose');
  const av = pds.ctx.authVerifier as unknown as { verifyBearerJwt: (req: unknown, opts: Record<string, unknown>) => Promise<unknown> };
  const verify = av.verifyBearerJwt.bind(av);
  av.verifyBearerJwt = (req, opts) => verify(req, skewMs ? { ...opts, currentDate: new Date(Date.now() + skewMs) } : opts);
  const am = pds.ctx.accountManager as {
    jwtKey: Parameters<InstanceType<typeof jose.SignJWT>['sign']>[0];
    createSession: (...a: unknown[]) => Promise<{ accessJwt: string; refreshJwt: string }>;
    rotateRefreshToken: (...a: unknown[]) => Promise<{ accessJwt: string; refreshJwt: string } | null>;
    revokeRefreshToken: (id: string) => Promise<boolean>;
    db: { db: { selectFrom: (t: string) => any } };
  };
  const shift = async (jwt: string) => {
    if (!skewMs) return jwt;
    const header = jose.decodeProtectedHeader(jwt);
    const payload = jose.decodeJwt(jwt);
    const s = Math.round(skewMs / 1000);
    return new jose.SignJWT({ ...payload, iat: payload.iat! + s, exp: payload.exp! + s })
      .setProtectedHeader(header as { alg: string })
      .sign(am.jwtKey);
  };
  for (const method of ['createSession', 'rotateRefreshToken'] as const) {
    const orig = (am[method] as (...a: unknown[]) => Promise<{ accessJwt: string; refreshJwt: string } | null>).bind(am);
    am[method] = (async (...a: unknown[]) => {
      const r = await orig(...a);
      return r && { ...r, accessJwt: await shift(r.accessJwt) };
    }) as never;
  }

  const revokeSessions = async (did: string) => {
    const rows: { id: string }[] = await am.db.db.selectFrom('refresh_token').select('id').where('did', '=', did).execute();
    for (const { id } of rows) await am.revokeRefreshToken(id);
    return rows.length;
  };

  const odb = ozone.ctx.db.db as any;
  const setCreatedAt = async (ids: number[], createdAt: string) => {
    const iso = new Date(createdAt).toISOString(); // the stored form: createdAt is a varchar compared as text
    const r = await odb.updateTable('moderation_event').set({ createdAt: iso }).where('id', 'in', ids).executeTakeFirst();
    return Number(r.numUpdatedRows);
  };

  // The PDS's rate limiter keeps its counters in Redis (rate-limiter-flexible):
  // "rl-global-ip:<ip>" (3000 per 5 min), "<nsid>-<i>:<key>" per route.
  const rds = pds.ctx.redisScratch as
    | { scan: (...a: unknown[]) => Promise<[string, string[]]>; del: (...k: string[]) => Promise<number>; set: (...a: unknown[]) => Promise<unknown> }
    | undefined;
  const rateLimitKeys = async () => {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await rds!.scan(cursor, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch.filter((k) => /^(rl-[^:]+|[a-z][a-zA-Z0-9.]*-\d+):/.test(k)));
    } while (cursor !== '0');
    return keys;
  };

  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const readJson = async (req: IncomingMessage) => {
    let s = '';
    for await (const c of req) s += c;
    return s ? JSON.parse(s) : {};
  };
  const routes: Record<string, (b: any) => Promise<unknown>> = {
    '/auth-clock': async (b) => {
      if (typeof b.skewMs !== 'number' || !Number.isFinite(b.skewMs)) throw new Error('skewMs: a number');
      skewMs = b.skewMs;
      return { skewMs };
    },
    '/revoke-sessions': async (b) => {
      if (typeof b.did !== 'string') throw new Error('did: a string');
      return { revoked: await revokeSessions(b.did) };
    },
    '/set-created-at': async (b) => {
      if (!Array.isArray(b.ids) || !b.ids.every(Number.isInteger) || typeof b.createdAt !== 'string' || isNaN(Date.parse(b.createdAt))) {
        throw new Error('ids: integers, createdAt: an ISO date');
      }
      return { updated: await setCreatedAt(b.ids, b.createdAt), createdAt: new Date(b.createdAt).toISOString() };
    },
    '/clone-events': async (b) => {
      // Bulk copies of the events so far (every column but id and createdAt), createdAt 1 ms apart ending
      // a minute ago: a large log for benchmarks without thousands of emitEvent calls. Ids come from the
      // table's own sequence.
      const count = b.count;
      if (!Number.isInteger(count) || count < 1 || count > 2_000_000) throw new Error('count: an integer 1..2000000');
      const { sql } = await import('kysely');
      const cols = (
        await sql<{ column_name: string }>`select column_name from information_schema.columns
          where table_name = 'moderation_event' and table_schema = current_schema() and column_name not in ('id', 'createdAt')
          order by ordinal_position`.execute(odb)
      ).rows.map((r) => `"${r.column_name}"`);
      if (cols.length === 0) throw new Error('moderation_event not found in the current schema');
      const list = cols.join(', ');
      const startMs = Date.now() - 60_000 - count;
      const r = await sql`insert into moderation_event (${sql.raw(list)}, "createdAt")
        select ${sql.raw(cols.map((c) => `src.${c}`).join(', '))},
               to_char(to_timestamp((${startMs}::bigint + g.i) / 1000.0) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        from generate_series(0, ${count - 1}) as g(i)
        join (select *, (row_number() over (order by id)) - 1 as rn, count(*) over () as n from moderation_event) src on src.rn = g.i % src.n`.execute(odb);
      return { inserted: Number(r.numAffectedRows ?? 0), from: new Date(startMs).toISOString() };
    },
    '/ozone': async (b) => {
      if (typeof b.up !== 'boolean') throw new Error('up: a boolean');
      await ozoneSwitch.set(b.up);
      return { up: ozoneSwitch.up };
    },
    '/pds': async (b) => {
      if (typeof b.up !== 'boolean') throw new Error('up: a boolean');
      await pdsSwitch.set(b.up);
      return { up: pdsSwitch.up };
    },
    '/rate-limits/reset': async () => {
      if (!rds) throw new Error('rate limits are off (--no-rate-limits)');
      const keys = await rateLimitKeys();
      if (keys.length) await rds.del(...keys);
      return { deleted: keys.length };
    },
    '/rate-limits/exhaust': async (b) => {
      // The global per-IP limiter at its limit, for `ms` (default 5 s): every
      // XRPC call from that IP without the bypass header answers the PDS's own 429.
      if (!rds) throw new Error('rate limits are off (--no-rate-limits)');
      const ip = typeof b.ip === 'string' ? b.ip : LOOPBACK;
      const ms = typeof b.ms === 'number' ? b.ms : 5000;
      await rds.set(`rl-global-ip:${ip}`, '3000', 'PX', Math.max(1, Math.round(ms)));
      return { key: `rl-global-ip:${ip}`, ms };
    },
  };
  const control = createServer((req, res) => {
    const route = req.method === 'POST' ? routes[(req.url ?? '').split('?')[0]!] : undefined;
    if (!route) return json(res, 404, { error: 'NotFound', message: `POST ${Object.keys(routes).join(' | ')}` });
    readJson(req)
      .then(route)
      .then(
        (r) => json(res, 200, { ok: true, ...(r as object) }),
        (err) => json(res, 400, { error: 'BadRequest', message: String(err?.message ?? err) }),
      );
  });
  await new Promise<void>((ok) => control.listen(0, LOOPBACK, () => ok()));
  stops.push(() => new Promise<void>((ok) => (control.closeAllConnections(), control.close(() => ok()))));
  const controlUrl = `http://${LOOPBACK}:${(control.address() as AddressInfo).port}`;

  ready({
    pdsUrl,
    plcUrl,
    appviewUrl,
    ozoneUrl,
    ozoneDid,
    controlUrl,
    moderator: { did: moderator.did, handle: moderator.handle, password: moderator.password },
    nonModerator: { did: nonModerator.did, handle: nonModerator.handle, password: nonModerator.password },
    users,
    rateLimits: rateLimits ? { enabled: true, bypassHeader: 'x-ratelimit-bypass', bypassKey: RATE_LIMIT_BYPASS_KEY } : { enabled: false },
    startupMs: Math.round(performance.now()), // since this process started
    versions: {
      '@atproto/dev-env': version('@atproto/dev-env'),
      '@atproto/ozone': version('@atproto/ozone'),
      '@atproto/pds': version('@atproto/pds'),
      '@atproto/bsky': version('@atproto/bsky'),
      '@did-plc/server': version('@did-plc/server'),
    },
  });
} catch (err) {
  await fail(err);
}

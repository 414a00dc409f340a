/**
 * Deterministic synthetic messages shaped like atkafka's per-operation JSON
 * (src/format/atkafka.ts formatOperation): key = author DID, value = JSON of
 * 400-1200 bytes with incompressible CIDs/rkeys and word-salad text, so zstd
 * sees roughly what it sees on the real firehose.
 */

export interface BenchMessage {
  key: Buffer;
  value: Buffer;
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const WORDS = (
  'the a to and of in is it you that for on this with be are was just have not so my but like what ' +
  'at can all do me one get your if about out up new now from more people time day good know think ' +
  'bluesky post today love really going want see would make here they will there back still great ' +
  'first thread art photo music game world news work night week year thanks lol yes need right much'
).split(' ');
const COLLECTIONS = [
  'app.bsky.feed.like',
  'app.bsky.feed.post',
  'app.bsky.feed.repost',
  'app.bsky.graph.follow',
] as const;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeDids(count: number, seed = 1): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = 'did:plc:';
    for (let j = 0; j < 24; j++) s += B32[Math.floor(r() * 32)];
    out.push(s);
  }
  return out;
}

export function makeMessages(count: number, dids: string[], seed = 2): BenchMessage[] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const b32 = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += B32[Math.floor(r() * 32)];
    return s;
  };
  const cid = (): string => 'bafyrei' + b32(52);
  const tid = (): string => '3l' + b32(11);
  const base = Date.UTC(2026, 6, 4, 12, 0, 0);
  const out: BenchMessage[] = [];
  for (let i = 0; i < count; i++) {
    const did = pick(dids);
    const collection = pick(COLLECTIONS);
    const rkey = tid();
    const createdAt = new Date(base + i * 7).toISOString();
    const target = 400 + Math.floor(r() * 800);
    const subject = { uri: `at://${pick(dids)}/app.bsky.feed.post/${tid()}`, cid: cid() };
    const record: Record<string, unknown> = { $type: collection, createdAt };
    if (collection === 'app.bsky.graph.follow') record.subject = pick(dids);
    else if (collection !== 'app.bsky.feed.post') record.subject = subject;
    else record.langs = ['en'];
    const doc = {
      did,
      timestamp: createdAt,
      eventMetadata: null,
      operation: {
        action: 'create',
        collection,
        rkey,
        uri: `at://${did}/${collection}/${rkey}`,
        cid: cid(),
        path: `${collection}/${rkey}`,
        record,
      },
    };
    let value = JSON.stringify(doc);
    if (value.length < target) {
      // Pad with text (a post body, or an extra field on the other kinds).
      let text = '';
      while (value.length + text.length + 12 < target) text += pick(WORDS) + ' ';
      if (collection === 'app.bsky.feed.post') record.text = text.trimEnd();
      else record.via = text.trimEnd();
      value = JSON.stringify(doc);
    }
    out.push({ key: Buffer.from(did), value: Buffer.from(value) });
  }
  return out;
}

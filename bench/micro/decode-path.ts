// The decode thread's work per op (decode, CAR, record checks, sha256, JSON) on the corpus, in CPU time,
// for this checkout or another one (A/B): node bench/micro/decode-path.ts [path/to/other/checkout]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { corpusFrames } from '../../test/support/corpus.ts';

const root = resolve(process.argv[2] ?? new URL('../..', import.meta.url).pathname);
const mod = (await import(pathToFileURL(`${root}/src/decode/relay-frame.ts`).href)) as {
  decodeRelayPieces?: (f: Uint8Array, d: Date) => Iterable<{ kind: string; messages?: unknown[] }>;
  decodeRelayFrame: (f: Uint8Array, d: Date) => { kind: string; messages?: unknown[] };
};
const frames = corpusFrames();
const pieces = mod.decodeRelayPieces;
const decode = pieces
  ? (f: Uint8Array, d: Date) => {
      let k = 0;
      for (const p of pieces(f, d)) k += p.messages?.length ?? 0;
      return k;
    }
  : (f: Uint8Array, d: Date) => mod.decodeRelayFrame(f, d).messages?.length ?? 0;
const ROUNDS = Number(process.env.N ?? 400);
let best = Infinity;
for (let w = 0; w < 5; w++) {
  const c0 = process.cpuUsage();
  let ops = 0;
  const now = new Date();
  for (let i = 0; i < ROUNDS; i++) for (const f of frames) ops += decode(f, now);
  const c = process.cpuUsage(c0);
  // The first two passes warm the JIT up.
  if (w >= 2) best = Math.min(best, (c.user + c.system) / ops);
}
console.log(`${root}: ${best.toFixed(2)} us CPU per op (best of 3)`);

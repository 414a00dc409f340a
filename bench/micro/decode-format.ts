// Decode + verify + format cost per op on the corpus, no I/O: node bench/micro/decode-format.ts (N=1000 for more rounds)
import { decodeFrame } from '../../src/atproto/frame.ts';
import { commitOps } from '../../src/atproto/commit-ops.ts';
import { formatOperation } from '../../src/format/atkafka.ts';
import { corpusFrames } from '../../test/support/corpus.ts';
const frames = corpusFrames();
let n = 0, bytes = 0;
const N = Number(process.env.N ?? 100);
for (let w = 0; w < 2; w++) {
const t0 = performance.now();
for (let i = 0; i < N; i++) for (const f of frames) {
  const e = decodeFrame(f);
  if (e.kind === 'commit') for (const r of commitOps(e)) if (r.ok) { const s = formatOperation(e.repo, e.time, r.op); bytes += s.length; n++; const b = Buffer.from(s); }
}
const ms = performance.now() - t0;
console.log(`${n} ops in ${ms.toFixed(0)} ms = ${(ms*1000/ (N*150)).toFixed(2)} us/op`);
n=0;
}

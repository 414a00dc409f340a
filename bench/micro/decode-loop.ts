// The decode and format path alone, ROUNDS passes over the corpus (150 frames, 150 ops), for
// bench/micro/decode-instructions.ts to count instructions under callgrind. Prints the ops decoded.
//   node bench/micro/decode-loop.ts ROUNDS [atkafka|jetstream]
import { decodeRelayPieces, frameFormatter, PIECE_LIMITS, type OutputFormat } from '../../src/decode/relay-frame.ts';
import { corpusFrames } from '../../test/support/corpus.ts';

const rounds = Number(process.argv[2] ?? 10);
const format = (process.argv[3] ?? 'atkafka') as OutputFormat;
const frames = corpusFrames();
const formatter = frameFormatter(format);
let ops = 0;
const now = new Date();
for (let r = 0; r < rounds; r++) {
  for (const f of frames) for (const p of decodeRelayPieces(f, now, PIECE_LIMITS, undefined, formatter)) if (p.kind === 'event') ops += p.messages.length;
}
process.stdout.write(`${ops}\n`);

// Instructions per op of the decode and format path (bench/micro/decode-loop.ts) under valgrind's
// callgrind: a figure that, unlike CPU seconds, does not change with the machine or its load (issue
// 13). Two runs of different length; their difference removes Node's startup and the first JIT
// warm-up, leaving the steady cost of an op.
//   node bench/micro/decode-instructions.ts [--short 10] [--long 40] [--format atkafka|jetstream]
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    short: { type: 'string', default: '10' },
    long: { type: 'string', default: '40' },
    format: { type: 'string', default: 'atkafka' },
  },
});
const LOOP = fileURLToPath(new URL('./decode-loop.ts', import.meta.url));

function count(rounds: number): { instructions: number; ops: number } {
  // JIT code is written at run time: valgrind must check for self-modifying code outside files.
  const r = spawnSync('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', '--callgrind-out-file=/dev/null', process.execPath, LOOP, String(rounds), values.format], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const m = /Collected : (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`valgrind failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return { instructions: Number(m[1]), ops: Number(r.stdout.trim()) };
}

const version = execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim();
const a = count(Number(values.short));
const b = count(Number(values.long));
const per = (b.instructions - a.instructions) / (b.ops - a.ops);
console.log(`${version}, Node ${process.version}, format ${values.format}`);
console.log(`  ${values.short} rounds: ${a.instructions.toLocaleString()} instructions, ${a.ops} ops`);
console.log(`  ${values.long} rounds: ${b.instructions.toLocaleString()} instructions, ${b.ops} ops`);
console.log(`  decode + format: ${Math.round(per).toLocaleString()} instructions per op (the difference over ${b.ops - a.ops} ops)`);

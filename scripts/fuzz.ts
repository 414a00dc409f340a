// `npm run fuzz`: seeded mutations of real relay frames through atkafka's pure
// decoder (decodeRelayFrame), in-process, each checked for crashes, broken
// properties (JSON, record vs CID) and disagreement with an independent oracle.
//
//   npm run fuzz -- --seed 42 --iterations 100000 --minutes 5
//   npm run fuzz -- --families record,car --iterations 5000
//   npm run fuzz -- --replay test/fixtures/fuzz-seeds     # only the saved seeds
//
// The first input of every new crash/inconsistency/disagreement signature is
// saved as test/fixtures/fuzz-seeds/<family>-<hash>.bin (--no-save: don't).
// Exit status: 0 clean, 1 any crash, inconsistency or disagreement, 2 bad flags.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { checkFrame, type Finding } from '../test/support/fuzz-check.ts';
import { accepted } from '../test/support/fuzz-divergences.ts';
import { FAMILIES, loadSeedFrames, mutants, type Mutant } from '../test/support/fuzz-mutate.ts';
import { saveSeeds, SEEDS_DIR } from '../test/support/fuzz-seeds.ts';

const USAGE = 'usage: npm run fuzz -- [--seed N] [--iterations N] [--minutes M] [--families a,b] [--no-save] [--replay FILE|DIR] [--verbose]';

const OPTIONS = {
  seed: { type: 'string', default: '1' },
  iterations: { type: 'string', default: '100000' },
  minutes: { type: 'string' },
  families: { type: 'string' },
  'no-save': { type: 'boolean', default: false },
  replay: { type: 'string' },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

let args: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values'];
try {
  args = parseArgs({ options: OPTIONS, strict: true }).values;
} catch (err) {
  console.error(`fuzz: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.log(`${USAGE}\nfamilies: ${Object.keys(FAMILIES).join(', ')}`);
  process.exit(0);
}
const seed = Number(args.seed);
const iterations = Number(args.iterations);
const minutes = args.minutes === undefined ? Infinity : Number(args.minutes);
const families = args.families?.split(',').map((s) => s.trim()).filter(Boolean);
if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(iterations) || iterations < 0 || !(minutes > 0)) {
  console.error(`fuzz: --seed and --iterations take integers, --minutes a positive number\n${USAGE}`);
  process.exit(2);
}
for (const f of families ?? []) {
  if (!(f in FAMILIES)) {
    console.error(`fuzz: no family "${f}" (have ${Object.keys(FAMILIES).join(', ')})`);
    process.exit(2);
  }
}

interface Seen {
  finding: Finding;
  count: number;
  /** The smallest input that showed it. */
  input: Mutant;
  at: number;
}

const perFamily = new Map<string, number>();
const perVerdict = new Map<string, number>();
const invalidByReason = new Map<string, number>();
const reasonMismatches = new Map<string, number>();
const seen = new Map<string, Seen>();
let undecided = 0;
let done = 0;

const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

function run(input: Mutant, at: number): void {
  bump(perFamily, input.family);
  const r = checkFrame(input.bytes);
  bump(perVerdict, r.verdict.kind);
  if (r.verdict.kind === 'undecided') {
    undecided++;
    if (args.verbose) console.error(`undecided (${input.family}/${input.variant}): ${r.verdict.why}`);
  }
  if (r.result?.kind === 'invalid') bump(invalidByReason, r.result.skipped.reason);
  if (r.result?.kind === 'event') for (const s of r.result.skipped) bump(invalidByReason, s.reason);
  for (const m of r.reasonMismatches) bump(reasonMismatches, m);
  for (const f of r.findings) {
    const s = seen.get(f.signature);
    if (s === undefined) {
      seen.set(f.signature, { finding: f, count: 1, input, at });
      if (args.verbose) console.error(`new ${f.kind} (${input.family}/${input.variant}, input ${at}): ${f.signature}\n  ${f.detail.split('\n')[0]}`);
    } else {
      s.count++;
      if (input.bytes.length < s.input.bytes.length) {
        s.input = input;
        s.at = at;
      }
    }
  }
}

const started = performance.now();
const deadline = Date.now() + minutes * 60_000;
let source: string;
if (args.replay !== undefined) {
  const path = args.replay;
  const files = statSync(path).isDirectory() ? readdirSync(path).filter((n) => n.endsWith('.bin')).sort().map((n) => join(path, n)) : [path];
  source = `replay of ${files.length} seed file(s) from ${path}`;
  for (const file of files) run({ family: file.split('/').pop()!.split('-')[0]!, variant: 'seed-file', bytes: new Uint8Array(readFileSync(file)) }, done++);
} else {
  source = `seed ${seed}, families ${families?.join(',') ?? 'all'}`;
  const seeds = loadSeedFrames();
  let lastReport = Date.now();
  for (const input of mutants(seed, seeds, families)) {
    if (done >= iterations || Date.now() > deadline) break;
    run(input, done++);
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      console.error(`fuzz: ${done} inputs, ${seen.size} distinct findings, ${Math.round(done / ((performance.now() - started) / 1000))} inputs/s`);
    }
  }
}
const seconds = (performance.now() - started) / 1000;

const table = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(8)}  ${k}`).join('\n') || '  (none)';
const byKind = (kind: Finding['kind']) => [...seen.values()].filter((s) => s.finding.kind === kind).sort((a, b) => b.count - a.count);

let saved: string[] = [];
if (!args['no-save'] && args.replay === undefined) {
  saved = saveSeeds(
    [...seen.values()].map((s) => ({
      bytes: s.input.bytes,
      signature: s.finding.signature,
      entry: { family: s.input.family, variant: s.input.variant, foundBy: `npm run fuzz -- --seed ${seed}${families ? ` --families ${families.join(',')}` : ''}, input ${s.at}`, bytes: s.input.bytes.length },
    })),
  );
}

console.log(`\nfuzz summary: ${source}`);
console.log(`inputs: ${done} in ${seconds.toFixed(1)} s (${Math.round(done / seconds)} inputs/s)`);
console.log(`\ninputs per family:\n${table(perFamily)}`);
console.log(`\noracle verdicts:\n${table(perVerdict)}${undecided ? `\n  (${undecided} undecided: the oracle's own cross-check failed; not compared)` : ''}`);
console.log(`\natkafka invalid input by reason (whole frames and single ops):\n${table(invalidByReason)}`);
if (reasonMismatches.size > 0) console.log(`\nsame verdict, other reason (oracle -> atkafka; informational):\n${table(reasonMismatches)}`);
for (const kind of ['crash', 'inconsistent', 'disagreement'] as const) {
  const list = byKind(kind);
  console.log(`\n${kind === 'crash' ? 'crashes' : kind === 'inconsistent' ? 'inconsistencies' : 'disagreements'}: ${list.length} distinct, ${list.reduce((n, s) => n + s.count, 0)} inputs`);
  for (const s of list) {
    console.log(`  ${String(s.count).padStart(6)}  ${s.finding.signature}`);
    console.log(`          e.g. ${s.input.family}/${s.input.variant} (${s.input.bytes.length} bytes, input ${s.at}): ${s.finding.detail.split('\n')[0]!.slice(0, 240)}`);
  }
}
if (saved.length > 0) console.log(`\nnew seed files in ${SEEDS_DIR}:\n${saved.map((n) => `  ${n}`).join('\n')}`);
const open = [...seen.values()].filter((s) => accepted(s.finding) === undefined);
const acceptedSeen = [...seen.values()].filter((s) => accepted(s.finding) !== undefined);
if (acceptedSeen.length > 0) {
  console.log(`\nof these, accepted divergences (test/support/fuzz-divergences.ts): ${acceptedSeen.length} distinct`);
  for (const s of acceptedSeen) console.log(`  ${s.finding.signature}\n          why: ${accepted(s.finding)!.why}`);
}
const failures = open.length;
console.log(failures === 0 ? '\nfuzz: OK' : `\nfuzz: FAILED (${failures} distinct findings)`);
process.exit(failures === 0 ? 0 : 1);

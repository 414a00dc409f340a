// Fuzzing decodeRelayFrame in-process: seeded mutations of the real frames,
// every named hostile record and CAR once, and every saved seed file. For each
// input: no throw, a self-consistent result whose records hash back to their
// CIDs, and the oracle's verdict (test/support/fuzz-oracle.ts). The long run
// is `npm run fuzz`; FUZZ_SEED=N explores other seeds here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { checkFrame, type Finding } from '../support/fuzz-check.ts';
import { accepted } from '../support/fuzz-divergences.ts';
import { carSeeds, carVariants, collectionOf, FAMILIES, hostileRecords, loadSeedFrames, mutants, recordOps, recordSeeds, withCar, withRecord } from '../support/fuzz-mutate.ts';
import { seedFiles } from '../support/fuzz-seeds.ts';
import { prng } from '../support/prng.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 1);
/** Mutations per family: about 3,000 in all, a few seconds here. */
const BUDGET: Record<string, number> = { bitflip: 500, bytes: 400, truncate: 200, type: 700, car: 400, record: 500, seq: 150, splice: 100 };

const seeds = loadSeedFrames();

interface Labelled {
  label: string;
  findings: Finding[];
}

/** One line per distinct signature: how often, and the first input that showed it. */
function report(results: Labelled[]): string[] {
  const by = new Map<string, { n: number; first: string }>();
  for (const { label, findings } of results) {
    for (const f of findings) {
      const e = by.get(f.signature);
      if (e === undefined) by.set(f.signature, { n: 1, first: `${label}: ${f.detail.split('\n')[0]!.slice(0, 300)}` });
      else e.n++;
    }
  }
  return [...by].map(([sig, { n, first }]) => `${n}x ${sig}\n      e.g. ${first}`);
}

function assertClean(results: Labelled[]): void {
  // Knowing divergences are decisions recorded in fuzz-divergences.ts, with their reasons.
  const lines = report(results.map((r) => ({ ...r, findings: r.findings.filter((f) => accepted(f) === undefined) })));
  assert.equal(lines.length, 0, `${lines.length} distinct findings:\n  ${lines.join('\n  ')}`);
}

describe('fuzz decodeRelayFrame', () => {
  it('the real frames: the oracle finds them all valid, and atkafka agrees', () => {
    const results = seeds.map((s, i) => {
      const { findings, verdict } = checkFrame(s.bytes);
      return { label: `frame ${i}`, findings, verdict: verdict.kind };
    });
    assert.deepEqual(results.filter((r) => !['commit', 'identity', 'account', 'sync'].includes(r.verdict)).map((r) => r.label), []);
    assertClean(results);
  });

  for (const [family, n] of Object.entries(BUDGET)) {
    assert.ok(family in FAMILIES);
    it(`${family}: ${n} seeded mutations (seed ${SEED})`, () => {
      const results: Labelled[] = [];
      let i = 0;
      for (const m of mutants(SEED * 1000 + Object.keys(BUDGET).indexOf(family), seeds, [family])) {
        if (i++ >= n) break;
        results.push({ label: `${m.family}/${m.variant} #${i - 1}`, findings: checkFrame(m.bytes).findings });
      }
      assertClean(results);
    });
  }

  it('every hostile record (deep, wide, odd CBOR, big numbers, odd keys), each under a correct CID', () => {
    const seed = recordSeeds(seeds)[0]!;
    const op = recordOps(seed)[0]!;
    const results = hostileRecords(collectionOf(seed, op)).map(([name, make]) => ({ label: `record/${name}`, findings: checkFrame(withRecord(seed, op, make())).findings }));
    assertClean(results);
  });

  it('every hostile CAR, in a #commit and in a #sync', () => {
    const r = prng(SEED);
    const commit = carSeeds(seeds).find((s) => s.type === '#commit')!;
    const sync = carSeeds(seeds).find((s) => s.type === '#sync')!;
    const results = [commit, sync].flatMap((seed) => carVariants(r, seed).map(([name, make]) => ({ label: `car/${seed.type}-${name}`, findings: checkFrame(withCar(seed, make())).findings })));
    assertClean(results);
  });
});

describe('fuzz seeds (test/fixtures/fuzz-seeds)', () => {
  for (const { name, bytes, entry } of seedFiles()) {
    it(`${name}${entry ? `: once ${entry.signatures.join(', ')}` : ''}`, () => {
      assertClean([{ label: name, findings: checkFrame(bytes).findings }]);
    });
  }
});

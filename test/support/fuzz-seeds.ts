// The fuzz seed corpus: inputs that once crashed atkafka's decoder or made it
// disagree with the oracle, kept as files so every test run replays them.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SEEDS_DIR = fileURLToPath(new URL('../fixtures/fuzz-seeds/', import.meta.url));
const INDEX = 'index.json';

export interface SeedEntry {
  /** The findings it showed when it was saved (crash:..., disagree:..., inconsistent:...). */
  signatures: string[];
  family: string;
  variant: string;
  /** How the fuzzer came to it, e.g. "npm run fuzz -- --seed 42, input 1234". */
  foundBy: string;
  bytes: number;
}

export type SeedIndex = Record<string, SeedEntry>;

export function readSeedIndex(dir = SEEDS_DIR): SeedIndex {
  const file = join(dir, INDEX);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SeedIndex) : {};
}

/** Every seed file with its index entry (undefined for a file added by hand). */
export function seedFiles(dir = SEEDS_DIR): { name: string; bytes: Uint8Array; entry: SeedEntry | undefined }[] {
  if (!existsSync(dir)) return [];
  const index = readSeedIndex(dir);
  return readdirSync(dir)
    .filter((n) => n.endsWith('.bin'))
    .sort()
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(dir, name))), entry: index[name] }));
}

export function seedName(family: string, bytes: Uint8Array): string {
  return `${family}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.bin`;
}

/**
 * Saves one input per new signature; a signature the index already has keeps
 * its file, so reruns do not pile up near-duplicates. Returns the names written.
 */
export function saveSeeds(found: { bytes: Uint8Array; signature: string; entry: Omit<SeedEntry, 'signatures'> }[], dir = SEEDS_DIR): string[] {
  mkdirSync(dir, { recursive: true });
  const index = readSeedIndex(dir);
  const known = new Set(Object.values(index).flatMap((e) => e.signatures));
  const written: string[] = [];
  for (const { bytes, signature, entry } of found) {
    if (known.has(signature)) continue;
    const name = seedName(entry.family, bytes);
    const existing = index[name];
    if (existing !== undefined) existing.signatures.push(signature);
    else {
      writeFileSync(join(dir, name), bytes);
      index[name] = { signatures: [signature], ...entry };
      written.push(name);
    }
    known.add(signature);
  }
  if (known.size > 0) {
    const sorted = Object.fromEntries(Object.entries(index).sort(([a], [b]) => a.localeCompare(b)));
    writeFileSync(join(dir, INDEX), `${JSON.stringify(sorted, null, 2)}\n`);
  }
  return written;
}

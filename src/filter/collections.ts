/**
 * Which record collections to produce. Plain data (it crosses into the
 * decode threads as workerData), built once from the flags.
 *
 * `app.bsky.*` names a namespace: `app.bsky` itself and every NSID under it.
 * Anything else is one NSID, matched exactly.
 */
export interface CollectionFilter {
  mode: 'watched' | 'ignored';
  exact: string[];
  /** Namespaces, each with its trailing dot (`app.bsky.`). */
  prefixes: string[];
}

const SEGMENT = /^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

export class FilterPatternError extends Error {
  override name = 'FilterPatternError';
}

/** Throws FilterPatternError naming the bad pattern. */
export function collectionFilter(mode: 'watched' | 'ignored', patterns: string[]): CollectionFilter {
  const exact = new Set<string>();
  const prefixes = new Set<string>();
  for (const raw of patterns) {
    const pattern = raw.trim();
    const namespace = pattern.endsWith('.*');
    const body = namespace ? pattern.slice(0, -2) : pattern;
    const segments = body.split('.');
    // A whole NSID has at least three segments; a namespace may be shorter (`app.*`).
    const ok = body.length > 0 && body.length <= 317 && segments.every((s) => SEGMENT.test(s)) && (namespace || segments.length >= 3);
    if (!ok) {
      throw new FilterPatternError(
        `"${raw}" is not a collection NSID (like app.bsky.feed.post) or a namespace ending in .* (like app.bsky.*)`,
      );
    }
    if (namespace) prefixes.add(`${body}.`);
    else exact.add(body);
  }
  return { mode, exact: [...exact], prefixes: [...prefixes] };
}

/** Compiled for the hot path: one Set lookup, then the few namespaces. */
export function collectionMatcher(filter: CollectionFilter): (collection: string) => boolean {
  const exact = new Set(filter.exact);
  for (const p of filter.prefixes) exact.add(p.slice(0, -1));
  const prefixes = filter.prefixes;
  const keepOnMatch = filter.mode === 'watched';
  return (collection) => {
    let match = exact.has(collection);
    for (let i = 0; !match && i < prefixes.length; i++) match = collection.startsWith(prefixes[i]!);
    return match === keepOnMatch;
  };
}

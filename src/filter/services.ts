import { FilterPatternError } from './collections.ts';

/**
 * Which PDS hosts to produce events of, matched against the hostname of the
 * `#atproto_pds` endpoint in the account's DID document.
 *
 * `*.bsky.network` matches `bsky.network` and every host under it. A plain
 * host matches the same way, as in the Go version (which strips `*.` and
 * compares by suffix), so a flag value that worked there keeps its meaning.
 */
export interface ServiceFilter {
  mode: 'watched' | 'ignored';
  hosts: string[];
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function serviceFilter(mode: 'watched' | 'ignored', patterns: string[]): ServiceFilter {
  const hosts = new Set<string>();
  for (const raw of patterns) {
    const host = raw.trim().toLowerCase().replace(/^\*\./, '');
    const ok = host.length > 0 && host.length <= 253 && host.split('.').every((l) => LABEL.test(l));
    if (!ok) throw new FilterPatternError(`"${raw}" is not a host name (like pds.example.com) or a wildcard (like *.bsky.network)`);
    hosts.add(host);
  }
  return { mode, hosts: [...hosts] };
}

/** True when an event of an account on `hostname` is produced. Unknown hosts ('') pass: dropping them could lose events. */
export function serviceMatcher(filter: ServiceFilter): (hostname: string) => boolean {
  const hosts = filter.hosts;
  const keepOnMatch = filter.mode === 'watched';
  return (hostname) => {
    if (hostname === '') return true;
    let match = false;
    for (let i = 0; !match && i < hosts.length; i++) {
      const h = hosts[i]!;
      match = hostname === h || (hostname.length > h.length && hostname.endsWith(h) && hostname[hostname.length - h.length - 1] === '.');
    }
    return match === keepOnMatch;
  };
}

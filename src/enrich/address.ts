import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * The SSRF guard for hosts that strangers choose: a did:web names its own
 * host and a handle names its well-known host, so without a check anyone
 * could make this process fetch from the operator's internal network.
 */
const blocked = new BlockList();
// IPv4: "this network", RFC 1918, loopback, CGNAT, link-local (cloud metadata lives at
// 169.254.169.254), IETF protocol assignments, benchmarking, multicast, reserved, broadcast.
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
// IPv6: unspecified, loopback, unique local, link-local, multicast. IPv4-mapped addresses
// (::ffff:10.0.0.1) are checked against the IPv4 rules by BlockList itself; NAT64 and 6to4
// carry an IPv4 address a gateway would reach, so they are unwrapped below.
blocked.addAddress('::', 'ipv6');
blocked.addAddress('::1', 'ipv6');
blocked.addSubnet('fc00::', 7, 'ipv6');
blocked.addSubnet('fe80::', 10, 'ipv6');
blocked.addSubnet('ff00::', 8, 'ipv6');

/** True for an address a public identity host must not resolve to. */
export function isDisallowedAddress(address: string): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 4) return blocked.check(bare, 'ipv4');
  if (family !== 6) return true;
  if (blocked.check(bare, 'ipv6')) return true;
  const embedded = embeddedIpv4(bare);
  return embedded !== undefined && blocked.check(embedded, 'ipv4');
}

/** The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address. */
function embeddedIpv4(v6: string): string | undefined {
  const groups = expandIpv6(v6);
  if (groups === undefined) return undefined;
  let hi: number;
  let lo: number;
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0)) {
    hi = groups[6]!;
    lo = groups[7]!;
  } else if (groups[0] === 0x2002) {
    hi = groups[1]!;
    lo = groups[2]!;
  } else {
    return undefined;
  }
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

function expandIpv6(v6: string): number[] | undefined {
  let text = v6.split('%')[0]!;
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad !== null) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left, right] = text.split('::') as [string, string | undefined];
  const head = left === '' ? [] : left.split(':');
  const tail = right === undefined || right === '' ? [] : right.split(':');
  const fill = right === undefined ? 0 : 8 - head.length - tail.length;
  const groups = [...head, ...Array<string>(Math.max(0, fill)).fill('0'), ...tail].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g)) ? groups : undefined;
}

export class BlockedAddressError extends Error {
  readonly code = 'EBLOCKEDADDRESS';
  constructor(hostname: string, address: string) {
    const what = hostname === address ? address : `${hostname} resolves to ${address}, which`;
    super(`${what} is a loopback, private or link-local address (refused; allowPrivateAddresses permits it)`);
    this.name = 'BlockedAddressError';
  }
}

/**
 * A `lookup` for http.request that refuses the host when any of its
 * addresses is disallowed, and hands the socket only the addresses it
 * checked: the connection goes where the check looked, so a DNS answer that
 * changes between a check and the connect (rebinding) cannot slip through.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints ?? 0 }, (err, addresses: LookupAddress[]) => {
    if (err) {
      callback(err, '', 0);
      return;
    }
    const bad = addresses.find((a) => isDisallowedAddress(a.address));
    const first = addresses[0];
    if (bad !== undefined || first === undefined) {
      callback(new BlockedAddressError(hostname, bad?.address ?? 'no address'), '', 0);
      return;
    }
    if (options.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
};

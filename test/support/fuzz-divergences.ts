// Where atkafka knowingly judges otherwise than the fuzz oracle, and why. Each entry is a
// decision, not a tolerance: a finding matching one is reported as "accepted" and fails
// nothing; anything else the oracle and atkafka disagree on fails the fuzz tests. Remove an
// entry when atkafka changes to agree.
import type { Finding } from './fuzz-check.ts';

export interface Divergence {
  signature: RegExp;
  why: string;
}

export const ACCEPTED_DIVERGENCES: readonly Divergence[] = [
  { signature: /\.seq\.zero:/, why: 'seq 0 is taken like any other seq: no relay sends it, and refusing it would protect nothing' },
  { signature: /\.(message|handle|status)\.null:/, why: 'null for an optional field is read as absent, as lenient decoders (the Go version\'s) do' },
  { signature: /commit\.ops\.cid\.missing(-on-delete)?:/, why: 'an op without a "cid" key spoils only that op (a delete needs none), not the whole commit' },
  { signature: /op\.path\.syntax:/, why: 'collection and record key syntax is not checked (only collection/rkey shape), as the Go version does not' },
  { signature: /car\.(varint\.(non-minimal|too-long|truncated)|block\.(short|truncated)):/, why: '@atcute/car reads CAR framing leniently; record bytes are still checked against their CID, and a #sync CAR is only used for its commit CID' },
  { signature: /frame\.(body|header)\.float:/, why: 'a frame field written as an integral float (seq 5.0, op 1.0) is read as the integer: @atcute/cbor gives no way to tell, and relays write integers' },
  { signature: /atkafka-skipped:invalid-record:undecodable record: can't decode integers beyond safe integer range/, why: 'integers beyond 2^53 are refused: JSON consumers would read them as doubles and lose precision silently' },
];

export function accepted(f: Finding): Divergence | undefined {
  return ACCEPTED_DIVERGENCES.find((d) => d.signature.test(f.signature));
}

/**
 * A small flag parser with the conventions of the Go at-kafka's CLI (urfave/cli):
 * `--name value` or `--name=value`, booleans as `--name` or `--name=false`,
 * lists as repeated flags or comma lists, each flag also read from env vars.
 * Flags may appear anywhere on the line (a superset of urfave's positions).
 */
export type FlagKind = 'string' | 'bool' | 'int' | 'list' | 'duration';

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  env: string[];
  help: string;
  default?: string;
  required?: boolean;
  /** never printed, never logged */
  secret?: boolean;
  /** a flag of the Go version that this version does not implement yet */
  notYet?: boolean;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagValue = string | boolean | number | string[];

export interface ParsedArgs {
  positionals: string[];
  /** flag name -> raw value(s), flags before env */
  raw: Map<string, string[]>;
  help: boolean;
}

export function parseArgs(argv: string[], specs: FlagSpec[]): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const raw = new Map<string, string[]>();
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help' || arg === '-help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new UsageError(`unknown flag --${name}`);
    let value: string;
    if (eq !== -1) value = body.slice(eq + 1);
    else if (spec.kind === 'bool') value = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`flag --${name} needs a value`);
      value = next;
      i++;
    }
    const list = raw.get(name) ?? [];
    list.push(value);
    raw.set(name, list);
  }
  return { positionals, raw, help };
}

/**
 * Resolves every flag: command line, then env vars, then default.
 *
 * An env var set to the empty string is not ignored (an unfilled template,
 * `ATKAFKA_DECODE_THREADS=${THREADS}`, must not quietly become the default):
 * a text or list flag takes the empty value and a switch is off, both as in
 * the Go version (urfave/cli v2), while a number or a duration, which has no
 * empty value, is refused.
 */
export function resolveFlags(parsed: ParsedArgs, specs: FlagSpec[], env: NodeJS.ProcessEnv): Map<string, FlagValue | undefined> {
  const out = new Map<string, FlagValue | undefined>();
  for (const spec of specs) {
    let values = parsed.raw.get(spec.name);
    let source = `--${spec.name}`;
    if (values === undefined) {
      for (const name of spec.env) {
        const v = env[name];
        if (v !== undefined) {
          values = [v];
          source = name;
          break;
        }
      }
    }
    if (values !== undefined && spec.notYet) {
      // Empty or off is how the Go version's configs say "feature not used"; only a real value asks for it.
      if (!values.every((v) => ['', 'false', '0', 'f', 'no'].includes(v.trim().toLowerCase()))) {
        throw new UsageError(`${source} (from the Go at-kafka) is not implemented in this version yet`);
      }
      values = undefined;
    }
    if (values !== undefined && source !== `--${spec.name}` && values[0]!.trim() === '') {
      if (spec.kind === 'int' || spec.kind === 'duration') {
        const fallback = spec.default !== undefined ? ` (${spec.default})` : '';
        throw new UsageError(`${source} is set but empty; unset it to use the default${fallback} or give a value`);
      }
      if (spec.kind === 'bool') values = ['false'];
    }
    if (values === undefined && spec.default !== undefined) {
      values = [spec.default];
      source = `default of --${spec.name}`;
    }
    if (values === undefined) {
      if (spec.required) throw new UsageError(`missing required flag --${spec.name} (or env ${spec.env.join(' / ')})`);
      out.set(spec.name, undefined);
      continue;
    }
    const value = convert(spec, values, source);
    if (spec.required && (value === '' || (Array.isArray(value) && value.length === 0))) {
      throw new UsageError(source === `--${spec.name}` ? `--${spec.name} is empty; it is required` : `${source} is empty; --${spec.name} is required`);
    }
    out.set(spec.name, value);
  }
  return out;
}

function convert(spec: FlagSpec, values: string[], source: string): FlagValue {
  const last = values[values.length - 1]!;
  switch (spec.kind) {
    case 'string':
      return last;
    case 'bool': {
      const v = last.toLowerCase();
      if (['true', '1', 't', 'yes'].includes(v)) return true;
      if (['false', '0', 'f', 'no'].includes(v)) return false;
      throw new UsageError(`${source}: "${spec.secret ? '***' : last}" is not a boolean`);
    }
    case 'int': {
      if (!/^-?\d+$/.test(last.trim())) throw new UsageError(`${source}: "${last}" is not an integer`);
      const n = Number(last);
      if (!Number.isSafeInteger(n)) throw new UsageError(`${source}: "${last}" is out of range`);
      return n;
    }
    case 'duration':
      return parseDuration(last, source);
    case 'list':
      return values
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter((v) => v !== '');
  }
}

const MAX_DURATION_MS = 2 ** 31 - 1;

/** Go-style durations ("500ms", "30s", "1m30s", "2h"); a bare number is milliseconds. */
export function parseDuration(text: string, source = 'duration'): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    if (!(Number(t) <= MAX_DURATION_MS)) throw new UsageError(`${source}: "${text}" is longer than ${MAX_DURATION_MS} ms (about 596h)`);
    return Number(t);
  }
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = re.exec(t)) !== null) {
    total += Number(match[1]) * unit[match[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed !== t.length || t.length === 0) throw new UsageError(`${source}: "${text}" is not a duration (like 500ms, 30s, 2m)`);
  // Node's timers take at most 2^31-1 ms and run a longer one after 1 ms instead.
  if (!(total <= MAX_DURATION_MS)) throw new UsageError(`${source}: "${text}" is longer than ${MAX_DURATION_MS} ms (about 596h)`);
  return Math.round(total);
}

export function formatHelp(usage: string, description: string, groups: { title: string; flags: FlagSpec[] }[]): string {
  const lines = [`Usage: ${usage}`, '', description, ''];
  for (const group of groups) {
    lines.push(`${group.title}:`);
    for (const f of group.flags) {
      if (f.notYet) continue;
      const arg = f.kind === 'bool' ? '' : f.kind === 'list' ? ' a,b,...' : f.kind === 'duration' ? ' DURATION' : f.kind === 'int' ? ' N' : ' VALUE';
      lines.push(`  --${f.name}${arg}`);
      const meta = [
        f.env.length ? `env ${f.env.join(', ')}` : undefined,
        f.required ? 'required' : f.default !== undefined ? `default ${f.default === '' ? '""' : f.default}` : undefined,
      ].filter(Boolean);
      lines.push(`      ${f.help}${meta.length ? ` [${meta.join('; ')}]` : ''}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

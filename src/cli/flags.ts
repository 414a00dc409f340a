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

/** Resolves every flag: command line, then env vars, then default. */
export function resolveFlags(parsed: ParsedArgs, specs: FlagSpec[], env: NodeJS.ProcessEnv): Map<string, FlagValue | undefined> {
  const out = new Map<string, FlagValue | undefined>();
  for (const spec of specs) {
    let values = parsed.raw.get(spec.name);
    let source = `--${spec.name}`;
    if (values === undefined) {
      for (const name of spec.env) {
        const v = env[name];
        if (v !== undefined && v !== '') {
          values = [v];
          source = name;
          break;
        }
      }
    }
    if (values !== undefined && spec.notYet) {
      throw new UsageError(`${source} (from the Go at-kafka) is not implemented in this version yet`);
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
    out.set(spec.name, convert(spec, values, source));
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

/** Go-style durations ("500ms", "30s", "1m30s", "2h"); a bare number is milliseconds. */
export function parseDuration(text: string, source = 'duration'): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
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

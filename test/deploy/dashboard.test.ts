// The Grafana dashboard deploy/grafana/dashboards/atkafka.json, checked without a Grafana (neither
// Debian nor the registries here ship one): its structure as Grafana lays it out, every metric name in
// every PromQL expression against what atkafka really registers, and coverage of what an operator of
// each mode (relay, tap, ozone, jetstream, wikimedia) needs to see.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import type { Registry } from 'prom-client';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DASHBOARD = join(ROOT, 'deploy/grafana/dashboards/atkafka.json');
const ROWS = ['Overview', 'Kafka', 'Relay', 'Tap', 'Ozone', 'Jetstream', 'Wikimedia', 'Enrichment', 'Process'];

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  collapsed?: boolean;
  datasource?: { type?: string; uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

/** A panel with the row it sits in. */
interface Placed {
  panel: Panel;
  row: string;
}

// ------------------------------------------------------------------ PromQL tokenizer

/** PromQL functions (called with parentheses). An unknown name followed by `(` is a typo, not a metric. */
const FUNCTIONS = new Set([
  'abs', 'absent', 'absent_over_time', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'avg_over_time', 'ceil',
  'changes', 'clamp', 'clamp_max', 'clamp_min', 'cos', 'cosh', 'count_over_time', 'day_of_month', 'day_of_week',
  'day_of_year', 'days_in_month', 'deg', 'delta', 'deriv', 'exp', 'floor', 'histogram_avg', 'histogram_count',
  'histogram_fraction', 'histogram_quantile', 'histogram_stddev', 'histogram_stdvar', 'histogram_sum', 'holt_winters',
  'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'last_over_time', 'ln', 'log10', 'log2',
  'mad_over_time', 'max_over_time', 'min_over_time', 'minute', 'month', 'pi', 'predict_linear', 'present_over_time',
  'quantile_over_time', 'rad', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sin', 'sinh', 'sort', 'sort_by_label',
  'sort_by_label_desc', 'sort_desc', 'sqrt', 'stddev_over_time', 'stdvar_over_time', 'sum_over_time', 'tan', 'tanh',
  'time', 'timestamp', 'vector', 'year',
]);
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
/** Keywords followed by a parenthesised list of label names (which are not metrics). */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);
/** Functions whose argument must be a counter. */
const COUNTER_FUNCTIONS = new Set(['rate', 'irate', 'increase', 'resets']);

/** One vector selector of an expression: its metric, its label matchers, and the function around it. */
interface Selector {
  metric: string;
  matchers: string;
  enclosing: string | undefined;
}

interface Parsed {
  selectors: Selector[];
  functions: string[];
}

/**
 * Reads a PromQL expression (with Grafana variables such as $__rate_interval left in) into its
 * vector selectors and function calls. Strings, durations in brackets, numbers and operators are
 * skipped; label lists after by/without/on/ignoring/group_left/group_right are not metrics.
 */
function parsePromql(expr: string): Parsed {
  const selectors: Selector[] = [];
  const functions: string[] = [];
  const stack: (string | undefined)[] = []; // the function each open parenthesis belongs to
  let i = 0;
  const n = expr.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(expr[i]!)) i++;
  };
  const readUntil = (close: string): string => {
    const start = i;
    let quote: string | undefined;
    for (; i < n; i++) {
      const c = expr[i]!;
      if (quote !== undefined) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
      } else if (c === '\\' && /["'`]/.test(close)) {
        i++; // an escape inside the string being read
      } else if (c === close) {
        i++;
        return expr.slice(start, i - 1);
      } else if (c === '"' || c === "'" || c === '`') quote = c;
    }
    throw new Error(`unclosed ${close} in ${expr}`);
  };
  let pendingFunction: string | undefined;
  while (i < n) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      i++;
      readUntil(c);
    } else if (c === '[') {
      i++;
      readUntil(']');
    } else if (c === '{') {
      throw new Error(`a selector without a metric name in ${expr}`);
    } else if (c === '(') {
      i++;
      stack.push(pendingFunction);
      pendingFunction = undefined;
    } else if (c === ')') {
      i++;
      if (stack.length === 0) throw new Error(`unbalanced ) in ${expr}`);
      stack.pop();
    } else if (/[0-9.]/.test(c)) {
      // a number, or a duration (after offset or @)
      const m = /^(0x[0-9a-f]+|([0-9]+(ms|[smhdwy]))+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?)/i.exec(expr.slice(i));
      assert.ok(m, `a number at ${i} in ${expr}`);
      i += m[0].length;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))!;
      const word = m[0];
      i += word.length;
      skipSpace();
      const next = expr[i];
      const lower = word.toLowerCase();
      if (LABEL_LISTS.has(lower)) {
        if (next === '(') {
          i++;
          readUntil(')');
        }
      } else if (KEYWORDS.has(lower)) {
        // an operator or a literal
      } else if (next === '(') {
        assert.ok(FUNCTIONS.has(word) || AGGREGATIONS.has(word), `unknown PromQL function ${word}( in ${expr}`);
        functions.push(word);
        pendingFunction = word;
      } else if (AGGREGATIONS.has(word) && (LABEL_LISTS.has(/^[a-z_]+/i.exec(expr.slice(i))?.[0]?.toLowerCase() ?? ''))) {
        // `sum by (x) (...)`: the aggregation comes after its label list
        functions.push(word);
        const m2 = /^[a-z_]+\s*/i.exec(expr.slice(i))!;
        i += m2[0].length;
        if (expr[i] === '(') {
          i++;
          readUntil(')');
        }
        skipSpace();
        pendingFunction = word;
      } else {
        let matchers = '';
        if (next === '{') {
          i++;
          matchers = readUntil('}');
        }
        selectors.push({ metric: word, matchers, enclosing: stack[stack.length - 1] });
      }
    } else if (c === '$') {
      throw new Error(`a Grafana variable outside a string or a range in ${expr}`);
    } else {
      i++; // an operator or a comma
    }
  }
  assert.equal(stack.length, 0, `unbalanced parentheses in ${expr}`);
  return { selectors, functions };
}

// ------------------------------------------------------------------ the metrics atkafka exports

interface Exported {
  /** Every name a query can use, each with its type: base names, and histograms' _bucket/_sum/_count. */
  series: Map<string, { base: string; type: string; sub?: string }>;
  types: Map<string, string>;
}

/** Every file under src that registers metrics on the project's registry. */
async function metricModules(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith('.ts') && /registers:\s*\[registry\]|collectDefaultMetrics\(/.test(await readFile(path, 'utf8'))) found.push(path);
    }
  };
  await walk(join(ROOT, 'src'));
  return found.sort();
}

async function exportedMetrics(): Promise<Exported> {
  const modules = await metricModules();
  const rel = modules.map((m) => relative(ROOT, m));
  assert.ok(rel.includes('src/telemetry/metrics.ts') && rel.includes('src/enrich/metrics.ts'), `modules registering metrics: ${rel.join(', ')}`);
  for (const m of modules) await import(pathToFileURL(m).href);
  const { registry } = (await import('../../src/telemetry/metrics.ts')) as { registry: Registry };
  const json = await registry.getMetricsAsJSON();
  const series = new Map<string, { base: string; type: string; sub?: string }>();
  const types = new Map<string, string>();
  for (const m of json) {
    const type = String(m.type);
    types.set(m.name, type);
    series.set(m.name, { base: m.name, type });
    if (type === 'histogram' || type === 'summary') {
      for (const sub of type === 'histogram' ? ['bucket', 'sum', 'count'] : ['sum', 'count']) series.set(`${m.name}_${sub}`, { base: m.name, type, sub });
    }
  }
  return { series, types };
}

// ------------------------------------------------------------------ helpers over the dashboard

function placedPanels(d: Dashboard): Placed[] {
  const out: Placed[] = [];
  let row = '';
  for (const p of d.panels) {
    if (p.type === 'row') {
      row = p.title ?? '';
      for (const child of p.panels ?? []) out.push({ panel: child, row });
    } else out.push({ panel: p, row });
  }
  return out;
}

const exprs = (p: Panel): string[] => (p.targets ?? []).map((t) => t.expr ?? '');
const label = (p: Panel) => `panel ${p.id} "${p.title}"`;
const usesVariable = (ds: { uid?: string } | undefined) => ds?.uid === '${datasource}' || ds?.uid === '$datasource';

function overlaps(a: { x: number; y: number; w: number; h: number }, b: { x: number; y: number; w: number; h: number }): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

// ------------------------------------------------------------------ tests

let dashboard: Dashboard;
let placed: Placed[];
let queryPanels: Placed[];
let exported: Exported;

before(async () => {
  dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  placed = placedPanels(dashboard);
  queryPanels = placed.filter((p) => p.panel.type !== 'row' && p.panel.type !== 'text');
  exported = await exportedMetrics();
});

describe('the tokenizer', () => {
  test('finds metrics, not functions, label lists, strings, durations or numbers', () => {
    const p = parsePromql(
      'histogram_quantile(0.99, sum by (le, instance) (rate(foo_seconds_bucket{job=~"$job", x="a{b}"}[$__rate_interval]))) / on (instance) group_left (le) bar + 60 * time() - baz{y=\'(\'} offset 5m',
    );
    assert.deepEqual(
      p.selectors.map((s) => [s.metric, s.enclosing]),
      [
        ['foo_seconds_bucket', 'rate'],
        ['bar', undefined],
        ['baz', undefined],
      ],
    );
    assert.deepEqual(p.functions, ['histogram_quantile', 'sum', 'rate', 'time']);
    assert.deepEqual(parsePromql('sum(rate(a{}[5m])) by (x)').selectors.map((s) => s.metric), ['a']);
    assert.deepEqual(parsePromql('label_replace(c{l="}"}, "l", "(no\\"ne) x", "l", "")').selectors.map((s) => [s.metric, s.matchers, s.enclosing]), [['c', 'l="}"', 'label_replace']]);
    assert.deepEqual(parsePromql('topk(20, max without (le) (b))').selectors.map((s) => [s.metric, s.enclosing]), [['b', 'max']]);
    assert.throws(() => parsePromql('rat(a[5m])'), /unknown PromQL function rat/);
    assert.throws(() => parsePromql('sum(rate(a[5m])'), /unbalanced/);
  });
});

describe('structure', () => {
  test('a dashboard Grafana can load: uid, title, schema version, panels', () => {
    assert.equal(dashboard.uid, 'atkafka');
    assert.equal(typeof dashboard.title, 'string');
    assert.ok(typeof dashboard.schemaVersion === 'number' && dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`);
    assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length > 0);
  });

  test('a datasource variable and job/instance variables that query it', () => {
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    const ds = vars.get('datasource');
    assert.ok(ds, 'a datasource variable');
    assert.equal(ds.type, 'datasource');
    assert.equal(ds.query, 'prometheus');
    for (const name of ['job', 'instance']) {
      const v = vars.get(name);
      assert.ok(v, `a ${name} variable`);
      assert.equal(v.type, 'query');
      assert.ok(usesVariable(v.datasource), `${name} queries \${datasource}`);
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      assert.match(q ?? '', new RegExp(`^label_values\\(.+, ${name}\\)$`));
      const inner = /^label_values\((.+), \w+\)$/.exec(q!)![1]!;
      for (const s of parsePromql(inner).selectors) assert.ok(exported.series.has(s.metric), `variable ${name} reads ${s.metric}, which atkafka exports`);
    }
  });

  test('the rows, in order', () => {
    assert.deepEqual(
      dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title),
      ROWS,
    );
    assert.notEqual(dashboard.panels[0]?.type, undefined);
    assert.equal(dashboard.panels[0]!.type, 'row', 'the first panel is the Overview row');
    for (const row of ROWS) assert.ok(queryPanels.some((p) => p.row === row), `row ${row} has panels`);
  });

  test('panel ids are unique', () => {
    const ids = placed.map((p) => p.panel.id).concat(dashboard.panels.filter((p) => p.type === 'row').map((p) => p.id));
    for (const id of ids) assert.ok(Number.isInteger(id) && id! > 0, `panel id ${id}`);
    assert.equal(new Set(ids).size, ids.length, 'duplicate panel ids');
  });

  test('every panel queries the ${datasource} variable, and every target has an expr and a refId unique in its panel', () => {
    for (const { panel } of queryPanels) {
      assert.ok(usesVariable(panel.datasource), `${label(panel)}: datasource ${JSON.stringify(panel.datasource)}`);
      assert.equal(panel.datasource!.type, 'prometheus', label(panel));
      assert.ok(typeof panel.title === 'string' && panel.title.length > 0, `panel ${panel.id} has a title`);
      assert.ok((panel.targets ?? []).length > 0, `${label(panel)} has targets`);
      const refIds = new Set<string>();
      for (const t of panel.targets!) {
        assert.ok(typeof t.expr === 'string' && t.expr.trim().length > 0, `${label(panel)}: a target without expr`);
        assert.ok(typeof t.refId === 'string' && /^[A-Z]+$/.test(t.refId), `${label(panel)}: refId ${t.refId}`);
        assert.ok(!refIds.has(t.refId), `${label(panel)}: refId ${t.refId} twice`);
        refIds.add(t.refId);
        if (t.datasource !== undefined) assert.ok(usesVariable(t.datasource), `${label(panel)} ${t.refId}: datasource ${JSON.stringify(t.datasource)}`);
      }
    }
  });

  test('every grid position is inside 24 columns, below its row header, and overlaps nothing', () => {
    const layout: { panel: Panel; row: string }[] = [];
    let row = '';
    for (const p of dashboard.panels) {
      if (p.type === 'row') row = p.title ?? '';
      layout.push({ panel: p, row });
    }
    for (const { panel } of [...layout, ...placed]) {
      const g = panel.gridPos;
      assert.ok(g, `${label(panel)} has a gridPos`);
      for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Number.isInteger(g[k]) && g[k] >= 0, `${label(panel)}: gridPos.${k} = ${g[k]}`);
      assert.ok(g.w > 0 && g.h > 0, `${label(panel)}: empty`);
      assert.ok(g.x + g.w <= 24, `${label(panel)}: x ${g.x} + w ${g.w} > 24`);
      if (panel.type === 'row') assert.deepEqual([g.x, g.w, g.h], [0, 24, 1], `${label(panel)}: a row spans the width`);
    }
    // Expanded rows: the whole dashboard is one grid; a collapsed row's children form their own grid.
    const grids = [layout.map((l) => l.panel), ...dashboard.panels.filter((p) => p.type === 'row' && p.collapsed).map((r) => r.panels ?? [])];
    for (const grid of grids) {
      for (let a = 0; a < grid.length; a++) {
        for (let b = a + 1; b < grid.length; b++) assert.ok(!overlaps(grid[a]!.gridPos!, grid[b]!.gridPos!), `${label(grid[a]!)} overlaps ${label(grid[b]!)}`);
      }
    }
    // Every panel of an expanded row lies between its header and the next one.
    const headers = dashboard.panels.filter((p) => p.type === 'row');
    for (const { panel, row: r } of layout) {
      if (panel.type === 'row') continue;
      const h = headers.findIndex((x) => x.title === r);
      assert.ok(h >= 0, `${label(panel)} sits under a row`);
      const top = headers[h]!.gridPos!.y;
      const bottom = headers[h + 1]?.gridPos?.y ?? Infinity;
      assert.ok(panel.gridPos!.y > top && panel.gridPos!.y + panel.gridPos!.h <= bottom, `${label(panel)} lies inside row ${r}`);
    }
  });
});

describe('metric names', () => {
  test('every metric in every expression is one atkafka exports, used as its type allows, on the job and instance chosen', () => {
    let count = 0;
    for (const { panel } of queryPanels) {
      for (const expr of exprs(panel)) {
        const { selectors, functions } = parsePromql(expr);
        assert.ok(selectors.length > 0, `${label(panel)}: no metric in ${expr}`);
        for (const s of selectors) {
          count++;
          const known = exported.series.get(s.metric);
          assert.ok(known, `${label(panel)}: ${s.metric} is not a metric atkafka exports (in ${expr})`);
          assert.match(s.matchers, /job=~"\$job"/, `${label(panel)}: ${s.metric} without job=~"$job"`);
          assert.match(s.matchers, /instance=~"\$instance"/, `${label(panel)}: ${s.metric} without instance=~"$instance"`);
          if (s.enclosing !== undefined && COUNTER_FUNCTIONS.has(s.enclosing)) {
            assert.ok(known.type === 'counter' || known.sub !== undefined, `${label(panel)}: ${s.enclosing}() over ${s.metric}, a ${known.type}`);
          }
          if (s.enclosing === 'deriv' || s.enclosing === 'delta') assert.equal(known.type, 'gauge', `${label(panel)}: ${s.enclosing}() over a ${known.type}`);
          if (known.sub === 'bucket') assert.ok(functions.includes('histogram_quantile') && /sum by \(le[,)]/.test(expr), `${label(panel)}: ${s.metric} outside histogram_quantile(sum by (le) ...)`);
          if (known.type === 'histogram') assert.notEqual(known.sub, undefined, `${label(panel)}: the histogram ${s.metric} has no series of that name; use _bucket, _sum or _count`);
        }
      }
    }
    assert.ok(count > 50, `${count} selectors read`);
  });

  test('every atkafka metric (other than the Node process ones) is on the dashboard', () => {
    // Deliberately left off, each shown through another metric.
    const shownOtherwise = new Map([
      ['atkafka_ozone_position_seconds', 'atkafka_ozone_lag_seconds is now minus it'],
      // The same number as atkafka_upstream_lag_seconds{source="wikimedia"}, but it reads 0 in every other mode and before the first event.
      ['atkafka_wikimedia_lag_seconds', 'the Wikimedia lag panel reads atkafka_upstream_lag_seconds{source="wikimedia"}'],
    ]);
    const used = new Set<string>();
    for (const { panel } of queryPanels) for (const expr of exprs(panel)) for (const s of parsePromql(expr).selectors) used.add(exported.series.get(s.metric)?.base ?? s.metric);
    const missing = [...exported.types.keys()].filter((m) => !m.startsWith('atkafka_process_') && !used.has(m) && !shownOtherwise.has(m));
    assert.deepEqual(missing, [], 'metrics atkafka exports that no panel shows');
  });

  test('the generic metrics of every mode exist', () => {
    for (const name of [
      'atkafka_upstream_connected',
      'atkafka_upstream_position',
      'atkafka_upstream_lag_seconds',
      'atkafka_upstream_reconnects',
      'atkafka_backpressure_paused_seconds_total',
      'atkafka_kafka_delivery_latency_seconds',
      'atkafka_event_latency_seconds',
      'atkafka_kafka_in_flight',
      'atkafka_kafka_in_flight_bytes',
      'atkafka_ready',
    ]) {
      assert.ok(exported.types.has(name), `${name} is not registered`);
    }
    assert.equal(exported.types.get('atkafka_kafka_delivery_latency_seconds'), 'histogram');
    assert.equal(exported.types.get('atkafka_event_latency_seconds'), 'histogram');
    assert.equal(exported.types.get('atkafka_backpressure_paused_seconds_total'), 'counter');
  });
});

describe('coverage', () => {
  /** A topic is covered by a panel (in `row`, if given) with a query reading `metric` and matching `expr`. */
  const topics: { topic: string; row?: string; metric: string; expr?: RegExp; type?: string }[] = [
    { topic: 'events/s by kind', metric: 'atkafka_handled_events', expr: /by \(action_name\) \(rate\(/ },
    { topic: 'events/s by collection', metric: 'atkafka_handled_events', expr: /by \(collection\) \(rate\(/ },
    { topic: 'produced ok/error per second', metric: 'atkafka_produced_events', expr: /by \(status\) \(rate\(/ },
    { topic: 'upstream lag, every mode', metric: 'atkafka_upstream_lag_seconds', expr: /by \([^)]*source/ },
    { topic: 'upstream position, every mode', metric: 'atkafka_upstream_position', expr: /by \([^)]*source/ },
    { topic: 'upstream connected, every mode', metric: 'atkafka_upstream_connected', expr: /by \([^)]*source/ },
    { topic: 'ready', metric: 'atkafka_ready' },
    { topic: 'reconnects, every mode', metric: 'atkafka_upstream_reconnects', expr: /by \(source, reason\) \(rate\(/ },
    { topic: 'in flight (messages)', row: 'Kafka', metric: 'atkafka_kafka_in_flight' },
    { topic: 'in flight (bytes)', row: 'Kafka', metric: 'atkafka_kafka_in_flight_bytes', type: 'timeseries' },
    { topic: 'backpressure paused', row: 'Kafka', metric: 'atkafka_backpressure_paused' },
    { topic: 'backpressure paused seconds per second', row: 'Kafka', metric: 'atkafka_backpressure_paused_seconds_total', expr: /^sum by \(instance\) \(rate\(/ },
    { topic: 'Kafka delivery latency percentiles', row: 'Kafka', metric: 'atkafka_kafka_delivery_latency_seconds_bucket', expr: /^histogram_quantile\(0\.99, / },
    { topic: 'event latency percentiles', row: 'Kafka', metric: 'atkafka_event_latency_seconds_bucket', expr: /^histogram_quantile\(0\.99, / },
    { topic: 'errors: invalid input by source and reason', metric: 'atkafka_invalid_input', expr: /by \(source, reason\) \(rate\(/ },
    { topic: 'errors: delivery retries', metric: 'atkafka_kafka_delivery_retries', expr: /rate\(/ },
    { topic: 'errors: Ozone poll errors by kind', metric: 'atkafka_ozone_poll_errors', expr: /by \(kind\) \(rate\(/ },
    { topic: 'errors: enrichment timeouts', metric: 'atkafka_enrichment', expr: /outcome="timeout"/ },
    { topic: 'relay lag behind the network', row: 'Relay', metric: 'atkafka_relay_last_event_time_seconds', expr: /^time\(\) - / },
    { topic: 'relay cursor', row: 'Relay', metric: 'atkafka_relay_cursor' },
    { topic: 'relay connected', row: 'Relay', metric: 'atkafka_relay_connected' },
    { topic: 'relay reconnects', row: 'Relay', metric: 'atkafka_relay_reconnects', expr: /by \(reason\) \(rate\(/ },
    { topic: 'tap acks/s', row: 'Tap', metric: 'atkafka_acks_sent', expr: /rate\(/ },
    { topic: 'tap backfill: repos by state', row: 'Tap', metric: 'atkafka_tap_repos', expr: /by \(state\)/ },
    { topic: 'tap backfill: records indexed', row: 'Tap', metric: 'atkafka_tap_records_indexed' },
    { topic: 'tap backfill: outbox', row: 'Tap', metric: 'atkafka_tap_outbox_buffer' },
    { topic: 'tap connected', row: 'Tap', metric: 'atkafka_tap_connected' },
    { topic: 'tap reconnects', row: 'Tap', metric: 'atkafka_tap_reconnects', expr: /by \(reason\) \(rate\(/ },
    { topic: 'ozone lag', row: 'Ozone', metric: 'atkafka_ozone_lag_seconds' },
    { topic: 'ozone polls', row: 'Ozone', metric: 'atkafka_ozone_polls', expr: /by \(result\) \(rate\(/ },
    { topic: 'ozone poll errors', row: 'Ozone', metric: 'atkafka_ozone_poll_errors' },
    { topic: 'ozone connected', row: 'Ozone', metric: 'atkafka_ozone_connected' },
    { topic: 'jetstream: the host in use now', row: 'Jetstream', metric: 'atkafka_jetstream_host', expr: /by \(instance, host\) \(atkafka_jetstream_host\{[^}]*\}\) == 1$/, type: 'stat' },
    { topic: 'jetstream: which host when', row: 'Jetstream', metric: 'atkafka_jetstream_host', type: 'state-timeline' },
    { topic: 'jetstream failovers', row: 'Jetstream', metric: 'atkafka_jetstream_failovers', expr: /rate\(/ },
    { topic: 'jetstream reconnects', row: 'Jetstream', metric: 'atkafka_upstream_reconnects', expr: /by \(reason\) \(rate\(atkafka_upstream_reconnects\{[^}]*source="jetstream"/ },
    { topic: 'jetstream duplicates dropped', row: 'Jetstream', metric: 'atkafka_jetstream_duplicates_dropped', expr: /rate\(/ },
    // Without --cursor-file the cursor gauge stays 0, which would read as decades behind.
    { topic: 'jetstream cursor lag', row: 'Jetstream', metric: 'atkafka_jetstream_cursor_time_us', expr: /^time\(\) - .*> 0\) \/ 1e6$/ },
    { topic: 'jetstream lag of the last event read', row: 'Jetstream', metric: 'atkafka_upstream_lag_seconds', expr: /source="jetstream"/ },
    { topic: 'jetstream connected', row: 'Jetstream', metric: 'atkafka_upstream_connected', expr: /source="jetstream"/, type: 'state-timeline' },
    // handled_events has no source label: another mode in the same Prometheus would mix in its kinds.
    {
      topic: 'wikimedia events/s by type, of Wikimedia processes only',
      row: 'Wikimedia',
      metric: 'atkafka_handled_events',
      expr: /^sum by \(action_name\) \(rate\(.* and on \(job, instance\) atkafka_upstream_connected\{[^}]*source="wikimedia"\}\)$/,
    },
    { topic: 'wikimedia lag of the last event read', row: 'Wikimedia', metric: 'atkafka_upstream_lag_seconds', expr: /source="wikimedia"/ },
    // Without --cursor-file the gauge stays 0, which would read as decades behind.
    { topic: 'wikimedia cursor file lag', row: 'Wikimedia', metric: 'atkafka_wikimedia_cursor_event_time_seconds', expr: /^time\(\) - .*> 0\)$/ },
    { topic: 'wikimedia last event', row: 'Wikimedia', metric: 'atkafka_wikimedia_last_event_time_seconds', expr: /> 0\) \* 1000$/, type: 'stat' },
    { topic: 'wikimedia reconnects', row: 'Wikimedia', metric: 'atkafka_upstream_reconnects', expr: /by \(reason\) \(rate\(atkafka_upstream_reconnects\{[^}]*source="wikimedia"/ },
    { topic: 'wikimedia skipped events', row: 'Wikimedia', metric: 'atkafka_invalid_input', expr: /source="wikimedia"/ },
    { topic: 'wikimedia connected', row: 'Wikimedia', metric: 'atkafka_upstream_connected', expr: /source="wikimedia"/, type: 'state-timeline' },
    { topic: 'enrichment outcomes', row: 'Enrichment', metric: 'atkafka_enrichment', expr: /by \(outcome\) \(rate\(/ },
    { topic: 'PLC requests', row: 'Enrichment', metric: 'atkafka_plc_requests', expr: /by \(kind, status, cached\) \(rate\(/ },
    { topic: 'identity cache sizes', row: 'Enrichment', metric: 'atkafka_cache_size', expr: /by \(kind\)/ },
    { topic: 'process CPU', row: 'Process', metric: 'atkafka_process_process_cpu_user_seconds_total', expr: /rate\(/ },
    { topic: 'process RSS', row: 'Process', metric: 'atkafka_process_process_resident_memory_bytes' },
    { topic: 'event loop lag', row: 'Process', metric: 'atkafka_process_nodejs_eventloop_lag_p99_seconds' },
    { topic: 'GC', row: 'Process', metric: 'atkafka_process_nodejs_gc_duration_seconds_sum', expr: /by \(kind\) \(rate\(/ },
  ];

  for (const t of topics) {
    test(`a panel for ${t.topic}`, () => {
      const hits = queryPanels.filter(
        ({ panel, row }) =>
          (t.row === undefined || row === t.row) &&
          (t.type === undefined || panel.type === t.type) &&
          exprs(panel).some((e) => parsePromql(e).selectors.some((s) => s.metric === t.metric) && (t.expr === undefined || t.expr.test(e))),
      );
      assert.ok(hits.length > 0, `no panel${t.row ? ` in row ${t.row}` : ''} reads ${t.metric}${t.expr ? ` as ${t.expr}` : ''}`);
      assert.ok(exported.series.has(t.metric), `${t.metric} is not exported`);
    });
  }

  test('units: seconds for lag and latency, bytes for bytes', () => {
    const unit = (p: Panel) => (p as { fieldConfig?: { defaults?: { unit?: string } } }).fieldConfig?.defaults?.unit;
    for (const { panel } of queryPanels) {
      const names = exprs(panel).flatMap((e) => parsePromql(e).selectors.map((s) => s.metric));
      if (names.every((m) => /_lag_seconds$|latency_seconds_bucket$|_lag_p\d+_seconds$|_lag_max_seconds$/.test(m))) assert.equal(unit(panel), 's', `${label(panel)} shows seconds`);
      if (names.every((m) => m.endsWith('_bytes'))) assert.equal(unit(panel), 'bytes', `${label(panel)} shows bytes`);
    }
  });
});

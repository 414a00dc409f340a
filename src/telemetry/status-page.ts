import { createHash } from 'node:crypto';

import { readinessOf, type Probes } from './http.ts';
import { registry } from './metrics.ts';

/**
 * The status page on the metrics port: `GET /status` (one self-contained HTML
 * page) and `GET /status.json` (what it reads, documented for scripts in
 * docs/status-page.md). The JSON holds cumulative counters and current gauges
 * only; rates are computed by whoever diffs two snapshots (the page does, every
 * second). Everything in it comes from the metrics registry and the probes,
 * whose `info` is already redacted: no environment, no flags beyond `info`.
 */

type Labels = Record<string, string | number | undefined>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
interface Bucket {
  /** Upper bound in seconds, or "+Inf". */
  le: number | '+Inf';
  /** Observations at or below `le` (cumulative, as in Prometheus). */
  count: number;
}
interface Latency {
  p50: number | null;
  p99: number | null;
  count: number;
  sum: number;
  buckets: Bucket[];
}

export interface StatusSnapshot {
  schemaVersion: 1;
  time: string;
  uptimeSeconds: number;
  info: Record<string, unknown>;
  source: string | null;
  upstreamUrl: string | null;
  ready: boolean;
  upstreamConnected: boolean;
  kafkaReachable: boolean;
  status: Record<string, unknown>;
  counters: {
    handled: { action: string; collection: string; value: number }[];
    produced: { ok: number; error: number };
    deliveryRetries: number;
    invalidInput: { source: string; reason: string; value: number }[];
    reconnects: { source: string; reason: string; value: number }[];
    filtered: { collection: number; service: number };
    enrichment: Record<string, number>;
    backpressurePausedSeconds: number;
  };
  gauges: {
    upstreamPosition: number | null;
    upstreamLagSeconds: number | null;
    inFlightMessages: number;
    inFlightBytes: number;
    decodeBacklogFrames: number;
    enrichmentWaiting: number;
    backpressurePaused: boolean;
  };
  latency: { delivery: Latency; event: Latency };
  process: { cpuSecondsTotal: number; residentMemoryBytes: number };
  relay: {
    lastSeq: number | null;
    cursor: number | null;
    seqGaps: number;
    seqGapMissing: number;
    seqAnomalies: { kind: string; value: number }[];
    duplicates: number;
    oversizeFrames: number;
    outdatedCursor: number;
  } | null;
  tap: {
    repos: { known: number | null; backfilling: number | null; backfilled: number | null; failed: number | null };
    recordsIndexed: number | null;
    outboxBuffer: number | null;
    resyncBuffer: number | null;
    eventBuffer: number;
    ackBuffer: number;
    acksSent: number;
  } | null;
  ozone: {
    lagSeconds: number | null;
    positionTime: string | null;
    lastEventTime: string | null;
    cursorEventId: number | null;
    polls: { events: number; empty: number };
    pollErrors: { kind: string; value: number }[];
    sessions: { kind: string; status: string; value: number }[];
  } | null;
  jetstream: {
    host: string | null;
    cursor: number | null;
    cursorTime: string | null;
    savedCursor: number | null;
    lagSeconds: number | null;
    failovers: number;
    duplicatesDropped: number;
  } | null;
  wikimedia: {
    streams: string[];
    lagSeconds: number | null;
    lastEventTime: string | null;
    cursorEventTime: string | null;
    reconnects: number;
  } | null;
}

/** One snapshot of the process for `/status.json`: the probes (via readinessOf) and `registry.getMetricsAsJSON()`. */
export async function statusSnapshot(probes: Probes, started: number): Promise<StatusSnapshot> {
  const r = readinessOf(probes);
  const byName = new Map<string, Sample[]>();
  for (const m of await registry.getMetricsAsJSON()) byName.set(m.name, m.values as Sample[]);

  const samples = (name: string, labels: Labels = {}): Sample[] =>
    (byName.get(name) ?? []).filter((s) => Object.entries(labels).every(([k, v]) => String(s.labels[k]) === String(v)));
  const sum = (name: string, labels: Labels = {}): number => samples(name, labels).reduce((a, s) => a + s.value, 0);
  /** A gauge's current value, or null if it has none yet (never set, or not this mode). */
  const one = (name: string, labels: Labels = {}): number | null => samples(name, labels)[0]?.value ?? null;
  const list = <K extends string>(name: string, keys: readonly K[]): (Record<K, string> & { value: number })[] =>
    samples(name)
      .filter((s) => s.value !== 0)
      .map((s) => ({ ...(Object.fromEntries(keys.map((k) => [k, String(s.labels[k] ?? '')])) as Record<K, string>), value: s.value }));
  // Unlabeled gauges read 0 until first set: a time of 0 means none yet.
  const isoOrNull = (seconds: number | null): string | null => (seconds === null || seconds === 0 ? null : new Date(seconds * 1000).toISOString());
  const ozoneSince = one('atkafka_ozone_position_seconds');
  // The host failover moved to, not the first of the list: what the process reads now.
  const jetstreamHost = samples('atkafka_jetstream_host').find((s) => s.value === 1)?.labels.host;
  const jetstreamCursor = one('atkafka_upstream_position', { source: 'jetstream' });
  const jetstreamSaved = one('atkafka_jetstream_cursor_time_us');

  const info = probes.info ?? {};
  const source = typeof info.source === 'string' ? info.source : null;
  const jetstreamNow = source !== 'jetstream' ? undefined : (jetstreamHost ?? (Array.isArray(info.jetstreamHosts) ? info.jetstreamHosts[0] : undefined));
  const upstreamUrl = [info.relayHost, info.tapHost, info.pdsHost, jetstreamNow, info.wikimediaUrl].find((u): u is string => typeof u === 'string') ?? null;

  const latency = (name: string): Latency => {
    const buckets: Bucket[] = samples(name)
      .filter((s) => s.metricName === `${name}_bucket`)
      .map((s) => ({ le: s.labels.le === '+Inf' ? '+Inf' : Number(s.labels.le), count: s.value }));
    return {
      p50: quantile(0.5, buckets),
      p99: quantile(0.99, buckets),
      count: samples(name).find((s) => s.metricName === `${name}_count`)?.value ?? 0,
      sum: samples(name).find((s) => s.metricName === `${name}_sum`)?.value ?? 0,
      buckets,
    };
  };

  return {
    schemaVersion: 1,
    time: new Date().toISOString(),
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    info,
    source,
    upstreamUrl,
    ready: r.ready,
    upstreamConnected: r.upstream,
    kafkaReachable: r.kafka,
    status: r.detail,
    counters: {
      handled: samples('atkafka_handled_events').map((s) => ({ action: String(s.labels.action_name), collection: String(s.labels.collection ?? ''), value: s.value })),
      produced: { ok: sum('atkafka_produced_events', { status: 'ok' }), error: sum('atkafka_produced_events', { status: 'error' }) },
      deliveryRetries: sum('atkafka_kafka_delivery_retries'),
      invalidInput: list('atkafka_invalid_input', ['source', 'reason']),
      reconnects: list('atkafka_upstream_reconnects', ['source', 'reason']),
      filtered: { collection: sum('atkafka_filtered_events', { reason: 'collection' }), service: sum('atkafka_filtered_events', { reason: 'service' }) },
      enrichment: Object.fromEntries(samples('atkafka_enrichment').map((s) => [String(s.labels.outcome), s.value])),
      backpressurePausedSeconds: sum('atkafka_backpressure_paused_seconds_total'),
    },
    gauges: {
      upstreamPosition: source === null ? null : one('atkafka_upstream_position', { source }),
      upstreamLagSeconds: source === null ? null : one('atkafka_upstream_lag_seconds', { source }),
      inFlightMessages: sum('atkafka_kafka_in_flight'),
      inFlightBytes: sum('atkafka_kafka_in_flight_bytes'),
      decodeBacklogFrames: sum('atkafka_decode_backlog_frames'),
      enrichmentWaiting: sum('atkafka_enrichment_waiting'),
      backpressurePaused: sum('atkafka_backpressure_paused') > 0,
    },
    latency: { delivery: latency('atkafka_kafka_delivery_latency_seconds'), event: latency('atkafka_event_latency_seconds') },
    process: { cpuSecondsTotal: sum('atkafka_process_process_cpu_seconds_total'), residentMemoryBytes: sum('atkafka_process_process_resident_memory_bytes') },
    relay:
      source !== 'relay'
        ? null
        : {
            lastSeq: one('atkafka_relay_last_seq'),
            cursor: one('atkafka_upstream_position', { source: 'relay' }),
            seqGaps: sum('atkafka_relay_seq_gaps'),
            seqGapMissing: sum('atkafka_relay_seq_gap_missing'),
            seqAnomalies: list('atkafka_relay_seq_anomalies', ['kind']),
            duplicates: sum('atkafka_relay_duplicate_events'),
            oversizeFrames: sum('atkafka_relay_oversize_frames'),
            outdatedCursor: sum('atkafka_relay_outdated_cursor'),
          },
    tap:
      source !== 'tap'
        ? null
        : {
            repos: {
              known: one('atkafka_tap_repos', { state: 'known' }),
              backfilling: one('atkafka_tap_repos', { state: 'backfilling' }),
              backfilled: one('atkafka_tap_repos', { state: 'backfilled' }),
              failed: one('atkafka_tap_repos', { state: 'failed' }),
            },
            recordsIndexed: one('atkafka_tap_records_indexed'),
            outboxBuffer: one('atkafka_tap_outbox_buffer'),
            resyncBuffer: one('atkafka_tap_resync_buffer'),
            eventBuffer: sum('atkafka_tap_event_buffer_size'),
            ackBuffer: sum('atkafka_tap_ack_event_buffer_size'),
            acksSent: sum('atkafka_acks_sent'),
          },
    ozone:
      source !== 'ozone'
        ? null
        : {
            lagSeconds: ozoneSince === null || ozoneSince === 0 ? null : one('atkafka_ozone_lag_seconds'),
            positionTime: isoOrNull(ozoneSince),
            lastEventTime: isoOrNull(one('atkafka_ozone_last_event_time_seconds')),
            cursorEventId: one('atkafka_upstream_position', { source: 'ozone' }),
            polls: { events: sum('atkafka_ozone_polls', { result: 'events' }), empty: sum('atkafka_ozone_polls', { result: 'empty' }) },
            pollErrors: list('atkafka_ozone_poll_errors', ['kind']),
            sessions: list('atkafka_ozone_sessions', ['kind', 'status']),
          },
    jetstream:
      source !== 'jetstream'
        ? null
        : {
            host: jetstreamHost === undefined ? null : String(jetstreamHost),
            cursor: jetstreamCursor,
            cursorTime: isoOrNull(jetstreamCursor === null ? null : jetstreamCursor / 1e6),
            savedCursor: jetstreamSaved === 0 ? null : jetstreamSaved,
            lagSeconds: one('atkafka_upstream_lag_seconds', { source: 'jetstream' }),
            failovers: sum('atkafka_jetstream_failovers'),
            duplicatesDropped: sum('atkafka_jetstream_duplicates_dropped'),
          },
    wikimedia:
      source !== 'wikimedia'
        ? null
        : {
            streams: Array.isArray(info.streams) ? info.streams.map(String) : [],
            lagSeconds: one('atkafka_upstream_lag_seconds', { source: 'wikimedia' }),
            lastEventTime: isoOrNull(one('atkafka_wikimedia_last_event_time_seconds')),
            cursorEventTime: isoOrNull(one('atkafka_wikimedia_cursor_event_time_seconds')),
            reconnects: sum('atkafka_upstream_reconnects', { source: 'wikimedia' }),
          },
  };
}

/**
 * The q-quantile of cumulative buckets, as Prometheus' histogram_quantile
 * estimates it: linear within the bucket that holds the rank; in the +Inf
 * bucket, the highest finite bound. Null without observations.
 */
export function quantile(q: number, buckets: readonly Bucket[]): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === '+Inf') return lower;
      return b.count === below ? lower : lower + ((b.le - lower) * (rank - below)) / (b.count - below);
    }
    if (b.le !== '+Inf') lower = b.le;
    below = b.count;
  }
  return lower;
}

// ------------------------------------------------------------------ the page
// Plain strings, no build step; the script avoids backticks and "${" so it can live in a raw template here.

const STYLE = String.raw`
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --dim: #667085; --line: #2f6fde; --ok: #1a7f37; --bad: #c62828; --warn: #b26a00; --rule: #e3e6eb; }
@media (prefers-color-scheme: dark) { :root { --bg: #12151b; --card: #1b2029; --fg: #e6e9ef; --dim: #98a2b3; --line: #6ea8ff; --ok: #4ac26b; --bad: #ff6b6b; --warn: #f0b44c; --rule: #2a3140; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { padding: 12px 20px; border-bottom: 1px solid var(--rule); background: var(--card); }
h1 { font-size: 18px; margin: 0 0 6px; }
h2 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--dim); }
table + h2, progress + div + table { margin-top: 12px; }
th { font-weight: 500; color: var(--dim); text-align: right; padding: 2px 4px; }
.info { display: flex; flex-wrap: wrap; gap: 4px 18px; color: var(--dim); }
.info b { color: var(--fg); font-weight: 500; word-break: break-all; }
.pill { display: inline-block; padding: 1px 8px; margin-left: 6px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--dim); vertical-align: 2px; }
.pill.yes { background: var(--ok); } .pill.no { background: var(--bad); }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); grid-auto-flow: dense; gap: 14px; padding: 14px 20px; }
section { background: var(--card); border: 1px solid var(--rule); border-radius: 8px; padding: 12px 14px; }
section.wide { grid-column: span 2; }
@media (max-width: 760px) { section.wide { grid-column: auto; } }
table { width: 100%; border-collapse: collapse; }
td { padding: 2px 4px; vertical-align: middle; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.k { color: var(--dim); }
td.name { word-break: break-all; }
svg.spark { width: 160px; height: 26px; display: block; }
svg.spark polyline { fill: none; stroke: var(--line); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
svg.spark.red polyline { stroke: var(--bad); }
.big { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.mid { font-size: 17px; font-weight: 600; }
.bad { color: var(--bad); } .warn { color: var(--warn); } .dim { color: var(--dim); }
progress { width: 100%; height: 14px; }
.host { font-weight: 600; word-break: break-all; margin: 0 0 8px; }
#stale { display: none; padding: 6px 20px; background: var(--bad); color: #fff; font-weight: 600; }
footer { padding: 4px 20px 16px; color: var(--dim); font-size: 12px; }
footer a { color: inherit; }
`;

const SCRIPT = String.raw`
'use strict';
var WINDOW = 300;  // seconds of history in the charts
var RECENT = 60;   // seconds for "share of time paused" and recent latency
var SMOOTH = 5;    // rates are averages over the last SMOOTH polls (one event a second would otherwise read 0, 2, 0, 2)
var snaps = [];    // successive /status.json answers, oldest first
var series = {};   // chart key -> [[t, events per second], ...]
var rows = {};     // table id + key -> its row elements

function $(id) { return document.getElementById(id); }
function put(id, v) { $(id).textContent = v; }
function num(n) { return n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'); }
function rate(n) { return n === null || n === undefined ? '–' : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'); }
function bytes(n) { return n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB'; }
function secs(s) {
  if (s === null || s === undefined) return '–';
  return s < 1 ? Math.round(s * 1000) + ' ms' : s < 120 ? s.toFixed(1) + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : s < 172800 ? (s / 3600).toFixed(1) + ' h' : Math.round(s / 86400) + ' days';
}
/** A Jetstream time_us (unix microseconds) as an ISO time. */
function usTime(us) { return us ? new Date(us / 1000).toISOString() : '–'; }
/** A Wikimedia SSE id (a JSON list of topic, partition, and offset or timestamp in ms) as rows, or null if it is not one. */
function sseId(id) {
  try {
    var a = JSON.parse(id);
    if (!Array.isArray(a)) return null;
    return a.map(function (p) { return { at: p.topic + '/' + p.partition, to: typeof p.offset === 'number' ? 'offset ' + num(p.offset) : typeof p.timestamp === 'number' ? new Date(p.timestamp).toISOString() : '?' }; });
  } catch (e) { return null; }
}
function pill(id, v) { var e = $(id); e.textContent = v ? 'yes' : 'no'; e.className = 'pill ' + (v ? 'yes' : 'no'); }

// Rates from successive snapshots: (value now - value SMOOTH polls ago) / seconds between them.
function sumBy(list, key) { var o = {}; list.forEach(function (x) { o[x[key]] = (o[x[key]] || 0) + x.value; }); return o; }
function countersOf(s) {
  var c = { total: 0, 'produced ok': s.counters.produced.ok, 'produced error': s.counters.produced.error };
  s.counters.handled.forEach(function (h) { c.total += h.value; });
  var byAction = sumBy(s.counters.handled, 'action'), byCollection = sumBy(s.counters.handled, 'collection');
  Object.keys(byAction).forEach(function (k) { c['kind:' + k] = byAction[k]; });
  Object.keys(byCollection).forEach(function (k) { c['coll:' + (k || '(no collection)')] = byCollection[k]; });
  return c;
}
function record(s) {
  var t = Date.parse(s.time) / 1000, prev = snaps[snaps.length - 1];
  if (prev && t <= prev.t) return;
  if (prev && s.uptimeSeconds < prev.uptimeSeconds) { snaps = []; series = {}; prev = undefined; }  // restarted
  s.t = t; s.c = countersOf(s);
  if (prev) {
    var before = snaps[Math.max(0, snaps.length - SMOOTH)], dt = t - before.t;
    Object.keys(s.c).forEach(function (k) {
      var v = Math.max(0, (s.c[k] - (before.c[k] || 0)) / dt);
      (series[k] = series[k] || []).push([t, v]);
    });
  }
  snaps.push(s);
  while (snaps.length > 2 && snaps[0].t < t - WINDOW) snaps.shift();
  Object.keys(series).forEach(function (k) { var a = series[k]; while (a.length && a[0][0] < t - WINDOW) a.shift(); if (!a.length) delete series[k]; });
}
function last(k) { var a = series[k]; return a && a.length ? a[a.length - 1][1] : 0; }
/** The snapshot about RECENT seconds ago (or the oldest). */
function recentBase() { var now = snaps[snaps.length - 1].t; for (var i = 0; i < snaps.length; i++) if (snaps[i].t >= now - RECENT) return snaps[i]; return snaps[0]; }

// Sparklines: one inline SVG polyline per series, x = time over the history there is (30 s to WINDOW), y = rate from 0 to its maximum.
var SVG = 'http://www.w3.org/2000/svg';
function spark(red) {
  var svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark' + (red ? ' red' : ''));
  svg.setAttribute('viewBox', '0 0 160 26');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.appendChild(document.createElementNS(SVG, 'polyline'));
  return svg;
}
function draw(svg, k) {
  var a = series[k] || [], now = snaps[snaps.length - 1].t, max = 0;
  var span = Math.min(WINDOW, Math.max(30, now - snaps[0].t));
  a.forEach(function (p) { if (p[1] > max) max = p[1]; });
  var pts = a.map(function (p) { return (160 - (now - p[0]) * 160 / span).toFixed(1) + ',' + (24 - (max ? p[1] / max : 0) * 22).toFixed(1); });
  svg.firstChild.setAttribute('points', pts.join(' '));
  svg.setAttribute('data-points', a.length);
}
function row(table, key, cells) {
  var id = table + '|' + key, r = rows[id];
  if (!r) {
    r = rows[id] = { tr: document.createElement('tr'), cells: [] };
    cells.forEach(function (c) { var td = document.createElement('td'); td.className = c.cls || ''; if (c.spark !== undefined) { td.appendChild(spark(c.red)); } r.cells.push(td); r.tr.appendChild(td); });
  }
  $(table).appendChild(r.tr);  // appending again keeps the order of this call
  cells.forEach(function (c, i) { if (c.spark !== undefined) draw(r.cells[i].firstChild, c.spark); else r.cells[i].textContent = c.text; });
  r.seen = true;
}
function endTable(table) { Object.keys(rows).forEach(function (id) { var r = rows[id]; if (id.indexOf(table + '|') === 0) { if (!r.seen) { r.tr.remove(); delete rows[id]; } else r.seen = false; } }); }
function rateTable(table, prefix, limit) {
  var keys = Object.keys(snaps[snaps.length - 1].c).filter(function (k) { return k.indexOf(prefix) === 0; });
  keys.sort(function (a, b) { return last(b) - last(a) || snaps[snaps.length - 1].c[b] - snaps[snaps.length - 1].c[a]; });
  keys.slice(0, limit).forEach(function (k) {
    row(table, k, [{ cls: 'name', text: k.slice(prefix.length) }, { spark: k }, { cls: 'n', text: rate(last(k)) + '/s' }, { cls: 'n dim', text: num(snaps[snaps.length - 1].c[k]) }]);
  });
  if (!keys.length) row(table, '', [{ cls: 'dim', text: 'no events yet' }]);
  endTable(table);
}
function countTable(table, list, label) {
  list.forEach(function (x) { row(table, label(x), [{ cls: 'name', text: label(x) }, { cls: 'n bad', text: num(x.value) }]); });
  if (!list.length) row(table, '', [{ cls: 'dim', text: 'none' }, { cls: 'n', text: '' }]);
  endTable(table);
}

// Latency percentiles from cumulative histogram buckets (as Prometheus' histogram_quantile).
function quantile(q, buckets) {
  var total = buckets.length ? buckets[buckets.length - 1].count : 0, lower = 0, below = 0;
  if (total <= 0) return null;
  for (var i = 0; i < buckets.length; i++) {
    var b = buckets[i];
    if (b.count >= q * total) { if (b.le === '+Inf') return lower; return b.count === below ? lower : lower + (b.le - lower) * (q * total - below) / (b.count - below); }
    if (b.le !== '+Inf') lower = b.le;
    below = b.count;
  }
  return lower;
}
function latency(id, now, base) {
  var diff = now.buckets.map(function (b, i) { return { le: b.le, count: b.count - (base.buckets[i] ? base.buckets[i].count : 0) }; });
  var n = diff.length ? diff[diff.length - 1].count : 0;
  put(id + '-p50', secs(quantile(0.5, diff)));
  put(id + '-p99', secs(quantile(0.99, diff)));
  put(id + '-n', num(n));
  put(id + '-all', 'since start: p50 ' + secs(now.p50) + ', p99 ' + secs(now.p99) + ' over ' + num(now.count));
}

function render() {
  var s = snaps[snaps.length - 1], base = recentBase(), info = s.info || {}, g = s.gauges, c = s.counters;
  document.title = 'atkafka ' + (info.command || '') + (s.ready ? '' : ' (not ready)');
  put('command', info.command || '?');
  put('source', s.source || '?'); put('upstream', s.upstreamUrl || '?'); put('topic', info.topic || '?'); put('version', info.version || '?');
  put('uptime', secs(s.uptimeSeconds));
  pill('connected', s.upstreamConnected); pill('ready', s.ready); pill('kafka', s.kafkaReachable);

  // A 16-digit time_us would crowd the card in the big font, and as a time it reads against "read up to".
  // Wikimedia's position is no number but an SSE id, one position per topic-partition of Wikimedia's Kafka: shown in its section.
  put('position', s.jetstream ? usTime(g.upstreamPosition) : s.wikimedia ? 'SSE id, see Wikimedia' : num(g.upstreamPosition));
  $('position').className = 'n' + (s.jetstream ? '' : s.wikimedia ? ' dim' : ' big');
  put('read', s.relay ? num(s.relay.lastSeq) : s.jetstream ? usTime(s.status.lastTimeUs) : s.wikimedia ? s.wikimedia.lastEventTime || '–' : '–');
  put('lag', secs(g.upstreamLagSeconds));
  put('inflight', num(g.inFlightMessages)); put('inflight-bytes', bytes(g.inFlightBytes));
  put('backlog', num(g.decodeBacklogFrames)); put('waiting', num(g.enrichmentWaiting));
  put('paused', g.backpressurePaused ? 'yes' : 'no'); $('paused').className = g.backpressurePaused ? 'warn' : '';
  var span = s.t - base.t;
  put('paused-share', span > 0 ? Math.min(100, 100 * (c.backpressurePausedSeconds - base.counters.backpressurePausedSeconds) / span).toFixed(0) + '% of the last ' + Math.round(span) + ' s' : '–');
  put('cpu', span > 0 ? (100 * (s.process.cpuSecondsTotal - base.process.cpuSecondsTotal) / span).toFixed(0) + '%' : '–');
  put('rss', bytes(s.process.residentMemoryBytes));

  put('eps', rate(last('total'))); draw($('eps-chart'), 'total');
  put('handled', num(s.c.total));
  put('ok-rate', rate(last('produced ok'))); draw($('ok-chart'), 'produced ok'); put('ok', num(c.produced.ok));
  put('err-rate', rate(last('produced error'))); draw($('err-chart'), 'produced error'); put('err', num(c.produced.error));
  rateTable('kinds', 'kind:', 20);
  rateTable('collections', 'coll:', 12);

  latency('dl', s.latency.delivery, base.latency.delivery);
  latency('el', s.latency.event, base.latency.event);

  countTable('invalid', c.invalidInput, function (x) { return x.source + ': ' + x.reason; });
  countTable('reconnects', c.reconnects, function (x) { return x.source + ': ' + x.reason; });
  put('retries', num(c.deliveryRetries)); $('retries').className = 'n' + (c.deliveryRetries ? ' bad' : '');
  put('filtered', num(c.filtered.collection + c.filtered.service));

  $('tap').hidden = !s.tap;
  if (s.tap) {
    var r = s.tap.repos, known = r.known || 0, done = r.backfilled || 0;
    $('backfill').max = Math.max(known, 1); $('backfill').value = Math.min(done, known);
    put('backfill-text', r.backfilled === null || !known ? 'waiting for Tap\'s numbers (--tap-metrics-url)' : num(done) + ' of ' + num(known) + ' repos backfilled (' + (100 * done / known).toFixed(1) + '%)' + (r.backfilling ? ', ' + num(r.backfilling) + ' in progress' : '') + (r.failed ? ', ' + num(r.failed) + ' failed' : ''));
    put('records', num(s.tap.recordsIndexed)); put('outbox', num(s.tap.outboxBuffer)); put('resync', num(s.tap.resyncBuffer));
    put('tap-buffers', num(s.tap.eventBuffer) + ' / ' + num(s.tap.ackBuffer)); put('acks', num(s.tap.acksSent));
  }
  $('ozone').hidden = !s.ozone;
  if (s.ozone) {
    put('ozone-lag', secs(s.ozone.lagSeconds)); put('ozone-cursor', num(s.ozone.cursorEventId));
    put('ozone-last', s.ozone.lastEventTime || '–');
    put('ozone-polls', num(s.ozone.polls.events) + ' with events, ' + num(s.ozone.polls.empty) + ' empty');
    countTable('poll-errors', s.ozone.pollErrors, function (x) { return x.kind; });
  }
  $('jetstream').hidden = !s.jetstream;
  if (s.jetstream) {
    var j = s.jetstream;
    put('jetstream-host', j.host || '–');
    put('jetstream-lag', secs(j.lagSeconds));
    put('jetstream-cursor-time', j.cursorTime || '–'); put('jetstream-cursor', num(j.cursor));
    // Without a cursor file a restart starts live and loses what came meanwhile: worth a warning colour.
    put('jetstream-saved', j.savedCursor !== null ? usTime(j.savedCursor) : info.cursorFile ? 'not yet' : 'none (no --cursor-file)');
    $('jetstream-saved').className = 'n' + (j.savedCursor === null && !info.cursorFile ? ' warn' : '');
    put('jetstream-failovers', num(j.failovers)); $('jetstream-failovers').className = 'n' + (j.failovers ? ' warn' : '');
    put('jetstream-duplicates', num(j.duplicatesDropped));
    (info.jetstreamHosts || []).forEach(function (h) {
      row('jetstream-hosts', h, [{ cls: 'name', text: h }, { cls: 'n', text: h !== j.host ? '' : s.upstreamConnected ? 'reading' : 'trying' }]);
    });
    endTable('jetstream-hosts');
  }
  $('wikimedia').hidden = !s.wikimedia;
  if (s.wikimedia) {
    var w = s.wikimedia;
    put('wikimedia-streams', w.streams.join(', ') || '–');
    put('wikimedia-lag', secs(w.lagSeconds));
    put('wikimedia-last', w.lastEventTime || '–');
    // As for Jetstream: without a cursor file a restart starts live and loses what came meanwhile.
    put('wikimedia-saved', w.cursorEventTime || (info.cursorFile ? 'not yet' : 'none (no --cursor-file)'));
    $('wikimedia-saved').className = 'n' + (!w.cursorEventTime && !info.cursorFile ? ' warn' : '');
    put('wikimedia-reconnects', num(w.reconnects));
    // The SSE id is the cursor, but as JSON it is too long to read at a glance: one row per topic-partition of Wikimedia's Kafka.
    var id = s.status.lastEventId, parts = typeof id === 'string' ? sseId(id) : null;
    if (parts) parts.forEach(function (p) { row('wikimedia-cursor', p.at, [{ cls: 'name', text: p.at }, { cls: 'n', text: p.to }]); });
    else if (typeof id === 'string' && id) row('wikimedia-cursor', '', [{ cls: 'name', text: id }, { cls: 'n', text: '' }]);
    else row('wikimedia-cursor', '', [{ cls: 'dim', text: 'none yet' }, { cls: 'n', text: '' }]);
    endTable('wikimedia-cursor');
  }
  put('updated', new Date(s.time).toLocaleTimeString());
}

var failedSince = null;
function poll() {
  fetch('status.json', { cache: 'no-store' })
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(function (s) { failedSince = null; $('stale').style.display = 'none'; record(s); render(); })
    .catch(function (e) {
      failedSince = failedSince || new Date();
      $('stale').style.display = 'block';
      put('stale', 'No answer from atkafka since ' + failedSince.toLocaleTimeString() + ' (' + e.message + '); the numbers below are from then.');
    })
    .finally(function () { setTimeout(poll, 1000); });
}
poll();
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>atkafka</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>atkafka <span id="command">…</span>
    <small>connected<span class="pill" id="connected">?</span> ready<span class="pill" id="ready">?</span> Kafka<span class="pill" id="kafka">?</span></small></h1>
  <div class="info">
    <span>source <b id="source">…</b></span><span>upstream <b id="upstream">…</b></span><span>topic <b id="topic">…</b></span>
    <span>version <b id="version">…</b></span><span>up <b id="uptime">…</b></span>
  </div>
</header>
<div id="stale"></div>
<main>
  <section>
    <h2>Where it is</h2>
    <table>
      <tr><td class="k">position (in Kafka)</td><td class="n big" id="position">–</td></tr>
      <tr><td class="k">read up to</td><td class="n" id="read">–</td></tr>
      <tr><td class="k">lag</td><td class="n" id="lag">–</td></tr>
      <tr><td class="k">in flight</td><td class="n"><span id="inflight">–</span> msgs, <span id="inflight-bytes">–</span></td></tr>
      <tr><td class="k">decode backlog / waiting for identity</td><td class="n"><span id="backlog">–</span> / <span id="waiting">–</span></td></tr>
      <tr><td class="k">paused for Kafka now</td><td class="n" id="paused">–</td></tr>
      <tr><td class="k">time paused</td><td class="n" id="paused-share">–</td></tr>
      <tr><td class="k">CPU / memory</td><td class="n"><span id="cpu">–</span> / <span id="rss">–</span></td></tr>
    </table>
  </section>
  <section>
    <h2>Throughput</h2>
    <table>
      <tr><td class="k">events/s</td><td><svg class="spark" id="eps-chart" viewBox="0 0 160 26" preserveAspectRatio="none"><polyline/></svg></td><td class="n big" id="eps">–</td></tr>
      <tr><td class="k">produced ok/s</td><td><svg class="spark" id="ok-chart" viewBox="0 0 160 26" preserveAspectRatio="none"><polyline/></svg></td><td class="n" id="ok-rate">–</td></tr>
      <tr><td class="k">produced error/s</td><td><svg class="spark red" id="err-chart" viewBox="0 0 160 26" preserveAspectRatio="none"><polyline/></svg></td><td class="n" id="err-rate">–</td></tr>
      <tr><td class="k">handled</td><td></td><td class="n" id="handled">–</td></tr>
      <tr><td class="k">produced ok / error</td><td></td><td class="n"><span id="ok">–</span> / <span id="err">–</span></td></tr>
    </table>
  </section>
  <section>
    <h2>Delivery latency, last minute</h2>
    <table>
      <tr><td></td><th>p50</th><th>p99</th><th>count</th></tr>
      <tr><td class="k">Kafka delivery, per flush</td><td class="n mid" id="dl-p50">–</td><td class="n mid" id="dl-p99">–</td><td class="n dim" id="dl-n">–</td></tr>
      <tr><td colspan="4" class="dim" id="dl-all"></td></tr>
      <tr><td class="k">event read to confirmed</td><td class="n mid" id="el-p50">–</td><td class="n mid" id="el-p99">–</td><td class="n dim" id="el-n">–</td></tr>
      <tr><td colspan="4" class="dim" id="el-all"></td></tr>
    </table>
  </section>
  <section id="tap" hidden>
    <h2>Tap backfill</h2>
    <progress id="backfill" value="0" max="1"></progress>
    <div id="backfill-text">–</div>
    <table>
      <tr><td class="k">records indexed</td><td class="n" id="records">–</td></tr>
      <tr><td class="k">Tap outbox / resync buffer</td><td class="n"><span id="outbox">–</span> / <span id="resync">–</span></td></tr>
      <tr><td class="k">events unacked / acks unsent</td><td class="n" id="tap-buffers">–</td></tr>
      <tr><td class="k">acks sent</td><td class="n" id="acks">–</td></tr>
    </table>
  </section>
  <section id="ozone" hidden>
    <h2>Ozone</h2>
    <table>
      <tr><td class="k">poll lag</td><td class="n big" id="ozone-lag">–</td></tr>
      <tr><td class="k">cursor event id</td><td class="n" id="ozone-cursor">–</td></tr>
      <tr><td class="k">last event</td><td class="n" id="ozone-last">–</td></tr>
      <tr><td class="k">polls</td><td class="n" id="ozone-polls">–</td></tr>
    </table>
    <h2>Poll errors by kind</h2>
    <table id="poll-errors"></table>
  </section>
  <section id="jetstream" hidden>
    <h2>Jetstream</h2>
    <div class="dim">reading from</div>
    <div class="host" id="jetstream-host">–</div>
    <table>
      <tr><td class="k">lag</td><td class="n big" id="jetstream-lag">–</td></tr>
      <tr><td class="k">cursor (in Kafka)</td><td class="n" id="jetstream-cursor-time">–</td></tr>
      <tr><td class="k">cursor time_us</td><td class="n" id="jetstream-cursor">–</td></tr>
      <tr><td class="k">in the cursor file</td><td class="n" id="jetstream-saved">–</td></tr>
      <tr><td class="k">failovers</td><td class="n" id="jetstream-failovers">–</td></tr>
      <tr><td class="k">duplicates dropped</td><td class="n" id="jetstream-duplicates">–</td></tr>
    </table>
    <h2>Hosts, in failover order</h2>
    <table id="jetstream-hosts"></table>
  </section>
  <section id="wikimedia" hidden>
    <h2>Wikimedia</h2>
    <div class="dim">streams</div>
    <div class="host" id="wikimedia-streams">–</div>
    <table>
      <tr><td class="k">lag</td><td class="n big" id="wikimedia-lag">–</td></tr>
      <tr><td class="k">last event</td><td class="n" id="wikimedia-last">–</td></tr>
      <tr><td class="k">in the cursor file (event time)</td><td class="n" id="wikimedia-saved">–</td></tr>
      <tr><td class="k">reconnects</td><td class="n" id="wikimedia-reconnects">–</td></tr>
    </table>
    <h2>Cursor (in Kafka), by Wikimedia topic</h2>
    <table id="wikimedia-cursor"></table>
  </section>
  <section class="wide">
    <h2>Events/s by kind</h2>
    <table id="kinds"></table>
  </section>
  <section class="wide">
    <h2>Events/s by collection (top 12)</h2>
    <table id="collections"></table>
  </section>
  <section>
    <h2>Errors</h2>
    <table>
      <tr><td class="k">delivery retries</td><td class="n" id="retries">–</td></tr>
      <tr><td class="k">left out by filters</td><td class="n" id="filtered">–</td></tr>
    </table>
    <h2>Invalid input by reason</h2>
    <table id="invalid"></table>
    <h2>Reconnects</h2>
    <table id="reconnects"></table>
  </section>
</main>
<footer>Updated <span id="updated">never</span>; reads <a href="status.json">status.json</a> every second (also: <a href="metrics">metrics</a>, <a href="readyz">readyz</a>).</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** The page may run its own inline script and style and fetch from its own origin, nothing else. */
export const STATUS_PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': `default-src 'none'; script-src ${sha256(SCRIPT)}; style-src ${sha256(STYLE)}; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
};

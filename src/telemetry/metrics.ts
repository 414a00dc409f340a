import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { InputErrorReason } from '../atproto/errors.ts';

/**
 * Every metric of the process, behind named functions so the hot path does
 * not build label strings. Names shared with the Go at-kafka keep their
 * names and labels so existing dashboards keep working. DIDs never become
 * labels (unbounded cardinality); they go to the logs.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'atkafka_process_' });

// The same questions for every source, so one dashboard panel answers them whatever the mode.
const upstreamConnected = new Gauge({
  name: 'atkafka_upstream_connected',
  help: 'By source: 1 while connected upstream (relay, tap: the websocket is open; ozone: the last poll succeeded)',
  labelNames: ['source'] as const,
  registers: [registry],
});
const upstreamPosition = new Gauge({
  name: 'atkafka_upstream_position',
  help: "By source: the upstream position everything up to which is in Kafka (relay: the watermark seq, what the cursor file saves; jetstream: the watermark time_us; tap: the last acked event id; ozone: the cursor's event id)",
  labelNames: ['source'] as const,
  registers: [registry],
});
const upstreamReconnects = new Counter({
  name: 'atkafka_upstream_reconnects',
  help: 'By source and reason: reconnects to the upstream (relay, tap, jetstream, wikimedia)',
  labelNames: ['source', 'reason'] as const,
  registers: [registry],
});
new Gauge({
  name: 'atkafka_upstream_lag_seconds',
  help: 'By source: how far behind its upstream atkafka is, in seconds (relay: now minus the time of the last event read; jetstream: now minus the time_us of the last event read; wikimedia: now minus the meta.dt of the last event read; ozone: now minus the time up to which every event is in Kafka; tap: none, its events carry no time)',
  labelNames: ['source'] as const,
  registers: [registry],
  collect() {
    if (lastEventTime !== undefined) {
      const t = Date.parse(lastEventTime);
      if (Number.isFinite(t)) this.labels('relay').set(Math.max(0, (Date.now() - t) / 1000));
    }
    if (ozonePositionMs !== undefined) this.labels('ozone').set(Math.max(0, (Date.now() - ozonePositionMs) / 1000));
    if (jetstreamLastUs !== undefined) this.labels('jetstream').set(Math.max(0, Date.now() / 1000 - jetstreamLastUs / 1e6));
    if (wikimediaLastMs !== undefined) this.labels('wikimedia').set(Math.max(0, (Date.now() - wikimediaLastMs) / 1000));
  },
});
const deliveryLatency = new Histogram({
  name: 'atkafka_kafka_delivery_latency_seconds',
  help: 'Produce to broker confirmation, per flush epoch: how long its oldest message waited (the worst in the epoch)',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});
export function kafkaEpochConfirmed(oldestWaitedMs: number): void {
  deliveryLatency.observe(oldestWaitedMs / 1000);
}
const ready = new Gauge({ name: 'atkafka_ready', help: '1 when /readyz says ready: connected upstream and Kafka reachable', registers: [registry] });
const kafkaReachable = new Gauge({ name: 'atkafka_kafka_reachable', help: '1 while the brokers answer (a metadata request in the last 12 s, and no flush stuck for 10 s)', registers: [registry] });
export function readiness(isReady: boolean, kafkaOk: boolean): void {
  ready.set(isReady ? 1 : 0);
  kafkaReachable.set(kafkaOk ? 1 : 0);
}
/** Everything up to this upstream position is in Kafka (whether or not a cursor file keeps it). */
export function upstreamConfirmed(source: string, position: number): void {
  upstreamPosition.labels(source).set(position);
}
export function tapAckPosition(id: number): void {
  upstreamPosition.labels('tap').set(id);
}

const handledEvents = new Counter({
  name: 'atkafka_handled_events',
  help: 'Events handled, by action (operation#create|update|delete, account, identity, info, sync) and collection',
  labelNames: ['action_name', 'collection'] as const,
  registers: [registry],
  collect() {
    publishHandled();
  },
});
let delivered = 0;
let deliveredPublished = 0;
const producedEvents = new Counter({
  name: 'atkafka_produced_events',
  help: 'Messages Kafka confirmed (ok) or refused (error; produced again, never dropped)',
  labelNames: ['status'] as const,
  registers: [registry],
  collect() {
    producedOk.inc(delivered - deliveredPublished);
    deliveredPublished = delivered;
  },
});
const invalidInput = new Counter({
  name: 'atkafka_invalid_input',
  help: 'Upstream input skipped because it is invalid, by source and reason',
  labelNames: ['source', 'reason'] as const,
  registers: [registry],
});
const relayCursor = new Gauge({
  name: 'atkafka_relay_cursor',
  help: 'Highest relay seq with every event up to it confirmed by Kafka (what the cursor file holds)',
  registers: [registry],
});
// Set per event on the hot path as plain variables; turned into gauges only when scraped.
let lastSeq: number | undefined;
let lastEventTime: string | undefined;
new Gauge({
  name: 'atkafka_relay_last_seq',
  help: 'Seq of the last event read from the relay',
  registers: [registry],
  collect() {
    if (lastSeq !== undefined) this.set(lastSeq);
  },
});
new Gauge({
  name: 'atkafka_relay_last_event_time_seconds',
  help: 'Event time of the last relay event read (unix seconds); now minus this is the lag behind the network',
  registers: [registry],
  collect() {
    const ms = lastEventTime === undefined ? Number.NaN : Date.parse(lastEventTime);
    if (!Number.isNaN(ms)) this.set(ms / 1000);
  },
});
const relayConnected = new Gauge({
  name: 'atkafka_relay_connected',
  help: '1 while the relay websocket is open',
  registers: [registry],
});
const relayReconnects = new Counter({
  name: 'atkafka_relay_reconnects',
  help: 'Relay reconnects, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});
const relayGaps = new Counter({
  name: 'atkafka_relay_seq_gaps',
  help: 'Times the relay seq jumped by more than one',
  registers: [registry],
});
const relayGapSize = new Counter({
  name: 'atkafka_relay_seq_gap_missing',
  help: 'Seqs skipped over by relay seq jumps (upper bound on events lost upstream)',
  registers: [registry],
});
const relayOutdated = new Counter({
  name: 'atkafka_relay_outdated_cursor',
  help: 'OutdatedCursor infos: the relay no longer had our cursor, events were lost upstream',
  registers: [registry],
});
const relaySeqAnomalies = new Counter({
  name: 'atkafka_relay_seq_anomalies',
  help: 'Events whose seq breaks the relay\'s order, delivered anyway: jump (far ahead mid-stream; the cursor holds until the next event), outlier (such a jump the next event showed to be bogus), backwards',
  labelNames: ['kind'] as const,
  registers: [registry],
});
const relayOversize = new Counter({
  name: 'atkafka_relay_oversize_frames',
  help: 'Relay connections that failed on a frame larger than --max-frame-size (the frame cannot be read; see the README)',
  registers: [registry],
});
const relayDuplicates = new Counter({
  name: 'atkafka_relay_duplicate_events',
  help: 'Relay events skipped after a reconnect because their seq is at or below what this process already delivered',
  registers: [registry],
});
/** A gauge that reads its value from a source when scraped; returns the setter of that source. */
function gaugeOnScrape(name: string, help: string): (source: () => number) => void {
  let source: () => number = () => 0;
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(source());
    },
  });
  return (s) => {
    source = s;
  };
}
/** The gauges read the count when scraped. */
export const kafkaInFlightFrom = gaugeOnScrape('atkafka_kafka_in_flight', 'Kafka messages handed to the producer and not yet confirmed');
export const kafkaInFlightBytesFrom = gaugeOnScrape('atkafka_kafka_in_flight_bytes', 'Bytes of the Kafka messages handed to the producer and not yet confirmed');
export const decodeBacklogFrom = gaugeOnScrape('atkafka_decode_backlog_frames', 'Frames read and not yet decoded by the decode threads');
const paused = new Gauge({
  name: 'atkafka_backpressure_paused',
  help: '1 while reading upstream is paused because too many messages await Kafka confirmation (or frames await decoding)',
  registers: [registry],
});
const deliveryRetries = new Counter({
  name: 'atkafka_kafka_delivery_retries',
  help: 'Messages produced again after a failed delivery',
  registers: [registry],
});
const eventLatency = new Histogram({
  name: 'atkafka_event_latency_seconds',
  help: 'From reading an upstream event to Kafka confirming all of its messages',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

// action -> collection -> plain count; published to the counter when scraped,
// so the hot path does a map lookup and an add, not a prom-client update.
interface HandledCount {
  n: number;
  published: number;
}
const handledCounts = new Map<string, Map<string, HandledCount>>();

export function eventHandled(actionName: string, collection: string): void {
  let byCollection = handledCounts.get(actionName);
  if (byCollection === undefined) {
    byCollection = new Map();
    handledCounts.set(actionName, byCollection);
  }
  const count = byCollection.get(collection);
  if (count === undefined) byCollection.set(collection, { n: 1, published: 0 });
  else count.n++;
}

function publishHandled(): void {
  for (const [action, byCollection] of handledCounts) {
    for (const [collection, count] of byCollection) {
      if (count.n === count.published) continue;
      handledEvents.labels(action, collection).inc(count.n - count.published);
      count.published = count.n;
    }
  }
}

const producedOk = producedEvents.labels('ok');
const producedError = producedEvents.labels('error');
export function messagesDelivered(count: number): void {
  delivered += count;
}
export function deliveryFailed(): void {
  producedError.inc();
  deliveryRetries.inc();
}

export function inputSkipped(source: string, reason: InputErrorReason): void {
  invalidInput.labels(source, reason).inc();
}

export function relayPosition(seq: number, eventTime: string | undefined): void {
  lastSeq = seq;
  if (eventTime !== undefined) lastEventTime = eventTime;
}
export function relayCursorSaved(seq: number): void {
  relayCursor.set(seq);
  upstreamPosition.labels('relay').set(seq);
}
export function relayConnection(open: boolean): void {
  relayConnected.set(open ? 1 : 0);
  upstreamConnected.labels('relay').set(open ? 1 : 0);
}
export function relayReconnect(reason: string): void {
  relayReconnects.labels(reason).inc();
  upstreamReconnects.labels('relay', reason).inc();
}
export function relaySeqGap(missing: number): void {
  relayGaps.inc();
  relayGapSize.inc(missing);
}
export function relayOutdatedCursor(): void {
  relayOutdated.inc();
}
export function relaySeqAnomaly(kind: 'jump' | 'outlier' | 'backwards'): void {
  relaySeqAnomalies.labels(kind).inc();
}
export function relayOversizeFrame(): void {
  relayOversize.inc();
}
export function relayDuplicate(): void {
  relayDuplicates.inc();
}
let pausedSince: number | undefined;
let pausedMsDone = 0;
let pausedMsPublished = 0;
const pausedSeconds = new Counter({
  name: 'atkafka_backpressure_paused_seconds_total',
  help: 'Seconds reading upstream spent paused for Kafka (or the decode threads); rate() is the share of time paused',
  registers: [registry],
  collect() {
    const total = pausedMsDone + (pausedSince === undefined ? 0 : performance.now() - pausedSince);
    this.inc((total - pausedMsPublished) / 1000);
    pausedMsPublished = total;
  },
});
void pausedSeconds;
export function backpressure(on: boolean): void {
  paused.set(on ? 1 : 0);
  if (on && pausedSince === undefined) pausedSince = performance.now();
  else if (!on && pausedSince !== undefined) {
    pausedMsDone += performance.now() - pausedSince;
    pausedSince = undefined;
  }
}
export function eventConfirmed(seconds: number): void {
  eventLatency.observe(seconds);
}

// Filters and enrichment: counted in plain variables on the hot path, published when scraped.
const filteredCounts: Record<'collection' | 'service', number> = { collection: 0, service: 0 };
const filteredPublished: Record<'collection' | 'service', number> = { collection: 0, service: 0 };
const filteredEvents = new Counter({
  name: 'atkafka_filtered_events',
  help: 'Messages not produced because a filter left them out, by reason (collection, service); their upstream position still advances',
  labelNames: ['reason'] as const,
  registers: [registry],
  collect() {
    for (const reason of ['collection', 'service'] as const) {
      this.labels(reason).inc(filteredCounts[reason] - filteredPublished[reason]);
      filteredPublished[reason] = filteredCounts[reason];
    }
  },
});
filteredEvents.labels('collection');
filteredEvents.labels('service');
export function eventsFiltered(reason: 'collection' | 'service', count: number): void {
  filteredCounts[reason] += count;
}

const enrichOutcome = new Counter({
  name: 'atkafka_enrichment',
  help: 'Messages by how enrichment went: cached (metadata at hand), waited (after a lookup), unresolved (no DID document: eventMetadata null), timeout (produced without metadata after --enrich-timeout)',
  labelNames: ['outcome'] as const,
  registers: [registry],
  collect() {
    for (const k of ENRICH_OUTCOMES) {
      this.labels(k).inc(enrichCounts[k] - enrichPublished[k]);
      enrichPublished[k] = enrichCounts[k];
    }
  },
});
const ENRICH_OUTCOMES = ['cached', 'waited', 'unresolved', 'timeout'] as const;
export type EnrichOutcome = (typeof ENRICH_OUTCOMES)[number];
const enrichCounts: Record<EnrichOutcome, number> = { cached: 0, waited: 0, unresolved: 0, timeout: 0 };
const enrichPublished: Record<EnrichOutcome, number> = { cached: 0, waited: 0, unresolved: 0, timeout: 0 };
for (const k of ENRICH_OUTCOMES) enrichOutcome.labels(k);
export function enriched(outcome: EnrichOutcome, count = 1): void {
  enrichCounts[outcome] += count;
}

let parkedNow = 0;
new Gauge({
  name: 'atkafka_enrichment_waiting',
  help: 'Messages waiting for an identity lookup before they are produced (they count toward --max-in-flight)',
  registers: [registry],
  collect() {
    this.set(parkedNow);
  },
});
export function enrichmentWaiting(count: number): void {
  parkedNow = count;
}

// Tap mode (the first three are the Go version's names).
const acksSent = new Counter({
  name: 'atkafka_acks_sent',
  help: 'Acks sent to Tap, each after Kafka confirmed every message of its event (ok); an ack that found no open socket waits for the next one',
  labelNames: ['status'] as const,
  registers: [registry],
});
const acksOk = acksSent.labels('ok');
export function tapAckSent(status: 'ok'): void {
  if (status === 'ok') acksOk.inc();
}
let tapOpen: () => number = () => 0;
let tapUnsent: () => number = () => 0;
new Gauge({
  name: 'atkafka_tap_event_buffer_size',
  help: 'Tap events received and not yet acknowledged (waiting for an identity or for Kafka)',
  registers: [registry],
  collect() {
    this.set(tapOpen());
  },
});
new Gauge({
  name: 'atkafka_tap_ack_event_buffer_size',
  help: 'Acks of confirmed Tap events waiting for a connection to be sent on',
  registers: [registry],
  collect() {
    this.set(tapUnsent());
  },
});
export function tapBuffersFrom(open: () => number, unsent: () => number): void {
  tapOpen = open;
  tapUnsent = unsent;
}
const tapConnected = new Gauge({ name: 'atkafka_tap_connected', help: "1 while Tap's /channel websocket is open", registers: [registry] });
export function tapConnection(open: boolean): void {
  tapConnected.set(open ? 1 : 0);
  upstreamConnected.labels('tap').set(open ? 1 : 0);
}
const tapReconnects = new Counter({ name: 'atkafka_tap_reconnects', help: 'Reconnects to Tap, by reason', labelNames: ['reason'] as const, registers: [registry] });
export function tapReconnect(reason: string): void {
  tapReconnects.labels(reason).inc();
  upstreamReconnects.labels('tap', reason).inc();
}

const tapRepos = new Gauge({
  name: 'atkafka_tap_repos',
  help: "Repos Tap tracks (known), and by backfill state when --tap-metrics-url is given (backfilling, backfilled, failed: from Tap's tap_resyncs_*_total)",
  labelNames: ['state'] as const,
  registers: [registry],
});
const tapRecordsIndexed = new Gauge({ name: 'atkafka_tap_records_indexed', help: "Records in Tap's index (its /stats/record-count)", registers: [registry] });
const tapOutbox = new Gauge({
  name: 'atkafka_tap_outbox_buffer',
  help: "Events in Tap's outbox: unsent, in flight, or acked and not yet deleted (Tap deletes every 10 s); 0 = nothing outstanding",
  registers: [registry],
});
const tapResync = new Gauge({ name: 'atkafka_tap_resync_buffer', help: 'Live commits Tap holds while their repo is being backfilled', registers: [registry] });
export function tapProgress(p: { repos?: number; recordsIndexed?: number; outboxBuffer?: number; resyncBuffer?: number; backfilling?: number; backfilled?: number; failed?: number }): void {
  if (p.repos !== undefined) tapRepos.labels('known').set(p.repos);
  if (p.backfilling !== undefined) tapRepos.labels('backfilling').set(p.backfilling);
  if (p.backfilled !== undefined) tapRepos.labels('backfilled').set(p.backfilled);
  if (p.failed !== undefined) tapRepos.labels('failed').set(p.failed);
  if (p.recordsIndexed !== undefined) tapRecordsIndexed.set(p.recordsIndexed);
  if (p.outboxBuffer !== undefined) tapOutbox.set(p.outboxBuffer);
  if (p.resyncBuffer !== undefined) tapResync.set(p.resyncBuffer);
}

// ------------------------------------------------------------------ Ozone
let ozoneLastEventTime: number | undefined;
let ozonePositionMs: number | undefined;
new Gauge({
  name: 'atkafka_ozone_last_event_time_seconds',
  help: 'createdAt of the last moderation event read from Ozone (unix seconds)',
  registers: [registry],
  collect() {
    if (ozoneLastEventTime !== undefined) this.set(ozoneLastEventTime / 1000);
  },
});
new Gauge({
  name: 'atkafka_ozone_position_seconds',
  help: 'Time up to which every moderation event is confirmed by Kafka (unix seconds): the saved cursor, or the upper bound of the last poll that reached the end of the log',
  registers: [registry],
  collect() {
    if (ozonePositionMs !== undefined) this.set(ozonePositionMs / 1000);
  },
});
new Gauge({
  name: 'atkafka_ozone_lag_seconds',
  help: 'Now minus atkafka_ozone_position_seconds: how far behind Ozone Kafka is (at least the settle lag)',
  registers: [registry],
  collect() {
    if (ozonePositionMs !== undefined) this.set(Math.max(0, (Date.now() - ozonePositionMs) / 1000));
  },
});
const ozoneCursorId = new Gauge({ name: 'atkafka_ozone_cursor_event_id', help: 'Event id of the saved Ozone cursor (every event up to it is in Kafka)', registers: [registry] });
const ozonePollErrors = new Counter({
  name: 'atkafka_ozone_poll_errors',
  help: 'Failed queryEvents polls and logins, by kind (auth, rate-limited, ozone-down, pds-down, server, bad-response, request)',
  labelNames: ['kind'] as const,
  registers: [registry],
});
const ozonePolls = new Counter({ name: 'atkafka_ozone_polls', help: 'queryEvents pages read, by result (events, empty)', labelNames: ['result'] as const, registers: [registry] });
const ozoneSessions = new Counter({
  name: 'atkafka_ozone_sessions',
  help: 'Logins (create) and session refreshes (refresh) on the moderator PDS, by status',
  labelNames: ['kind', 'status'] as const,
  registers: [registry],
});
const ozoneConnected = new Gauge({ name: 'atkafka_ozone_connected', help: '1 while the last queryEvents poll succeeded', registers: [registry] });

export function ozoneEventRead(createdAtMs: number): void {
  ozoneLastEventTime = createdAtMs;
}
export function ozonePosition(throughMs: number): void {
  ozonePositionMs = throughMs;
}
export function ozoneCursorSaved(id: number): void {
  ozoneCursorId.set(id);
  upstreamPosition.labels('ozone').set(id);
}
export function ozonePollError(kind: string): void {
  ozonePollErrors.labels(kind).inc();
  ozoneConnected.set(0);
  upstreamConnected.labels('ozone').set(0);
}
export function ozonePoll(events: number): void {
  ozonePolls.labels(events > 0 ? 'events' : 'empty').inc();
  ozoneConnected.set(1);
  upstreamConnected.labels('ozone').set(1);
}
export function ozoneSession(kind: 'create' | 'refresh', ok: boolean): void {
  ozoneSessions.labels(kind, ok ? 'ok' : 'error').inc();
}

// Jetstream source.
let jetstreamLastUs: number | undefined;
const jetstreamHost = new Gauge({
  name: 'atkafka_jetstream_host',
  help: 'By host: 1 for the Jetstream host atkafka reads (or tries) now, 0 for the others of --jetstream-host',
  labelNames: ['host'] as const,
  registers: [registry],
});
const jetstreamFailovers = new Counter({ name: 'atkafka_jetstream_failovers', help: 'Switches to another Jetstream host of --jetstream-host', registers: [registry] });
const jetstreamDuplicates = new Counter({
  name: 'atkafka_jetstream_duplicates_dropped',
  help: 'Events Jetstream sent again after a reconnect, failover or restart (the rewind) that were already produced, and so were dropped',
  registers: [registry],
});
const jetstreamCursor = new Gauge({ name: 'atkafka_jetstream_cursor_time_us', help: 'time_us of the saved Jetstream cursor (every event up to it is in Kafka)', registers: [registry] });
export function jetstreamRead(timeUs: number): void {
  jetstreamLastUs = timeUs;
}
export function jetstreamHosts(hosts: string[], current: string): void {
  for (const h of hosts) jetstreamHost.labels(h).set(h === current ? 1 : 0);
}
export function jetstreamFailover(): void {
  jetstreamFailovers.inc();
}
export function jetstreamDuplicate(): void {
  jetstreamDuplicates.inc();
}
export function jetstreamCursorSaved(timeUs: number): void {
  jetstreamCursor.set(timeUs);
}
export function jetstreamConnection(open: boolean): void {
  upstreamConnected.labels('jetstream').set(open ? 1 : 0);
}
export function jetstreamReconnect(reason: string): void {
  upstreamReconnects.labels('jetstream', reason).inc();
}

// Wikimedia EventStreams source.
let wikimediaLastMs: number | undefined;
new Gauge({
  name: 'atkafka_wikimedia_lag_seconds',
  help: 'Now minus the time (meta.dt) of the last Wikimedia event read',
  registers: [registry],
  collect() {
    if (wikimediaLastMs !== undefined) this.set(Math.max(0, (Date.now() - wikimediaLastMs) / 1000));
  },
});
// atkafka_wikimedia_lag_seconds reads 0 both before the first event and when caught up; a time of 0 here can only mean none yet.
new Gauge({
  name: 'atkafka_wikimedia_last_event_time_seconds',
  help: 'Time (meta.dt) of the last Wikimedia event read (unix seconds)',
  registers: [registry],
  collect() {
    if (wikimediaLastMs !== undefined) this.set(wikimediaLastMs / 1000);
  },
});
const wikimediaCursorTime = new Gauge({ name: 'atkafka_wikimedia_cursor_event_time_seconds', help: 'Time (meta.dt) of the last event read when the Wikimedia cursor was last saved', registers: [registry] });
export function wikimediaRead(ms: number): void {
  wikimediaLastMs = ms;
}
export function wikimediaCursorSaved(ms: number | undefined): void {
  if (ms !== undefined) wikimediaCursorTime.set(ms / 1000);
}
export function wikimediaConnection(open: boolean): void {
  upstreamConnected.labels('wikimedia').set(open ? 1 : 0);
}
export function wikimediaReconnect(reason: string): void {
  upstreamReconnects.labels('wikimedia', reason).inc();
}

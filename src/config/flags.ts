import type { FlagSpec } from '../cli/flags.ts';

/** Flags every command has, as in the Go at-kafka (names, env vars, defaults). */
export const globalFlags: FlagSpec[] = [
  { name: 'debug', kind: 'bool', env: ['ATKAFKA_DEBUG', 'DEBUG'], default: 'false', help: 'Log at debug level (the same as --log-level debug)' },
  {
    name: 'log-level',
    kind: 'string',
    env: ['ATKAFKA_LOG_LEVEL', 'LOG_LEVEL'],
    default: 'info',
    help: 'Log level: fatal, error, warn, info, debug, trace or silent',
  },
  {
    name: 'log-format',
    kind: 'string',
    env: ['ATKAFKA_LOG_FORMAT'],
    default: 'auto',
    help: 'json (one JSON object per line, for log shippers), pretty (for people), or auto: pretty when stderr is a terminal, else json',
  },
  {
    name: 'metrics-listen-address',
    kind: 'string',
    env: ['ATKAFKA_METRICS_LISTEN_ADDRESS', 'METRICS_LISTEN_ADDRESS'],
    default: '0.0.0.0:6009',
    help: 'host:port serving /metrics (Prometheus) and /health; empty to disable',
  },
];

/** Kafka producer flags (the first two are the Go version's; the rest are new). */
export const kafkaFlags: FlagSpec[] = [
  { name: 'bootstrap-servers', kind: 'list', env: ['ATKAFKA_BOOTSTRAP_SERVERS'], required: true, help: 'Kafka bootstrap servers, host:port,...' },
  { name: 'output-topic', kind: 'string', env: ['ATKAFKA_OUTPUT_TOPIC'], required: true, help: 'Kafka topic to produce events to (created when missing)' },
  { name: 'topic-partitions', kind: 'int', env: ['ATKAFKA_TOPIC_PARTITIONS'], default: '200', help: 'Partitions of the topic when atkafka creates it' },
  {
    name: 'replication-factor',
    kind: 'int',
    env: ['ATKAFKA_REPLICATION_FACTOR'],
    default: '-1',
    help: "Replication factor of the topic when atkafka creates it; -1 = the broker's default.replication.factor",
  },
  { name: 'compression', kind: 'string', env: ['ATKAFKA_COMPRESSION'], default: 'zstd', help: 'Producer compression: zstd, lz4, gzip, snappy or none' },
  {
    name: 'compression-level',
    kind: 'int',
    env: ['ATKAFKA_COMPRESSION_LEVEL'],
    default: '1',
    help: 'Codec level (zstd 1..12, gzip 1..9, lz4 0..12); -1 = the codec default. zstd 1 costs far less CPU than 3 for a few % larger batches',
  },
  { name: 'linger', kind: 'duration', env: ['ATKAFKA_LINGER'], default: '20ms', help: 'How long the producer waits to fill a batch' },
  { name: 'batch-size', kind: 'int', env: ['ATKAFKA_BATCH_SIZE'], default: '1048576', help: 'Producer batch size in bytes' },
  {
    name: 'max-message-bytes',
    kind: 'int',
    env: ['ATKAFKA_MAX_MESSAGE_BYTES'],
    default: '20971520',
    help: 'Largest message produced; also max.message.bytes of a topic atkafka creates',
  },
  {
    name: 'max-in-flight',
    kind: 'int',
    env: ['ATKAFKA_MAX_IN_FLIGHT'],
    default: '10000',
    help: 'Messages awaiting Kafka confirmation (plus frames being decoded) before reading upstream pauses (bounds memory)',
  },
  {
    name: 'max-in-flight-bytes',
    kind: 'int',
    env: ['ATKAFKA_MAX_IN_FLIGHT_BYTES'],
    default: '33554432',
    help: 'Bytes of messages awaiting Kafka confirmation (plus frames being decoded) before reading upstream pauses (bounds memory)',
  },
  { name: 'client-id', kind: 'string', env: ['ATKAFKA_CLIENT_ID'], default: 'atkafka', help: 'Kafka client.id' },
  { name: 'sasl-mechanism', kind: 'string', env: ['ATKAFKA_SASL_MECHANISM'], help: 'SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512' },
  { name: 'sasl-username', kind: 'string', env: ['ATKAFKA_SASL_USERNAME'], help: 'SASL username' },
  { name: 'sasl-password', kind: 'string', env: ['ATKAFKA_SASL_PASSWORD'], secret: true, help: 'SASL password (prefer the env var)' },
  { name: 'tls', kind: 'bool', env: ['ATKAFKA_TLS'], default: 'false', help: 'Connect to Kafka over TLS' },
  { name: 'tls-ca-file', kind: 'string', env: ['ATKAFKA_TLS_CA_FILE'], help: 'PEM file of the CA that signed the brokers (implies --tls)' },
  {
    name: 'kafka-option',
    kind: 'list',
    env: ['ATKAFKA_KAFKA_OPTIONS'],
    help: 'Extra librdkafka producer property key=value (repeatable)',
  },
];

/** Flags of `atkafka firehose`, as in the Go version. */
export const firehoseFlags: FlagSpec[] = [
  { name: 'relay-host', kind: 'string', env: ['ATKAFKA_RELAY_HOST'], default: 'wss://bsky.network', help: 'Relay to subscribe to (ws:// or wss://)' },
  {
    name: 'plc-host',
    kind: 'string',
    env: ['ATKAFKA_PLC_HOST'],
    help: 'PLC directory for event metadata (http or https URL); empty: https://plc.directory, as the Go version. The service filters need it set',
  },
  {
    name: 'api-host',
    kind: 'string',
    env: ['ATKAFKA_API_HOST'],
    help: 'AppView for profiles in eventMetadata (e.g. https://public.api.bsky.app); empty: profile is null',
  },
  {
    name: 'tap-workers',
    kind: 'int',
    env: ['ATKAFKA_TAP_WORKERS'],
    default: '10',
    help: "Accepted for the Go version's command lines; atkafka handles Tap events on one thread (parsing is cheap) and bounds what is in flight with --max-in-flight",
  },
  {
    name: 'osprey-compatible',
    kind: 'bool',
    env: ['ATKAFKA_OSPREY_COMPATIBLE'],
    default: 'false',
    help: "Wrap every message in the envelope Osprey's Kafka worker reads (action_name, action_id, data, send_time)",
  },
  {
    name: 'watched-services',
    kind: 'list',
    env: ['ATKAFKA_WATCHED_SERVICES'],
    help: 'Only events of accounts whose PDS host is one of these (*.bsky.network: that host and every host under it); needs --plc-host',
  },
  { name: 'ignored-services', kind: 'list', env: ['ATKAFKA_IGNORED_SERVICES'], help: 'Drop events of accounts on these PDS hosts (same patterns); needs --plc-host' },
  {
    name: 'watched-collections',
    kind: 'list',
    env: ['ATKAFKA_WATCHED_COLLECTIONS'],
    help: 'Only record ops of these collections (app.bsky.*: the namespace and everything under it; else exact). #identity, #account, #sync pass',
  },
  { name: 'ignored-collections', kind: 'list', env: ['ATKAFKA_IGNORED_COLLECTIONS'], help: 'Drop record ops of these collections (same patterns)' },
];

/** New in this version: enrichment controls, Osprey ids, routing. Shared by every source that enriches. */
export const enrichFlags: FlagSpec[] = [
  {
    name: 'enrich',
    kind: 'bool',
    env: ['ATKAFKA_ENRICH'],
    default: 'true',
    help: 'Add eventMetadata (DID document, PDS, verified handle, account age, profile) as the Go version always does; false: eventMetadata is null and no lookups run',
  },
  {
    name: 'enrich-timeout',
    kind: 'duration',
    env: ['ATKAFKA_ENRICH_TIMEOUT'],
    default: '1s',
    help: 'Longest an event waits for its identity lookup; then it is produced without metadata (never dropped)',
  },
  { name: 'enrich-concurrency', kind: 'int', env: ['ATKAFKA_ENRICH_CONCURRENCY'], default: '64', help: 'DIDs looked up at once' },
  {
    name: 'identity-cache-entries',
    kind: 'int',
    env: ['ATKAFKA_IDENTITY_CACHE_ENTRIES'],
    default: '100000',
    help: 'DIDs each identity cache (documents, audit logs, handles, profiles) holds, as the Go version; about 2-4 KB each when full',
  },
  { name: 'plc-rate-limit', kind: 'int', env: ['ATKAFKA_PLC_RATE_LIMIT'], default: '200', help: 'Requests per second to the PLC host (and to the API host)' },
  {
    name: 'allow-private-identity-hosts',
    kind: 'bool',
    env: ['ATKAFKA_ALLOW_PRIVATE_IDENTITY_HOSTS'],
    default: 'false',
    help: 'Let did:web documents and handle checks fetch from loopback, private or link-local addresses (refused by default: anyone can name such a host)',
  },
  {
    name: 'dns-servers',
    kind: 'list',
    env: ['ATKAFKA_DNS_SERVERS'],
    help: "DNS servers (ip or ip:port) for handle TXT lookups; empty: the system's",
  },
  {
    name: 'handle-well-known-url',
    kind: 'string',
    env: ['ATKAFKA_HANDLE_WELL_KNOWN_URL'],
    default: 'https://{handle}/.well-known/atproto-did',
    help: 'Where a handle is checked over HTTPS ({handle} is replaced)',
  },
  {
    name: 'did-web-url',
    kind: 'string',
    env: ['ATKAFKA_DID_WEB_URL'],
    default: 'https://{host}/.well-known/did.json',
    help: 'Where a did:web document is fetched ({host} is replaced)',
  },
  { name: 'osprey-worker-id', kind: 'int', env: ['ATKAFKA_OSPREY_WORKER_ID'], default: '0', help: 'Worker id (0-1023) in Osprey action_id snowflakes; give each instance its own' },
  {
    name: 'osprey-epoch',
    kind: 'int',
    env: ['ATKAFKA_OSPREY_EPOCH'],
    default: '1420070400000',
    help: "Epoch (unix ms) of Osprey action_id snowflakes; Osprey's compose uses 1420070400000",
  },
  {
    name: 'kafka-headers',
    kind: 'bool',
    env: ['ATKAFKA_KAFKA_HEADERS'],
    default: 'true',
    help: 'Kafka headers kind, collection, action, seq, source on every message; false saves the producer about 4 us of CPU per message',
  },
  {
    name: 'format',
    kind: 'string',
    env: ['ATKAFKA_FORMAT'],
    default: 'atkafka',
    help: "Message shape: atkafka (the Go at-kafka's JSON) or jetstream (Jetstream v1's JSON: did, time_us, kind, commit/identity/account; no eventMetadata)",
  },
  {
    name: 'jetstream-compress',
    kind: 'bool',
    env: ['ATKAFKA_JETSTREAM_COMPRESS'],
    default: 'false',
    help: "With --format jetstream: each message one zstd frame with Jetstream's dictionary (headers content-encoding, zstd-dictionary), as Jetstream's compress=true",
  },
  {
    name: 'topic-template',
    kind: 'string',
    env: ['ATKAFKA_TOPIC_TEMPLATE'],
    help: 'Route messages to topics by what they are, e.g. atproto.{collection} or atproto.{kind} ({source} too); created on first use like --output-topic',
  },
];

/** `atkafka firehose tap`: the Go version's two, and Tap's admin password. */
export const tapFlags: FlagSpec[] = [
  { name: 'tap-host', kind: 'string', env: ['ATKAFKA_TAP_HOST'], default: 'ws://localhost:2480', help: 'Tap to read events from (ws://, wss://, http://, https://); its /channel' },
  {
    name: 'disable-acks',
    kind: 'bool',
    env: ['ATKAFKA_DISABLE_ACKS'],
    default: 'false',
    help: 'Send no acks: Tap then counts a socket write as delivered, so a crash or a Kafka outage loses events',
  },
  {
    name: 'tap-admin-password',
    kind: 'string',
    env: ['ATKAFKA_TAP_ADMIN_PASSWORD'],
    secret: true,
    help: "Tap's admin password (TAP_ADMIN_PASSWORD; HTTP Basic, user admin); prefer the env var; never logged",
  },
  {
    name: 'tap-stats-interval',
    kind: 'duration',
    env: ['ATKAFKA_TAP_STATS_INTERVAL'],
    default: '10s',
    help: "How often backfill progress is read from Tap's /stats and logged; 0 never",
  },
  {
    name: 'tap-metrics-url',
    kind: 'string',
    env: ['ATKAFKA_TAP_METRICS_URL'],
    help: "Tap's metrics listener (TAP_METRICS_LISTEN, e.g. http://localhost:6010), for repos by backfill state in the progress line",
  },
];

/** Reconnecting, for every websocket source. */
export const reconnectFlags: FlagSpec[] = [
  { name: 'reconnect-backoff', kind: 'duration', env: ['ATKAFKA_RECONNECT_BACKOFF'], default: '1s', help: 'First reconnect delay (doubles, jittered)' },
  { name: 'reconnect-backoff-max', kind: 'duration', env: ['ATKAFKA_RECONNECT_BACKOFF_MAX'], default: '30s', help: 'Longest reconnect delay' },
];

/** New in this version: what losslessness needs. */
export const relayFlags: FlagSpec[] = [
  {
    name: 'cursor-file',
    kind: 'string',
    env: ['ATKAFKA_CURSOR_FILE'],
    default: 'atkafka-cursor.json',
    help: 'File holding the relay seq up to which Kafka confirmed everything; resumed from on start. Empty: keep no cursor (loses the gap on restart)',
  },
  {
    name: 'cursor',
    kind: 'int',
    env: ['ATKAFKA_CURSOR'],
    help: 'Seq to start after when the cursor file does not exist yet (default: start live)',
  },
  {
    name: 'max-frame-size',
    kind: 'int',
    env: ['ATKAFKA_MAX_FRAME_SIZE'],
    default: '16777216',
    help: 'Largest relay frame read from the socket, in bytes. Frames above the 5 MB protocol limit that fit are skipped as invalid; a larger one fails the connection (logged, retried): raise this to get past it',
  },
  { name: 'cursor-save-interval', kind: 'duration', env: ['ATKAFKA_CURSOR_SAVE_INTERVAL'], default: '1s', help: 'How often the cursor file is rewritten' },
  {
    name: 'stall-timeout',
    kind: 'duration',
    env: ['ATKAFKA_STALL_TIMEOUT'],
    default: '60s',
    help: 'Reconnect when the relay sends nothing for this long (not counted while paused by backpressure); 0 disables',
  },
  ...reconnectFlags,
  {
    name: 'decode-threads',
    kind: 'int',
    env: ['ATKAFKA_DECODE_THREADS'],
    default: '1',
    help: 'Threads that decode, verify and format frames besides the one holding the socket and Kafka; 0 decodes on that thread',
  },
];

export const replayFlags: FlagSpec[] = [
  { name: 'file', kind: 'string', env: [], required: true, help: 'Frames file: [u32 LE length][frame]..., plain or .zst' },
  { name: 'host', kind: 'string', env: [], default: '127.0.0.1', help: 'Address to listen on' },
  { name: 'port', kind: 'int', env: [], default: '0', help: 'Port to listen on (0: any free port, printed on start)' },
  { name: 'rate', kind: 'int', env: [], help: 'Events per second (default: as fast as the client reads)' },
  { name: 'loop', kind: 'bool', env: [], default: 'false', help: 'Repeat the file forever with rewritten, increasing seqs' },
  { name: 'limit', kind: 'int', env: [], help: 'Stop sending after this many events (then stay idle like a quiet relay)' },
];

/** `atkafka ozone-events`: the Go version's four, and what losslessness needs. */
export const ozoneFlags: FlagSpec[] = [
  { name: 'pds-host', kind: 'string', env: ['ATKAFKA_OZONE_PDS_HOST'], required: true, help: 'PDS of the moderator account (http or https URL); queryEvents goes through it to Ozone' },
  { name: 'identifier', kind: 'string', env: ['ATKAFKA_OZONE_IDENTIFIER'], required: true, help: 'Handle, DID or email of a moderator account of the labeler' },
  { name: 'password', kind: 'string', env: ['ATKAFKA_OZONE_PASSWORD'], secret: true, help: 'Its password (an app password works); prefer the env var or --password-file; never logged' },
  {
    name: 'password-file',
    kind: 'string',
    env: ['ATKAFKA_OZONE_PASSWORD_FILE'],
    help: 'File holding the password (a Docker or Kubernetes secret); read again at every login, so a rotated password needs no restart',
  },
  { name: 'labeler-did', kind: 'string', env: ['ATKAFKA_OZONE_LABELER_DID'], required: true, help: "DID of the moderation service (Ozone's service DID): atproto-proxy: <did>#atproto_labeler" },
  {
    name: 'cursor-file',
    kind: 'string',
    env: ['ATKAFKA_OZONE_CURSOR_FILE'],
    default: 'ozone-cursor.json',
    help: "File holding Ozone's cursor up to which Kafka confirmed every event; resumed from on start (once, the Go version's ozone-cursor.txt when this does not exist). Empty: keep none",
  },
  {
    name: 'start',
    kind: 'string',
    env: ['ATKAFKA_OZONE_START'],
    default: 'beginning',
    help: 'Where to start without a cursor file: beginning (the whole log, as the Go version), now, or an RFC 3339 time (events created at or after it)',
  },
  { name: 'poll-interval', kind: 'duration', env: ['ATKAFKA_OZONE_POLL_INTERVAL'], default: '1s', help: 'Wait between polls once the log is read to its end (a full page is followed at once)' },
  { name: 'page-size', kind: 'int', env: ['ATKAFKA_OZONE_PAGE_SIZE'], default: '100', help: 'Events per queryEvents page (1..100)' },
  {
    name: 'settle-lag',
    kind: 'duration',
    env: ['ATKAFKA_OZONE_SETTLE_LAG'],
    default: '5s',
    help: 'Only read events created at least this long ago: Ozone stamps createdAt before its transaction commits, so a slow commit can appear behind a later event; 0 risks missing those',
  },
  { name: 'request-timeout', kind: 'duration', env: ['ATKAFKA_OZONE_REQUEST_TIMEOUT'], default: '30s', help: 'Longest wait for one answer of the PDS' },
];

/** `atkafka firehose jetstream`: new in this version. */
export const jetstreamFlags: FlagSpec[] = [
  {
    name: 'jetstream-host',
    kind: 'list',
    env: ['ATKAFKA_JETSTREAM_HOST'],
    default: 'wss://jetstream1.us-east.bsky.network,wss://jetstream2.us-east.bsky.network,wss://jetstream1.us-west.bsky.network,wss://jetstream2.us-west.bsky.network',
    help: 'Jetstream hosts (ws://, wss://, http://, https://; path /subscribe unless given), in order: after two connections to one bring nothing, the next is used',
  },
  {
    name: 'watched-dids',
    kind: 'list',
    env: ['ATKAFKA_WATCHED_DIDS'],
    help: "Only events of these accounts (Jetstream's wantedDids, up to 10000; more are filtered here)",
  },
  {
    name: 'upstream-compress',
    kind: 'bool',
    env: ['ATKAFKA_UPSTREAM_COMPRESS'],
    default: 'true',
    help: "Ask Jetstream for zstd-compressed messages (compress=true, its dictionary): about half the bandwidth for a few us of CPU a message",
  },
  {
    name: 'cursor-file',
    kind: 'string',
    env: ['ATKAFKA_CURSOR_FILE'],
    default: 'jetstream-cursor.json',
    help: 'File holding the time_us (and its host) up to which Kafka confirmed every event; resumed from on start. Empty: keep none (a restart starts live)',
  },
  { name: 'cursor', kind: 'int', env: ['ATKAFKA_CURSOR'], help: 'time_us (unix microseconds) to start at when the cursor file does not exist yet (default: live)' },
  {
    name: 'jetstream-rewind',
    kind: 'duration',
    env: ['ATKAFKA_JETSTREAM_REWIND'],
    default: '10s',
    help: "On another host than the cursor's, resume this much earlier (each host stamps time_us with its own clock); what comes twice is dropped",
  },
  { name: 'cursor-save-interval', kind: 'duration', env: ['ATKAFKA_CURSOR_SAVE_INTERVAL'], default: '1s', help: 'How often the cursor file is rewritten' },
  {
    name: 'stall-timeout',
    kind: 'duration',
    env: ['ATKAFKA_STALL_TIMEOUT'],
    default: '60s',
    help: 'Reconnect when Jetstream sends nothing (no event, no ping) for this long, not counted while paused by backpressure; 0 disables',
  },
  ...reconnectFlags,
];

/** `atkafka wikimedia`: new in this version. */
export const wikimediaFlags: FlagSpec[] = [
  { name: 'url', kind: 'string', env: ['ATKAFKA_WIKIMEDIA_URL'], default: 'https://stream.wikimedia.org', help: 'Wikimedia EventStreams (or a server speaking its protocol); streams are read from <url>/v2/stream/<streams>' },
  { name: 'stream', kind: 'list', env: ['ATKAFKA_WIKIMEDIA_STREAM'], default: 'recentchange', help: 'Streams to read, comma list (recentchange, page-create, revision-create, ...)' },
  { name: 'key', kind: 'string', env: ['ATKAFKA_WIKIMEDIA_KEY'], default: 'wiki', help: "Kafka key: wiki (the event's wiki, e.g. enwiki) or page (wiki and page title: one page's events in order)" },
  {
    name: 'cursor-file',
    kind: 'string',
    env: ['ATKAFKA_CURSOR_FILE'],
    default: 'wikimedia-cursor.json',
    help: 'File holding the SSE id (Wikimedia\'s Kafka positions) up to which Kafka confirmed every event; sent as Last-Event-ID on start. Empty: keep none',
  },
  { name: 'since', kind: 'string', env: ['ATKAFKA_WIKIMEDIA_SINCE'], help: 'Without a cursor file: start at this time (RFC 3339; EventStreams keeps about 7 days); default: now' },
  { name: 'cursor-save-interval', kind: 'duration', env: ['ATKAFKA_CURSOR_SAVE_INTERVAL'], default: '1s', help: 'How often the cursor file is rewritten' },
  {
    name: 'stall-timeout',
    kind: 'duration',
    env: ['ATKAFKA_STALL_TIMEOUT'],
    default: '60s',
    help: 'Reconnect when the stream sends nothing (no event, no heartbeat) for this long, not counted while paused by backpressure; 0 disables',
  },
  ...reconnectFlags,
];

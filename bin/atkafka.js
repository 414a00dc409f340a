#!/usr/bin/env -S node --max-semi-space-size=8
// Entry point: checks the runtime before loading TypeScript sources that need it.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `atkafka: needs Node.js 24 or newer, this is ${process.version}; run ./atkafka from the checkout (after npm run setup) or npm exec atkafka\n`,
  );
  process.exit(2);
}
try {
  const { main, loadDotEnv } = await import('../src/cli/main.ts');
  loadDotEnv();
  const code = await main(process.argv.slice(2), process.env);
  process.exitCode = code;
  // Shut down: everything is drained and saved. A lookup still in the thread pool (getaddrinfo cannot be
  // cancelled) or a straggling socket must not hold the process up; the timer itself keeps nothing alive.
  setTimeout(() => process.exit(code), 1000).unref();
} catch (err) {
  process.stderr.write(`atkafka: ${err instanceof Error ? err.message : String(err)}\n`);
  // A UsageError from before main() (the .env file) is a configuration error like any other.
  if (err instanceof Error && err.name === 'UsageError') process.stderr.write("Run 'atkafka --help' for usage.\n");
  process.exitCode = err instanceof Error && err.name === 'UsageError' ? 2 : 1;
}

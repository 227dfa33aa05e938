// A pg-boss inbox worker for the engine-restart test: prints "RAN <event id>" for every run of its handler
// and "DUPLICATE <key>" for every job handed out again after its run completed (stdout is synchronous on
// pipes, so a line is never lost to a crash). Log lines go to stderr.
// Env: DB_URL (the private cluster), QUEUE, CONCURRENCY.
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { INBOX_SECRET } from './cluster.js';

const inbox = createPgBossInbox({
  // Maintenance (which expires jobs) every second: a job whose fetch was lost in the crash comes back
  // within seconds of its expiry (set by the web side, which writes the jobs).
  connection: { connectionString: process.env.DB_URL!, maintenanceIntervalSeconds: 1 },
  queueName: process.env.QUEUE ?? 'hg_restart',
});
inbox.worker({
  stripe: {
    secret: INBOX_SECRET,
    onEvent: (event: { id: string }) => void process.stdout.write(`RAN ${event.id}\n`),
  },
  concurrency: Number(process.env.CONCURRENCY ?? 4),
  // A claim whose answer the crash swallowed may have committed: it holds the key until its lease ends
  // (the store's undo needs the server too). 20 s rather than 60 s keeps that wait inside the test, and
  // still outlasts a run whose completion waits for the restart (a shorter lease would let a second run in).
  leaseMs: 20_000,
  pollingIntervalSeconds: 0.5,
  inFlightDelayMs: 500,
  onOutcome: (outcome) => {
    if (outcome.result === 'duplicate') process.stdout.write(`DUPLICATE ${outcome.key ?? ''}\n`);
  },
});
process.once('SIGTERM', () => void inbox.close(2000).then(() => process.exit(0)));
console.log('READY 0');

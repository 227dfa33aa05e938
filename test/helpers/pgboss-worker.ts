// A pg-boss inbox worker for the crash test: records each success (with its ctx.attempt) in PostgreSQL; with CRASH_ON_FIRST it
// kills itself (SIGKILL) in the middle of an event's first run. Env: QUEUE, RUN.
import type { WebhookContext } from '../../src/index.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { createPostgresDedupStore } from '../../src/stores/postgres.js';
import { INBOX_SECRET } from './cluster.js';
import { DATABASE_URL, newPool } from './services.js';

const run = process.env.RUN ?? 'run';
const pool = newPool();
pool.on('error', () => undefined); // an idle client's dropped connection must not end the worker
const inbox = createPgBossInbox({
  // pg-boss's maintenance looks for expired jobs every second here (default: every 2 minutes).
  connection: { connectionString: DATABASE_URL, maintenanceIntervalSeconds: 1 },
  queueName: process.env.QUEUE ?? 'hg_crash',
  expireInSeconds: 2,
  backoffMs: 1000,
});
inbox.worker({
  stripe: {
    secret: INBOX_SECRET,
    onEvent: async (event: { id: string }, ctx: WebhookContext) => {
      if (process.env.CRASH_ON_FIRST === '1') {
        const first = await pool.query(
          `INSERT INTO hg_crash_marks_${run} (id) VALUES ($1) ON CONFLICT DO NOTHING`,
          [event.id],
        );
        if (first.rowCount === 1) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          process.kill(process.pid, 'SIGKILL');
        }
      }
      await pool.query(`INSERT INTO hg_crash_done_${run} (id, attempt) VALUES ($1, $2)`, [
        event.id,
        ctx.attempt,
      ]);
    },
  },
  store: createPostgresDedupStore({ pool, table: `hg_crash_dedup_${run}` }),
  leaseMs: 1500,
  pollingIntervalSeconds: 0.5,
  logger: false,
});
console.log('READY 0');

// The deploy recipes' measuring stick: Chatwoot-faithful deliveries (createChatwootSender: per-read
// timeout, retries on 429 and 500 only, a hand-off for a failed message of a pending conversation) at a
// steady rate while the test restarts the receiver, then the receiver's records checked: every delivered
// message handled exactly once.
import { Redis } from 'ioredis';
import { chatwootEvent, createChatwootSender } from '../../src/testing/index.js';
import type { SimulatedDelivery } from '../../src/testing/index.js';
import { drainQueue } from './deploy-queue.js';

export interface RouteReport {
  route: string;
  sent: number;
  /** Message ids Chatwoot saw answered 2xx. */
  delivered: string[];
  /** Failed deliveries, each with how its attempts ended (a status or an error code). */
  failed: { id: string; failure: SimulatedDelivery['failure']; attempts: string[] }[];
}

/** Sends one message to each route every `everyMs` until stopped; resolves with what Chatwoot saw. */
export function steadyLoad(base: string, routes: readonly string[], secret: string, everyMs: number) {
  const reports = routes.map((route): RouteReport => ({ route, sent: 0, delivered: [], failed: [] }));
  const senders = routes.map((route) =>
    // Retries 300 ms apart instead of 3 s: the rule (429 and 500 only) is Chatwoot's, the wait compressed.
    createChatwootSender({ url: `${base}${route}`, secret, retryDelayMs: 300 }),
  );
  const pending: Promise<void>[] = [];
  const tick = () => {
    senders.forEach((sender, i) => {
      const report = reports[i]!;
      const event = chatwootEvent('message_created', { conversation: { status: 'pending' } });
      const id = String(event.id);
      report.sent += 1;
      pending.push(
        sender.deliver(event).then((delivery) => {
          if (delivery.delivered) report.delivered.push(id);
          else {
            const attempts = delivery.attempts.map((a) => String(a.status ?? a.error));
            report.failed.push({ id, failure: delivery.failure, attempts });
          }
        }),
      );
    });
  };
  const timer = setInterval(tick, everyMs);
  tick();
  return {
    async stop(): Promise<RouteReport[]> {
      clearInterval(timer);
      await Promise.all(pending);
      return reports;
    },
  };
}

export interface Tally {
  handOffs: number;
  lost: number;
  doubles: number;
}

/**
 * What became of one route's deliveries: hand-offs Chatwoot would make, delivered ids never handled (after
 * waiting up to `settleMs` for queued ones), ids handled more than once.
 */
export async function tally(report: RouteReport, list: string, settleMs: number): Promise<Tally> {
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  try {
    const deadline = performance.now() + settleMs;
    // Until every delivered id was handled (a handed-off delivery may have been handled too, so a count
    // of handled ids says nothing), or the time is up.
    let handled: string[] = await redis.lrange(list, 0, -1);
    while (!report.delivered.every((id) => handled.includes(id)) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      handled = await redis.lrange(list, 0, -1);
    }
    const counts = new Map<string, number>();
    for (const id of handled) counts.set(id, (counts.get(id) ?? 0) + 1);
    return {
      handOffs: report.failed.filter((f) => f.failure === 'handed-off').length,
      lost: report.delivered.filter((id) => !counts.has(id)).length,
      doubles: [...counts.values()].filter((n) => n > 1).length,
    };
  } finally {
    redis.disconnect();
  }
}

/**
 * Both routes of a deploy test's run (inline, queued), once its inbox has run everything (call it while the
 * worker still runs): what Chatwoot saw, and what became of it.
 */
export async function tallyRun(
  run: string,
  [inline, queued]: RouteReport[],
): Promise<{ report: RouteReport; tally: Tally }[]> {
  await drainQueue(`hg-deploy-${run}`, 15_000);
  return [
    { report: inline!, tally: await tally(inline!, `hg-deploy:${run}:inline`, 0) },
    { report: queued!, tally: await tally(queued!, `hg-deploy:${run}:queued`, 15_000) },
  ];
}

/** One printed line per route, e.g. `pm2 reload x10, inline: 412 sent, 0 hand-offs, 0 lost, 0 doubles`. */
export function describeTally(label: string, report: RouteReport, t: Tally): string {
  const failures = report.failed.map((f) => f.attempts.join('/')).slice(0, 5);
  return (
    `${label}, ${report.route}: ${report.sent} sent, ${report.delivered.length} delivered, ` +
    `${t.handOffs} hand-offs, ${t.lost} lost, ${t.doubles} doubles` +
    (failures.length > 0 ? ` (failed attempts: ${failures.join(', ')})` : '')
  );
}

/** Deletes a run's records, dedup keys and its inbox workers' keys (hookguard:inbox:<queue>:…). */
export async function dropRun(run: string): Promise<void> {
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  const keys = [
    ...(await redis.keys(`hg-deploy:${run}:*`)),
    ...(await redis.keys(`hookguard:inbox:hg-deploy-${run}:*`)),
  ];
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}

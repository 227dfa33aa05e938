import type { Logger } from '../pipeline/types.js';
import { describeError, positive } from '../util/values.js';
import { INBOX_DEFAULTS } from './defaults.js';
import type { InboxStats } from './inbox-stats.js';

// The web side answers `200 queued` whether or not any worker is running: without this, events pile up
// and nothing says so. After an enqueue, at most once per period, the inbox looks at its own queue in the
// background and warns when the job that has waited longest has waited past the threshold.

/** Watches a queue's backlog from the web side; `enqueued()` is called after each acknowledged write. */
export interface BacklogWatch {
  enqueued(): void;
}

const OFF: BacklogWatch = { enqueued() {} };

/**
 * `backlogWarnMs`: warn when the oldest waiting job has waited longer (default 60 s; 0 turns the watch
 * off); the queue is looked at no more often than that. `stats` is the inbox's own `stats()`.
 */
export function createBacklogWatch(
  stats: () => Promise<InboxStats>,
  backlogWarnMs: number | undefined,
  log: Required<Logger>,
): BacklogWatch {
  if (backlogWarnMs === 0) return OFF;
  const thresholdMs = positive(backlogWarnMs, INBOX_DEFAULTS.backlogWarnMs);
  let nextLook = 0;
  let looking = false;
  return {
    enqueued() {
      const now = Date.now();
      if (looking || now < nextLook) return;
      looking = true;
      nextLook = now + thresholdMs;
      stats()
        .then((s) => {
          if (s.oldestWaitingMs === undefined || s.oldestWaitingMs <= thresholdMs) return;
          log.warn(
            {
              queue: s.queueName,
              waiting: s.waiting,
              active: s.active,
              oldestWaitingMs: Math.round(s.oldestWaitingMs),
              ...(s.paused ? { paused: true } : {}),
            },
            s.paused
              ? 'the queue is paused: events are answered 200 queued but no worker takes them until it is resumed'
              : `events are answered 200 queued, but the oldest has waited ${Math.round(s.oldestWaitingMs / 1000)} s: is a worker running on this queue (hookguard inbox stats)?`,
          );
        })
        .catch((err: unknown) =>
          log.debug({ err: describeError(err) }, 'could not look at the backlog; looking again later'),
        )
        .finally(() => {
          looking = false;
        });
    },
  };
}

// hookguard/shutdown: stopping a Node server gracefully on a deploy's SIGTERM, the readiness answer a load
// balancer polls, and the health of an inbox's queue for whoever watches it. Node-only helpers, kept out of the core entry (and its size budget); they import
// nothing of the core at run time, so adding them does not change how the core is split into chunks.
export { stopGracefully } from './stop-gracefully.js';
export type {
  Closeable,
  GracefulStop,
  GracefulStopOptions,
  StoppableApp,
  StoppableServer,
} from './stop-gracefully.js';
export { createHealthCheck } from './health-check.js';
export type { HealthCheckOptions, HealthCheckResult } from './health-check.js';
// Queue health for whoever watches an inbox (not readiness: a deep queue must not take web instances out).
export { inboxHealth, judgeInbox } from '../inbox/inbox-health.js';
export type {
  InboxHealth,
  InboxHealthDown,
  InboxHealthLimits,
  InboxHealthOptions,
  InboxHealthUp,
  InboxProblem,
  InboxProblemCode,
} from '../inbox/inbox-health.js';
export type { InboxStats } from '../inbox/inbox-stats.js';

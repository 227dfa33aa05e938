// hookguard/shutdown: stopping a Node server gracefully on a deploy's SIGTERM, and the readiness answer a
// load balancer polls. Node-only helpers, kept out of the core entry (and its size budget); they import
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

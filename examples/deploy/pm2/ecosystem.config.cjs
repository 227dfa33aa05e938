// PM2 in cluster mode: `npx pm2 start examples/deploy/pm2/ecosystem.config.cjs`; deploy with
// `npx pm2 reload hookguard-bot`. In cluster mode PM2's own process holds the listening socket and hands
// connections to the instances, so the port never refuses one; `reload` replaces the instances one at a time.
// The settings below make that lossless for a webhook receiver:
const path = require('node:path');

module.exports = {
  apps: [
    {
      name: 'hookguard-bot',
      script: path.join(__dirname, '..', 'server.ts'), // your built server (dist/server.js) in production
      // Only because this example runs TypeScript as it is: Node with tsx (PM2 would look for Bun).
      interpreter: 'node',
      node_args: '--import tsx',
      exec_mode: 'cluster',
      instances: 2,
      // A new instance counts as started when it says so (serve() sends 'ready' once it listens), not when
      // its process exists: until then the old one keeps taking connections.
      wait_ready: true,
      listen_timeout: 15_000,
      // The old instance gets SIGINT and drains (stopGracefully: answer what arrived, close the inbox and the
      // stores, at most 10 s). PM2 kills it after kill_timeout, so give the drain longer than its own bound.
      kill_timeout: 12_000,
      env: { PORT: '3000' },
    },
  ],
};

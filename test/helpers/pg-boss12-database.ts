// The database of the pg-boss 12 run (vitest.pg-boss12.config.ts). pg-boss migrates its schema to its own
// version on start (the suite's `pgboss` schema is at pg-boss 10's version 24, pg-boss 12.38 goes to 46), and
// pg-boss 10 does not migrate back: its statements name columns that pg-boss 12 dropped (`expire_in`). On
// the suite's database, one run of pg-boss 12 would break every pg-boss 10 test after it. So pg-boss 12 gets
// a database of its own, created here when missing (never dropped: a later run finds it migrated already).
import pg from 'pg';

const BASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The suite's database URL with its database name changed to `<name>_pgboss12`. */
export function pgBoss12DatabaseUrl(base = BASE_URL): string {
  const url = new URL(base);
  const name = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  url.pathname = `/${encodeURIComponent(`${name}_pgboss12`)}`;
  return url.toString();
}

/** vitest globalSetup: creates the database. A server that is down is left to the tests to report. */
export default async function createPgBoss12Database(): Promise<void> {
  const name = decodeURIComponent(new URL(pgBoss12DatabaseUrl()).pathname.slice(1));
  const admin = new pg.Client({ connectionString: BASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await admin.connect();
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      // 42P04: another run created it meanwhile.
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`).catch((err: unknown) => {
        if ((err as { code?: string }).code !== '42P04') throw err;
      });
    }
  } catch (err) {
    console.warn(`pg-boss 12 database ${name} not created: ${String(err)}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

import {
  chatwootDedupKey,
  createMemoryDedupStore,
  isWebhookError,
  verifyChatwootSignature,
  type DedupStore,
} from 'hookguard';
import { chatwootEvent, signChatwootPayload } from 'hookguard/testing';

const secret = 'my-chatwoot-webhook-secret';
// Typed as any DedupStore: swap in Redis or PostgreSQL and nothing below changes.
const store: DedupStore = createMemoryDedupStore({ maxEntries: 10_000 });
const THREE_DAYS = 3 * 24 * 60 * 60 * 1000;
let handled = 0;

async function handle(payload: { content?: string | null }): Promise<void> {
  handled++;
  console.log('handling:', payload.content);
}

/** What your route does with the raw body and the headers; returns the HTTP status to answer. */
async function receive(rawBody: string | Buffer, headers: Record<string, string>): Promise<number> {
  try {
    verifyChatwootSignature(rawBody, headers, { secret }); // HMAC over the exact bytes, 5-minute window
  } catch (err) {
    if (isWebhookError(err)) return err.status; // 401 forged/stale, 500 no secret configured
    throw err;
  }
  const payload = JSON.parse(rawBody.toString()) as { content?: string | null };
  const key = chatwootDedupKey(payload);
  if (key === undefined) return handle(payload).then(() => 200);

  const claim = await store.claim(key, 60_000);
  if (claim.status === 'duplicate') return 200; // done before: acknowledge, do nothing
  // Another worker has it. Chatwoot hands the conversation to a human on anything but 2xx, 429 and 500;
  // the delivery that holds the claim answers for the event (a 500 there is retried).
  if (claim.status === 'in-flight') return 200;
  try {
    await handle(payload);
    await store.complete(key, claim.token, THREE_DAYS); // mark done only after the work succeeded
    return 200;
  } catch {
    await store.release(key, claim.token); // the retry will run it again: nothing is lost
    return 500;
  }
}

// A delivery as Chatwoot sends it, signed with the testing helpers.
const { body, headers } = signChatwootPayload(
  chatwootEvent('message_created', { content: 'Hello!' }),
  secret,
);
console.log(await receive(body, headers)); // 200, handled
console.log(await receive(body, headers)); // 200, duplicate: not handled again
console.log(await receive(body, { ...headers, 'x-chatwoot-signature': 'sha256=' + '0'.repeat(64) })); // 401
console.log(`handled ${handled} time(s)`); // handled 1 time(s)

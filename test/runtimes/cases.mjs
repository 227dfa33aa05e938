// The cases every runtime runs against the packed hookguard, given fixtures signed in Node (Chatwoot by
// hookguard/testing, Stripe by the official stripe package). Plain JavaScript: Bun, Deno, workerd and
// edge-runtime load it as it is, or bundled. Returns one short outcome per case; the test compares them.

/** What a verification ended as: 'ok', 'ok:<secret index>' or the error code. */
async function outcome(run) {
  try {
    const result = await run();
    return result && typeof result.secretIndex === 'number' ? `ok:${result.secretIndex}` : 'ok';
  } catch (err) {
    return err && typeof err.code === 'string' ? err.code : `threw ${err && err.name}`;
  }
}

/** Posts a signed delivery to a Fetch handler; "status body" of its answer. */
function poster(handle, url) {
  return async (d) => {
    const res = await handle(new Request(url, { method: 'POST', headers: d.headers, body: d.body }));
    return `${res.status} ${await res.text()}`;
  };
}

export async function runCases(hookguard, fetchAdapter, fx, kit, otel) {
  const { verifyChatwootSignatureAsync, verifyStripeEventAsync, verifyChatwootSignature } = hookguard;
  const now = () => fx.nowMs;
  const out = {};
  const cw = (d, secret) => verifyChatwootSignatureAsync(d.body, d.headers, { secret, now });
  out.chatwootValid = await outcome(() => cw(fx.chatwoot.valid, fx.chatwoot.secret));
  out.chatwootTampered = await outcome(() => cw(fx.chatwoot.tampered, fx.chatwoot.secret));
  out.chatwootStale = await outcome(() => cw(fx.chatwoot.stale, fx.chatwoot.secret));
  out.chatwootRotated = await outcome(() =>
    cw(fx.chatwoot.rotated, [fx.chatwoot.secret, fx.chatwoot.oldSecret]),
  );
  out.chatwootWrongSecret = await outcome(() => cw(fx.chatwoot.valid, 'not-the-secret'));
  const st = (d, secret) => verifyStripeEventAsync(d.body, d.headers, { secret, now });
  out.stripeValid = await outcome(() => st(fx.stripe.valid, fx.stripe.secret));
  out.stripeTampered = await outcome(() => st(fx.stripe.tampered, fx.stripe.secret));
  out.stripeStale = await outcome(() => st(fx.stripe.stale, fx.stripe.secret));
  out.stripeRotated = await outcome(() => st(fx.stripe.rotated, [fx.stripe.secret, fx.stripe.oldSecret]));
  // The synchronous verifier: works where node:crypto is, refuses clearly under Web Crypto only.
  out.syncVerifier = await outcome(() =>
    verifyChatwootSignature(fx.chatwoot.valid.body, fx.chatwoot.valid.headers, {
      secret: fx.chatwoot.secret,
      now,
    }),
  );

  // A full exchange through the Fetch adapter with the default memory store.
  const ran = [];
  const handle = fetchAdapter.chatwootWebhook({
    secret: fx.chatwoot.secret,
    now,
    maxBodyBytes: 4096,
    logger: false,
    onEvent: async (event, ctx) => void ran.push(`${event.event} ${new URL(ctx.req.url).pathname}`),
  });
  const post = poster(handle, 'https://bot.example/cw');
  out.exchange = [
    await post(fx.chatwoot.valid),
    await post(fx.chatwoot.valid),
    await post(fx.chatwoot.forged),
    await post(fx.chatwoot.oversized),
    await post(fx.chatwoot.updated), // a content-keyed event: hashed with the runtime's SHA-256
    await post(fx.chatwoot.updated),
  ];
  out.ran = ran;
  const pay = fetchAdapter.stripeWebhook({
    secret: fx.stripe.secret,
    now,
    logger: false,
    onEvent: () => undefined,
  });
  const postStripe = poster(pay, 'https://shop.example/stripe');
  out.stripeExchange = [
    await postStripe(fx.stripe.valid),
    await postStripe(fx.stripe.valid),
    await postStripe(fx.stripe.tampered),
  ];
  out.bot = await botCase(kit, fetchAdapter, fx, now);
  out.telemetry = await telemetryCase(otel, fetchAdapter, fx, now);
  return out;
}

/**
 * hookguard/otel over the OpenTelemetry API, with a tracer provider of a few lines that keeps its spans
 * (no SDK runs on every runtime): the spans of a delivery and of a forged one, as they ended.
 */
async function telemetryCase(otel, fetchAdapter, fx, now) {
  const ended = [];
  let ids = 0;
  const startSpan = (name, options = {}) => {
    const attributes = { ...options.attributes };
    let status = 0;
    const id = (++ids).toString(16).padStart(16, '0');
    const span = {
      spanContext: () => ({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: id, traceFlags: 1 }),
      isRecording: () => true,
      setAttribute: (key, value) => ((attributes[key] = value), span),
      setAttributes: (more) => (Object.assign(attributes, more), span),
      setStatus: (s) => ((status = s.code), span),
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      updateName: () => span,
      recordException: () => undefined,
      end: () => {
        const outcome = attributes['hookguard.outcome'];
        const failed = status === 2 ? ` ${attributes['error.type']}` : '';
        ended.push(`${name}${outcome === undefined ? '' : ` ${outcome}`}${failed}`);
      },
    };
    return span;
  };
  const tracerProvider = { getTracer: () => ({ startSpan, startActiveSpan: () => undefined }) };
  const telemetry = otel.openTelemetry(otel.api, { tracerProvider, metrics: false });
  const handle = fetchAdapter.chatwootWebhook({
    secret: fx.chatwoot.secret,
    now,
    logger: false,
    telemetry,
    onEvent: () => undefined,
  });
  const post = poster(handle, 'https://bot.example/cw');
  const answers = [await post(fx.chatwoot.valid), await post(fx.chatwoot.forged)];
  return { answers, ended };
}

/**
 * hookguard/chatwoot: a bot that replies through the API client, on a fetch that plays Chatwoot (no
 * network here): the calls it made, in order. The fixture's conversation is `open`, hence 'handle'.
 */
async function botCase(kit, fetchAdapter, fx, now) {
  const calls = [];
  const chatwootApi = async (url, init) => {
    const body = init.body ? JSON.parse(init.body) : {};
    calls.push(
      `${init.method} ${new URL(url).pathname.split('/').slice(-1)[0]} ${body.content ?? body.typing_status}`,
    );
    const message = {
      id: 7,
      content: body.content,
      message_type: 1,
      private: false,
      conversation_id: 1,
      created_at: 0,
    };
    return new globalThis.Response(url.endsWith('/messages') ? JSON.stringify(message) : '', { status: 200 });
  };
  const bot = kit.chatwootBot({
    url: 'https://chatwoot.example',
    token: 'bot-token',
    fetch: chatwootApi,
    typing: true,
    afterHandoff: 'handle',
  });
  const handle = fetchAdapter.chatwootWebhook(
    bot.options({
      secret: fx.chatwoot.secret,
      now,
      logger: false,
      on: { message_created: async (_event, ctx) => void (await ctx.chatwoot.reply('hello from the bot')) },
    }),
  );
  const post = poster(handle, 'https://bot.example/cw');
  const answers = [await post(fx.chatwoot.valid), await post(fx.chatwoot.valid)];
  return { answers, calls };
}

// NestJS (Express platform): hookguard's Express middleware on the webhook routes, and Nest told to keep
// the raw body. Run it with `npx tsx examples/recipes/nestjs.ts`; tested in test/recipes.test.ts.
//
// The two things that matter:
// 1. `NestFactory.create(AppModule, { rawBody: true })`: Nest parses JSON bodies before any middleware
//    runs; with `rawBody` it also keeps the bytes as `req.rawBody`, which hookguard verifies. Without it the
//    webhook answers 500 RAW_BODY_UNAVAILABLE and logs this fix.
// 2. `app.useBodyParser('json', { limit: '4mb' })`: Nest's parser refuses bodies over 100 KB before
//    hookguard sees them; Chatwoot's messages reach ~2.7 MB.
//
// In a Nest project (decorators enabled) the module is written `@Module({})` above the class; here the
// decorator is called as a function, which is the same thing, so this file runs without decorator settings.
import 'reflect-metadata';
import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { pathToFileURL } from 'node:url';
import { chatwootWebhook, stripeWebhook } from 'hookguard/express';

export interface Secrets {
  chatwoot: string | undefined;
  stripe: string | undefined;
}

export function webhooksModule(secrets: Secrets, seen: string[] = []) {
  class WebhooksModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      consumer
        .apply(
          chatwootWebhook({
            secret: secrets.chatwoot,
            on: { message_created: (event) => void seen.push(`chatwoot ${event.id}`) },
          }),
        )
        .forRoutes({ path: 'webhooks/chatwoot', method: RequestMethod.POST });
      consumer
        .apply(
          stripeWebhook({
            secret: secrets.stripe,
            on: { 'checkout.session.completed': (event) => void seen.push(`stripe ${event.id}`) },
          }),
        )
        .forRoutes({ path: 'webhooks/stripe', method: RequestMethod.POST });
    }
  }
  Module({})(WebhooksModule);
  return WebhooksModule;
}

export async function createNestApp(
  secrets: Secrets,
  options: { rawBody?: boolean; seen?: string[] } = {},
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(webhooksModule(secrets, options.seen), {
    rawBody: options.rawBody ?? true,
    logger: false,
  });
  app.useBodyParser('json', { limit: '4mb' });
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await createNestApp({
    chatwoot: process.env.CW_HMAC_SECRET,
    stripe: process.env.STRIPE_WEBHOOK_SECRET,
  });
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  console.log(`listening on http://localhost:${port}`);
}

/**
 * Outgoing notifications: review and grant events POSTed to configured webhooks, signed with
 * HMAC-SHA256 and retried with exponential backoff.
 *
 * Signature (when the webhook has a `secret`): headers `X-Gatehouse-Timestamp: <unix seconds>` and
 * `X-Gatehouse-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. A receiver
 * recomputes it over the raw body and rejects old timestamps (replay).
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { WebhookConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';

export interface NotificationEvent {
  /** `review.created`, `review.approved`, `review.denied`, `grant.requested`, `grant.approved`, `grant.denied`, `grant.revoked`. */
  type: string;
  /** Review or grant id. */
  id: string;
  subject: string;
  connection: string;
  /** Masked command (reviews) or reason (grants). */
  summary: string;
  /** Who decided, and why. */
  actor?: string;
  reason?: string;
  /** Link for approvers (console). */
  url?: string;
  at: number;
}

export interface WebhookOptions {
  webhooks: WebhookConfig[];
  logger: Logger;
  /** Attempts per delivery (first included). Default 5. */
  attempts?: number;
  /** First retry delay, ms; doubles each time. Default 1000. */
  backoffMs?: number;
  timeoutMs?: number;
}

/** Signs `body` as the `X-Gatehouse-Signature` header value. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

function slackPayload(e: NotificationEvent): Record<string, unknown> {
  const what = e.type.startsWith('review') ? 'Review' : 'Access grant';
  const verb = e.type.split('.')[1] ?? e.type;
  const head = `${what} ${verb}: ${e.subject} on ${e.connection}`;
  const lines = [`*${head}*`, '```' + e.summary.slice(0, 2500) + '```'];
  if (e.actor) lines.push(`by ${e.actor}${e.reason ? `: ${e.reason}` : ''}`);
  const blocks: Record<string, unknown>[] = [{ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } }];
  if (e.url && (e.type === 'review.created' || e.type === 'grant.requested')) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Review and approve' }, url: e.url, style: 'primary' }] });
  }
  return { text: `${head}${e.url ? ` — ${e.url}` : ''}`, blocks };
}

/** Delivers notifications in the background; never throws into the caller. */
export class WebhookNotifier {
  readonly #o: Required<Omit<WebhookOptions, 'logger' | 'webhooks'>> & Pick<WebhookOptions, 'logger' | 'webhooks'>;
  readonly #inflight = new Set<Promise<void>>();
  #closed = false;

  constructor(o: WebhookOptions) {
    this.#o = { attempts: 5, backoffMs: 1000, timeoutMs: 5000, ...o };
  }

  notify(e: NotificationEvent): void {
    if (this.#closed) return;
    for (const w of this.#o.webhooks) {
      if (w.events.length > 0 && !w.events.includes(e.type)) continue;
      const p = this.#deliver(w, e).finally(() => this.#inflight.delete(p));
      this.#inflight.add(p);
    }
  }

  /** Waits for deliveries in flight (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  close(): void {
    this.#closed = true;
  }

  async #deliver(w: WebhookConfig, e: NotificationEvent): Promise<void> {
    const id = randomUUID();
    const body = JSON.stringify(w.format === 'slack' ? slackPayload(e) : { delivery: id, ...e, at: new Date(e.at).toISOString() });
    let delay = this.#o.backoffMs;
    for (let attempt = 1; attempt <= this.#o.attempts; attempt++) {
      const ts = Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'gatehouse-webhook/1', 'x-gatehouse-delivery': id, 'x-gatehouse-event': e.type };
      if (w.secret) {
        headers['x-gatehouse-timestamp'] = String(ts);
        headers['x-gatehouse-signature'] = signWebhook(w.secret, ts, body);
      }
      try {
        const r = await fetch(w.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.#o.timeoutMs), redirect: 'error' });
        await r.arrayBuffer().catch(() => undefined);
        if (r.ok) return;
        if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
          this.#o.logger.warn({ webhook: new URL(w.url).host, status: r.status, event: e.type }, 'webhook refused the delivery; not retrying');
          return;
        }
        this.#o.logger.warn({ webhook: new URL(w.url).host, status: r.status, attempt }, 'webhook delivery failed');
      } catch (err) {
        this.#o.logger.warn({ webhook: new URL(w.url).host, err: err instanceof Error ? err.message : String(err), attempt }, 'webhook delivery failed');
      }
      if (attempt < this.#o.attempts && !this.#closed) {
        await new Promise((r) => setTimeout(r, delay).unref());
        delay *= 2;
      }
    }
    this.#o.logger.error({ webhook: new URL(w.url).host, event: e.type }, 'webhook delivery given up');
  }
}

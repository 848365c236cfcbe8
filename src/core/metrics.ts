import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one gateway instance, served at `/metrics`. */
export class Metrics {
  readonly registry = new Registry();
  readonly sessionsTotal = new Counter({ name: 'gatehouse_sessions_total', help: 'Sessions opened', labelNames: ['protocol', 'connection'] as const, registers: [this.registry] });
  readonly sessionsActive = new Gauge({ name: 'gatehouse_sessions_active', help: 'Sessions open now', labelNames: ['protocol'] as const, registers: [this.registry] });
  readonly authFailures = new Counter({ name: 'gatehouse_auth_failures_total', help: 'Refused logins by error code', labelNames: ['protocol', 'code'] as const, registers: [this.registry] });
  readonly commandsTotal = new Counter({ name: 'gatehouse_commands_total', help: 'Commands decided, by effect', labelNames: ['protocol', 'effect'] as const, registers: [this.registry] });
  readonly commandSeconds = new Histogram({
    name: 'gatehouse_command_duration_seconds',
    help: 'Time from a command reaching the gateway to its completion',
    labelNames: ['protocol'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly maskedValues = new Counter({ name: 'gatehouse_masked_values_total', help: 'Values masked in results', labelNames: ['protocol'] as const, registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
  }
}

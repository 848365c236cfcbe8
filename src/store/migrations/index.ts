/**
 * Schema migrations, one ordered list per backend. A migration is applied once, inside the same
 * transaction as the row that records it in `schema_migrations`; `migrate()` is idempotent.
 * Never edit a released migration: add a new one with the next version.
 */
export interface Migration {
  /** 1, 2, 3, … — strictly increasing, gapless. */
  readonly version: number;
  readonly name: string;
  /** SQL run as one script. */
  readonly up: string;
}

/** Throws if versions are not 1..n in order (a programming error, caught by the unit tests). */
export function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
}

/** The version a fully migrated database has. */
export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
}

export { sqliteMigrations } from './sqlite.js';
export { postgresMigrations } from './postgres.js';

/**
 * Strings as both stores can hold them: PostgreSQL rejects U+0000 and unpaired UTF-16 surrogates in
 * text and JSONB, so they become U+FFFD everywhere (SQLite too, so both backends return the same).
 */
const BAD_ALL = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

interface WellFormed {
  isWellFormed(): boolean;
}

/** `s` with U+0000 and lone surrogates replaced by U+FFFD; `s` itself when it has none (the usual case, checked without a regex). */
export function storableText(s: string): string {
  return (s as unknown as WellFormed).isWellFormed() && !s.includes('\0') ? s : s.replace(BAD_ALL, '\ufffd');
}

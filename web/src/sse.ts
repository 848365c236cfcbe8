/**
 * A parser for the server-sent events wire format (HTML Living Standard, "Interpreting an event
 * stream"): fed text chunks as they arrive, it calls back once per dispatched event.
 */
export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  #buf = '';
  #event = '';
  #data: string[] = [];
  #id: string | undefined;
  readonly #onMessage: (m: SseMessage) => void;

  constructor(onMessage: (m: SseMessage) => void) {
    this.#onMessage = onMessage;
  }

  /** Feeds a chunk of the stream (any split, including inside a line or a CRLF pair). */
  push(chunk: string): void {
    this.#buf += chunk;
    for (;;) {
      const cr = this.#buf.indexOf('\r');
      const lf = this.#buf.indexOf('\n');
      let end: number;
      if (cr === -1 && lf === -1) return;
      if (cr === -1 || (lf !== -1 && lf < cr)) end = lf;
      else end = cr;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (end === cr && cr === this.#buf.length - 1) return;
      const width = end === cr && this.#buf[cr + 1] === '\n' ? 2 : 1;
      const line = this.#buf.slice(0, end);
      this.#buf = this.#buf.slice(end + width);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) {
        this.#onMessage({ event: this.#event || 'message', data: this.#data.join('\n'), ...(this.#id === undefined ? {} : { id: this.#id }) });
      }
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\u0000')) this.#id = value;
  }
}

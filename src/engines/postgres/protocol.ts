/**
 * PostgreSQL frontend/backend protocol, version 3 (3.0 and 3.2), socket-free.
 *
 * - Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 * - Message flow (startup, SSL/GSS negotiation, simple and extended query, COPY, cancel):
 *   https://www.postgresql.org/docs/current/protocol-flow.html
 *
 * The gateway sits between two connections and speaks both sides:
 *
 * - toward the agent it is the **server**: `FrontendParser` reads what the client sends (startup
 *   phase, then typed messages) and `backend.*` builds what the gateway answers itself;
 * - toward the target it is the **client**: `BackendParser` reads the server, `frontend.*` builds
 *   the startup and authentication messages.
 *
 * Both parsers hand out every message with its `raw` bytes, a view of the pushed chunk when the
 * message arrived whole (no copy), so a proxy forwards what it does not need to change untouched.
 * Parsers are bounded (a declared length beyond the limit fails at the header, before any data is
 * buffered) and strict: any malformation throws `ProtocolError` (`ERR_PROTOCOL`) and the parser
 * stays failed.
 *
 * Zero-copy forwarding pattern for a proxy: when none of a chunk's messages needs rewriting and the
 * parser held no partial message before and after the push (`buffered === 0`), write the chunk
 * itself; otherwise write the messages' `raw` (or a rewritten message) one by one.
 */
export { ProtocolError } from './protocol/wire.js';
export * from './protocol/frontend.js';
export {
  BackendParser,
  backend,
  decodeDataRow,
  serializeDataRow,
  commandRowCount,
  type BackendParserOptions,
  type BackendMessage,
  type AuthenticationMessage,
  type AuthenticationOk,
  type AuthenticationKerberosV5,
  type AuthenticationCleartextPassword,
  type AuthenticationMD5Password,
  type AuthenticationGSS,
  type AuthenticationGSSContinue,
  type AuthenticationSSPI,
  type AuthenticationSASL,
  type AuthenticationSASLContinue,
  type AuthenticationSASLFinal,
  type ParameterStatus,
  type BackendKeyData,
  type ReadyForQuery,
  type TransactionStatus,
  type FieldDescription,
  type FieldInit,
  type RowDescription,
  type DataRow,
  type CommandComplete,
  type EmptyQueryResponse,
  type NoticeFields,
  type NoticeInit,
  type ErrorResponse,
  type NoticeResponse,
  type ParseComplete,
  type BindComplete,
  type CloseComplete,
  type NoData,
  type PortalSuspended,
  type ParameterDescription,
  type CopyInResponse,
  type CopyOutResponse,
  type CopyBothResponse,
  type CopyData as BackendCopyData,
  type CopyDone as BackendCopyDone,
  type NotificationResponse,
  type FunctionCallResponse,
  type NegotiateProtocolVersion,
  type EncryptionResponse,
} from './protocol/backend.js';

/**
 * The MySQL / MariaDB engine (`./engine.ts`: listener and handshake, `./proxy.ts`: one session's
 * commands) and its building blocks: the socket-free wire codec (`./protocol.ts`), client-side
 * authentication toward the target (`./auth.ts`, `./upstream.ts`) and the SQL classifier (`./classify.ts`).
 */
export { MysqlEngine, mysqlEngine } from './engine.js';
export * from './protocol.js';
export {
  UpstreamAuthenticator,
  nativePasswordScramble,
  cachingSha2Scramble,
  cleartextPassword,
  rsaEncryptPassword,
  scrambleOf,
  type UpstreamCredentials,
  type HandshakeOptions,
} from './auth.js';
export { classifyMysql, clearMysqlClassifierCache, configureMysqlClassifier, mysqlUseTarget, type ClassifyOptions, type MysqlClassifierOptions } from './classify.js';

/**
 * The MySQL / MariaDB engine's building blocks: the socket-free wire codec (`./protocol.ts`),
 * client-side authentication toward the target (`./auth.ts`) and the SQL classifier (`./classify.ts`).
 */
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
export { classifyMysql, clearMysqlClassifierCache, configureMysqlClassifier, type ClassifyOptions, type MysqlClassifierOptions } from './classify.js';

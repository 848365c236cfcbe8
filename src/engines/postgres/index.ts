/**
 * The PostgreSQL engine's building blocks: the socket-free wire codec (`./protocol.ts`), client-side
 * authentication toward the target (`./auth.ts`) and the SQL classifier (`./classify.ts`).
 */
export * from './protocol.js';
export { ScramSha256Client, UpstreamAuthenticator, md5PasswordResponse, saslPrep, type UpstreamCredentials } from './auth.js';
export { classifyPostgres, clearClassifierCache, initClassifier, type ClassifierOptions } from './classify.js';

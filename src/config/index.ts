/** `gatehouse.yaml`: loading, validation and the configuration types. */
export { defaultConfig, loadConfig, parseConfig, substituteEnv, toConnection } from './load.js';
export type { Substitution } from './load.js';
export { CONNECTION_TYPES, isLoopbackHost, JWS_ALGORITHMS, LOG_LEVELS, parseHostPort, rawConfigSchema } from './schema.js';
export type {
  AuditConfig,
  ConsoleConfig,
  ConnectionConfig,
  ConnectionType,
  DetectorConfig,
  GatehouseConfig,
  IdentityConfig,
  IssuerConfigEntry,
  JwsAlgorithm,
  ListenConfig,
  ListenerName,
  LogConfig,
  LogLevel,
  MaskingConfig,
  NotificationsConfig,
  GrantsConfig,
  WebhookConfig,
  SshServerConfig,
  PolicySourceList,
  RecordingConfig,
  ReviewConfig,
  RoleConfig,
  RolesConfig,
  SessionsConfig,
  StoreConfig,
  TargetTlsConfig,
  TlsFilesConfig,
} from './schema.js';
export { formatDuration, parseDuration } from '../core/duration.js';

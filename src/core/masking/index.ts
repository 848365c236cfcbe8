/**
 * Masking: content detectors, column and path rules, strategies, fail-closed value masking.
 * Engines use the {@link Masker} seam; the composition root builds one per session with
 * {@link createMasker}; `gatehouse policy check` uses {@link validateCustomDetectors}.
 */
export type { ColumnRef, Masker, ValueMasker } from './types.js';
export { createMasker, type MaskerOptions } from './masker.js';
export {
  BUILTIN_DETECTORS,
  DETECTOR_GROUPS,
  Scanner,
  defaultDetectors,
  resolveDetectors,
  type DetectedRange,
  type Detector,
  type Finding,
} from './detectors.js';
export {
  compileCustomDetector,
  compileCustomDetectors,
  hasNestedUnboundedQuantifier,
  validateCustomDetectors,
  type CustomDetector,
  type CustomDetectorProblem,
  type CustomValidatorName,
} from './custom.js';
export {
  STRATEGY_STRENGTH,
  applyStrategy,
  createHasher,
  partialMask,
  redactPlaceholder,
  strongerStrategy,
  type Hasher,
  type StrategyContext,
} from './strategies.js';
export { IBAN_LENGTHS, cardBrand, ibanValid, jwtHeaderValid, luhnValid, shannonEntropy, ssnValid, type CardBrand } from './validators.js';

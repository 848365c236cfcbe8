/**
 * Kubernetes building blocks for the Kubernetes engine: request attributes as the API server
 * derives them (what policy decides on), label/field selectors, and `Status` answers.
 */
export * from './request-info.js';
export * from './selectors.js';
export * from './status.js';

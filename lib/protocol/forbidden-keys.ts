/** Keys that must never reach an object of ours, even as own properties (prototype pollution). */
export const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** The first forbidden key the object holds as an own property, if any. */
export function forbiddenKey(obj: object): string | undefined {
  return FORBIDDEN_KEYS.find((key) => Object.prototype.hasOwnProperty.call(obj, key));
}

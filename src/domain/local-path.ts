// The one open-redirect guard: where SIM Link sends a person after signing in (`?next=`) or after a CRM
// launch (the token's target) must be a path on this app, never another site.

/**
 * A path on this app, or `fallback`. Anything that could leave the app — an absolute URL, a protocol-
 * relative `//host`, a backslash (browsers read `/\host` as `//host`), control characters or spaces, an
 * overlong value — is ignored rather than refused: the person still lands somewhere useful.
 */
export function localPath(value: unknown, fallback: string): string {
  if (typeof value !== 'string' || value.length > 1000) return fallback;
  return /^\/(?!\/)[\x21-\x7e]*$/.test(value) && !value.includes('\\') ? value : fallback;
}

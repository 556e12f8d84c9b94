// Free text that people read back (names in lists, pages and the audit trail) must show what it says.
// Bidirectional overrides and isolates can make a name read differently from what it holds ("Trojan
// Source"), and zero-width characters make two names look the same; neither belongs in a name.

/**
 * U+202A–U+202E and U+2066–U+2069 (bidi embeddings, overrides, isolates), U+200B–U+200F, U+2060, U+FEFF
 * (zero-width), and the control characters U+0000–U+001F, U+007F–U+009F (a bell, an escape sequence that
 * recolours a terminal reading the logs or an export, a tab that shifts a CSV cell): none shows as itself.
 */
// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const HIDDEN = /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\u200B-\u200F\u2060\uFEFF]/u;

/** True when the text holds a character that changes text direction or takes no space. */
export function hasHiddenCharacters(text: string): boolean {
  return HIDDEN.test(text);
}

/** The field error for such a name: what is wrong and what to do. */
export const hiddenCharactersMessage = (label: string) =>
  `${label} must not contain invisible or text-direction characters (such as zero-width spaces or right-to-left overrides); type it again without them`;

/** A high surrogate not followed by a low one, or a low one not preceded by a high one: half a character. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** True when the text holds half a character (a lone surrogate): it has no UTF-8 encoding. */
export function hasHalfCharacter(text: string): boolean {
  return text.search(LONE_SURROGATE) !== -1;
}

/**
 * Text that came from outside (a receiver's answer, an error's message) made fit for a text column of `max`
 * characters: PostgreSQL refuses a NUL byte in text, and half a surrogate pair has no UTF-8 encoding, so
 * both are dropped; then it is cut to `max` UTF-16 units (never more characters than that), never in the
 * middle of a pair.
 */
export function storable(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex -- the NUL byte is what this removes
  const clean = text.replace(/\u0000/g, '').replace(LONE_SURROGATE, '');
  if (clean.length <= max) return clean;
  const cut = clean.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

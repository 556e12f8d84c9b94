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

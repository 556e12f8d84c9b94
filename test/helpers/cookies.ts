// Reading Set-Cookie in tests, one way for supertest's and app.inject's responses alike.

type WithHeaders = { headers: Record<string, unknown> };

/** Every Set-Cookie line of a response (none: []). */
export function setCookies(res: WithHeaders): string[] {
  const header = res.headers['set-cookie'];
  return header === undefined ? [] : ([header].flat() as string[]);
}

/** The Set-Cookie line (with its attributes) that sets `name`, if any. */
export function setCookie(res: WithHeaders, name = 'simlink_session'): string | undefined {
  return setCookies(res).find((line) => line.startsWith(`${name}=`));
}

/**
 * What a browser would send back: `name=value` of the cookie `name`, or of every cookie set when no name is
 * given, joined for a Cookie header. Throws when the cookie was not set.
 */
export function cookieHeader(res: WithHeaders, name?: string): string {
  const lines = name ? [setCookie(res, name)].filter((line): line is string => line !== undefined) : setCookies(res);
  if (!lines.length) throw new Error(`no Set-Cookie${name ? ` for ${name}` : ''} in the response`);
  return lines.map((line) => line.split(';')[0]).join('; ');
}

// Reading a rendered page (or an htmx partial) the way a person or a screen reader does: parsed by a DOM
// (happy-dom, no scripts, no network), with elements found by role and accessible name
// (@testing-library/dom), so that tests assert what is shown, not the shape of the markup.
import { Window } from 'happy-dom';
import { within, type BoundFunctions, type ByRoleMatcher, type queries } from '@testing-library/dom';

const window = new Window({
  settings: {
    disableJavaScriptEvaluation: true,
    disableJavaScriptFileLoading: true,
    disableCSSFileLoading: true,
    disableIframePageLoading: true,
    navigation: {
      disableMainFrameNavigation: true,
      disableChildFrameNavigation: true,
      disableChildPageNavigation: true,
      disableFallbackToSetURL: true,
    },
  },
});
const parser = new window.DOMParser();

/** Whitespace collapsed and trimmed, as text reads. */
export function normalize(text: string | null | undefined): string {
  return (text ?? '').replace(/\s+/g, ' ').trim();
}

/** Elements that flow within a line of text: no space is read around them. */
const INLINE = new Set([
  'A',
  'ABBR',
  'B',
  'CODE',
  'DATA',
  'EM',
  'I',
  'KBD',
  'LABEL',
  'MARK',
  'Q',
  'S',
  'SAMP',
  'SMALL',
  'SPAN',
  'STRONG',
  'SUB',
  'SUP',
  'TIME',
  'U',
  'VAR',
]);

/** The text of a node as read: whitespace collapsed, without scripts, styles or templates. */
export function textOf(node: Node | null | undefined): string {
  if (!node) return '';
  const parts: string[] = [];
  const walk = (n: Node) => {
    if (n.nodeType === 3) parts.push(n.textContent ?? '');
    else if (n.nodeType === 1 || n.nodeType === 9 || n.nodeType === 11) {
      const tag = (n as Element).tagName;
      if (tag === 'SCRIPT' || tag === 'STYLE' || tag === 'TEMPLATE') return;
      // Block boundaries read as a space, so "<td>a</td><td>b</td>" is "a b"; "<strong>3</strong>," stays "3,".
      const block = n.nodeType === 1 && !INLINE.has(tag);
      if (block) parts.push(' ');
      for (const child of Array.from(n.childNodes)) walk(child);
      if (block) parts.push(' ');
    }
  };
  walk(node);
  return normalize(parts.join(''));
}

type Name = string | RegExp;
type Queries = BoundFunctions<typeof queries>;

export interface Field {
  element: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  value: string;
  /** The error message shown under the field (its description that the error-message paragraph gives), or ''. */
  error: string;
  invalid: boolean;
  /** A checkbox or radio: ticked as the page loads. */
  checked: boolean;
}

export interface Page extends Queries {
  document: Document;
  /** A whole page (with a doctype), as opposed to an htmx partial. */
  isDocument: boolean;
  /** The first element of the response: for a partial, the element htmx swaps in. */
  root: Element | null;
  title: string;
  /** The text of the first h1, or '' */
  heading: string;
  /** The message shown after a change (the page's status region), or ''. */
  flash: string;
  /** Every heading's text, in order. */
  headings: string[];
  /** All the text of the page (or partial), as read. */
  text: string;
  /** The button with this accessible name, or null. */
  button(name: Name): HTMLButtonElement | null;
  /** The accessible names of the buttons, in order. */
  buttons(): string[];
  /** The href of the link with this accessible name, or null when there is no such link. */
  link(name: Name): string | null;
  /** The accessible names of the links, in order. */
  links(): string[];
  /** The accessible names of the elements of a role (radio, checkbox, row…), in order. */
  names(role: ByRoleMatcher): string[];
  /** The form field labelled so (textbox, search box, select, checkbox, file input…). Throws when absent. */
  field(label: Name): Field;
  /** The value of the hidden input of this name. Throws when absent. */
  hidden(name: string): string;
  /** A table's rows (those with data cells), each as its cells' text; the table named so, or the first. */
  rows(tableName?: Name): string[][];
  /** A table's column headers' text; the table named so, or the first. */
  columns(tableName?: Name): string[];
  /** What a description list says for this term (<dt>), or null when the term is not there; the first one in the page. */
  detail(term: string): string | null;
  /** The messages in the error summary ("There is a problem"), each with the field it links to. */
  errors(): { message: string; href: string }[];
  /** The element with this id (the regions htmx targets), or null. */
  byId(id: string): Element | null;
  /** A page over one part of this one (e.g. a region or a form). */
  within(element: Element): Page;
}

/** A field's value as the page loads it (a select: its option marked selected, else its first). */
function valueOf(element: Field['element']): string {
  if (element.tagName !== 'SELECT') return element.value;
  const options = Array.from(element.querySelectorAll('option'));
  const chosen = options.filter((o) => o.hasAttribute('selected')).at(-1) ?? options[0];
  return chosen ? (chosen.getAttribute('value') ?? textOf(chosen)) : '';
}

function labelledField(q: Queries, label: Name): Field['element'] {
  const found = q.queryAllByLabelText(label, { selector: 'input, select, textarea' });
  if (found.length === 0) throw new Error(`no field labelled ${String(label)}`);
  if (found.length > 1) throw new Error(`${found.length} fields labelled ${String(label)}`);
  return found[0] as Field['element'];
}

function describe(root: Element | Document, scope: Element): Page {
  const doc = scope.ownerDocument;
  const q = within(scope as unknown as HTMLElement);
  const table = (name?: Name): Element => {
    const t = name === undefined ? scope.querySelector('table') : q.queryByRole('table', { name });
    if (!t) throw new Error(name === undefined ? 'no table' : `no table named ${String(name)}`);
    return t;
  };
  const named = (role: ByRoleMatcher) => q.queryAllByRole(role).map((el) => accessibleName(el));
  const accessibleName = (el: Element) => {
    const label = el.getAttribute('aria-label');
    if (label) return normalize(label);
    const by = el.getAttribute('aria-labelledby');
    if (by)
      return normalize(
        by
          .split(/\s+/)
          .map((id) => textOf(doc.getElementById(id)))
          .join(' '),
      );
    return textOf(el);
  };
  const page: Page = {
    ...q,
    document: doc,
    isDocument: doc.doctype !== null,
    root: root === doc ? doc.body.firstElementChild : (root as Element),
    title: normalize(doc.title),
    get heading() {
      return textOf(scope.querySelector('h1'));
    },
    get flash() {
      return textOf(doc.getElementById('messages'));
    },
    get headings() {
      return Array.from(scope.querySelectorAll('h1, h2, h3, h4, h5, h6')).map((h) => textOf(h));
    },
    get text() {
      return textOf(scope);
    },
    button: (name) => q.queryByRole('button', { name }) as HTMLButtonElement | null,
    buttons: () => named('button'),
    link: (name) => q.queryByRole('link', { name })?.getAttribute('href') ?? null,
    links: () => named('link'),
    names: (role) => named(role),
    field(label) {
      const element = labelledField(q, label);
      const describedBy = (element.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
      const error = describedBy
        .map((id) => doc.getElementById(id))
        .filter((el) => el?.classList.contains('error-message'))
        .map((el) => textOf(el).replace(/^Error: /, ''))
        .join(' ');
      return {
        element,
        value: valueOf(element),
        error,
        invalid: element.getAttribute('aria-invalid') === 'true',
        checked: element.hasAttribute('checked'),
      };
    },
    hidden(name) {
      const input = scope.querySelector(`input[type="hidden"][name="${name}"]`);
      if (!input) throw new Error(`no hidden field ${name} in the page`);
      return input.getAttribute('value') ?? '';
    },
    rows: (name) =>
      Array.from(table(name).querySelectorAll('tr'))
        .filter((tr) => tr.querySelector('td'))
        .map((tr) => Array.from(tr.querySelectorAll('th, td')).map((cell) => textOf(cell))),
    columns: (name) => Array.from(table(name).querySelectorAll('thead th, tr:first-child th[scope="col"]')).map((th) => textOf(th)),
    detail(term) {
      const dt = Array.from(scope.querySelectorAll('dt')).find((el) => textOf(el) === term);
      let dd = dt?.nextElementSibling;
      while (dd && dd.tagName !== 'DD') dd = dd.nextElementSibling;
      return dd ? textOf(dd) : null;
    },
    errors: () =>
      Array.from(scope.querySelectorAll('.error-summary li a')).map((a) => ({ message: textOf(a), href: a.getAttribute('href') ?? '' })),
    byId: (id) => doc.getElementById(id),
    within: (element) => describe(element, element),
  };
  return page;
}

const cache = new Map<string, Page>();

/** Parses HTML (a whole page or an htmx partial) into a Page to read. The last few parses are kept. */
export function page(html: string): Page {
  const hit = cache.get(html);
  if (hit) return hit;
  const doc = parser.parseFromString(html, 'text/html') as unknown as Document;
  const result = describe(doc, doc.body);
  cache.set(html, result);
  if (cache.size > 8) cache.delete(cache.keys().next().value!);
  return result;
}

// SIM Link's one small script module. Every page works without it; with it:
//  - htmx loads the SIM picker and the confirmations into the native <dialog id="modal"> (showModal: focus
//    moves in and stays in; Escape, Cancel and No close it; focus returns to what opened it);
//  - Create endpoint's picker fills the ICCID field instead of leaving the form;
//  - a confirmation's Yes cannot be submitted twice;
//  - API tokens: Copy token copies the new token;
//  - embedded in a CRM, the app tells the configured CRM origins (never "*") what changed and how tall it is.
const dialog = document.getElementById('modal');
const content = document.getElementById('modal-content');
let opener = null;

function focusInDialog() {
  const target = content.querySelector('#error-summary') || content.querySelector('#picker-q') || content.querySelector('h1');
  if (target) {
    if (!target.hasAttribute('tabindex') && target.tagName === 'H1') target.setAttribute('tabindex', '-1');
    target.focus();
  }
}

// API tokens: the Copy button (hidden without JavaScript, where the token is selected and copied by hand).
for (const button of document.querySelectorAll('[data-copy]')) button.hidden = false;
document.addEventListener('click', (event) => {
  const copying = event.target.closest('[data-copy]');
  if (copying) {
    const input = document.getElementById(copying.dataset.copy);
    window.navigator.clipboard?.writeText(input.value).then(
      () => (copying.textContent = 'Copied'),
      () => input.select(),
    );
  }
  const opening = event.target.closest('[data-opens-dialog]');
  if (opening) opener = opening;
  const closing = event.target.closest('[data-closes-dialog]');
  if (closing && dialog && dialog.open && dialog.contains(closing)) {
    event.preventDefault();
    dialog.close();
  }
});

document.addEventListener('htmx:afterSwap', (event) => {
  if (!dialog || event.detail.target !== content) return;
  // The dialog is named by whatever heading it now shows (picker, confirmation, or an error page).
  const heading = content.querySelector('h1');
  if (heading) {
    heading.id ||= 'modal-heading';
    dialog.setAttribute('aria-labelledby', heading.id);
  }
  if (!dialog.open) dialog.showModal();
  focusInDialog();
});

// A 401 to an htmx request (the session ended) carries HX-Redirect; htmx follows it.
dialog?.addEventListener('close', () => {
  content.replaceChildren();
  if (opener && document.contains(opener)) opener.focus();
  opener = null;
});

// Create endpoint: choosing a SIM fills the ICCID field; with nothing chosen the server answers (422).
document.addEventListener('htmx:beforeRequest', (event) => {
  const form = event.detail.elt;
  if (!(form instanceof window.HTMLFormElement) || !form.dataset.fills) return;
  const chosen = form.querySelector('input[name="sim_id"]:checked');
  const field = document.getElementById(form.dataset.fills);
  if (!chosen || !field) return;
  event.preventDefault();
  field.value = chosen.dataset.iccid;
  // Closing returns focus to `opener`: make that the filled field, not the Choose a SIM button.
  opener = field;
  dialog.close();
});

// Next/Previous swap only the results: move focus to their top (the count, or the results themselves) so
// keyboard and screen-reader users continue from the new page, not from the end of the old one.
let paging = null;
document.addEventListener('htmx:beforeRequest', (event) => {
  const link = event.detail.elt;
  paging = link instanceof window.HTMLAnchorElement && link.closest('.pagination') ? event.detail.target?.id : null;
});
document.addEventListener('htmx:afterSettle', () => {
  if (!paging) return;
  const results = document.getElementById(paging);
  paging = null;
  if (!results) return;
  const target = results.querySelector('.count') || results;
  target.setAttribute('tabindex', '-1');
  target.focus({ preventScroll: true });
  target.scrollIntoView({ block: 'start' });
});

// GOV.UK: a page that comes back with an error summary puts focus on it.
const summary = document.getElementById('error-summary');
if (summary && !(dialog && dialog.contains(summary))) summary.focus();

document.addEventListener('submit', (event) => {
  const button = event.submitter;
  if (!button || !button.hasAttribute('data-prevent-double-submit')) return;
  if (button.dataset.submitted) {
    event.preventDefault();
    return;
  }
  button.dataset.submitted = 'true';
  button.setAttribute('aria-disabled', 'true');
});

// A message rendered with the page sits in the status region from the start, and screen readers only
// announce changes to a live region: put it back a moment after load so it is read out.
const status = document.getElementById('messages');
if (status && status.firstElementChild) {
  const message = status.firstElementChild;
  message.remove();
  setTimeout(() => status.append(message), 150);
}

// Talking to the CRM around the app, only to the origins of CRM_ORIGINS (never "*": a message to an origin
// that is not the parent's is dropped by the browser, so a page that frames the app uninvited hears nothing).
//  - after a change: { type: "sim.linked" | "sim.delinked" | "endpoint.created" | "endpoint.activated" |
//    "endpoint.suspended" | "endpoint.resumed", endpointId, iccid } (the flash message of the page carries it);
//  - on load and whenever it changes: { type: "simlink.height", height } in CSS pixels, so the CRM can size
//    the iframe to the content (the open dialog included) and show no inner scroll bar.
const origins = (document.querySelector('meta[name="crm-origins"]')?.content || '').split(' ').filter(Boolean);
const embedded = window.parent !== window;
function tellCrm(message) {
  if (!embedded) return;
  for (const origin of origins) window.parent.postMessage(message, origin);
}
const changed = document.getElementById('messages')?.dataset.crmEvent;
if (changed) {
  try {
    tellCrm(JSON.parse(changed));
  } catch {
    // A malformed event is not worth breaking the page for.
  }
}
// The content's own height: the document's scrollHeight never shrinks below the iframe's current height,
// so an iframe sized by it could only ever grow. The body's box (plus the margins of the body) can shrink.
function contentHeight() {
  const body = document.body;
  const style = window.getComputedStyle(body);
  let height = body.getBoundingClientRect().bottom + window.scrollY + parseFloat(style.marginBottom || '0');
  // An open modal dialog is drawn over the page, at most 90% of the frame's height (app.css): ask for enough room.
  if (dialog && dialog.open) height = Math.max(height, dialog.scrollHeight / 0.9 + 16);
  return Math.ceil(height);
}
if (embedded && origins.length && window.ResizeObserver) {
  let last = 0;
  const report = () => {
    const height = contentHeight();
    if (height !== last) {
      last = height;
      tellCrm({ type: 'simlink.height', height });
    }
  };
  const observer = new window.ResizeObserver(report);
  observer.observe(document.body);
  if (dialog) {
    observer.observe(dialog);
    dialog.addEventListener('close', report);
  }
}

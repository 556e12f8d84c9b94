// SIM Link's one small script module. Every page works without it; with it:
//  - htmx loads the SIM picker and the confirmations into the native <dialog id="modal"> (showModal: focus
//    moves in and stays in; Escape, Cancel and No close it; focus returns to what opened it);
//  - Create endpoint's picker fills the ICCID field instead of leaving the form;
//  - a confirmation's Yes cannot be submitted twice;
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

document.addEventListener('click', (event) => {
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
  if (!(form instanceof HTMLFormElement) || !form.dataset.fills) return;
  const chosen = form.querySelector('input[name="sim_id"]:checked');
  const field = document.getElementById(form.dataset.fills);
  if (!chosen || !field) return;
  event.preventDefault();
  field.value = chosen.dataset.iccid;
  dialog.close();
  field.focus();
});

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

// Talking to the CRM around the app, only to the origins of CRM_ORIGINS.
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
if (embedded && origins.length && 'ResizeObserver' in window) {
  let last = 0;
  new ResizeObserver(() => {
    const height = Math.ceil(document.documentElement.scrollHeight);
    if (height !== last) {
      last = height;
      tellCrm({ type: 'simlink.height', height });
    }
  }).observe(document.body);
}

// The Vigil dashboard: plain JavaScript over the registry's HTTP API (include/vigil/server.hpp).
// Every request carries the token typed in at sign-in, kept in sessionStorage (this tab only). Text from
// the server goes into the page through textContent and text nodes only, never as HTML.
'use strict';

const TOKEN_KEY = 'vigil.token';
const POLL_MS = 2000;       // live view refresh
const LIVE_MAX = 100;       // cards kept in the live view
const PAGE = 50;            // rows per page of the other lists
const IMAGE_CACHE_MAX = 300;

const VIEWS_BY_ROLE = {
  operator: ['live', 'violations', 'review', 'plates', 'vignettes'],
  admin: ['live', 'violations', 'review', 'plates', 'vignettes', 'tokens'],
  shop: ['vignettes'],
};
const DECISIONS = ['paid', 'exempt', 'unpaid', 'review', 'dismissed'];
const ACTION_NAMES = { confirm_unpaid: 'confirmed unpaid', dismiss: 'dismissed', correct: 'corrected' };

const state = {
  token: null,
  me: null,                 // GET /api/me: {id, role, camera, note}
  view: null,
  live: { lastId: 0, timer: null, generation: 0, ticks: 0 },
  violationsBefore: null,   // cursor of the next older page
  reviewAfter: null,        // cursor of the next page
  images: new Map(),        // "id/kind" -> Promise of an object URL
  products: null,           // GET /api/products
};

// ---------------------------------------------------------------------------------------------------------
// DOM helpers

function $(id) { return document.getElementById(id); }

// el('span', {class: 'x', text: 'y'}, child, 'text child'): attributes are set as attributes, strings
// become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') e.textContent = String(value);
    else if (key === 'class') e.className = value;
    else e.setAttribute(key, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) e.append(child);
  return e;
}

function button(label, onClick, cls) {
  const b = el('button', { type: 'button', class: cls, text: label });
  b.addEventListener('click', onClick);
  return b;
}

function show(id, text) {
  const e = $(id);
  e.textContent = text;
  e.hidden = !text;
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

function badge(decision, prefix) {
  const known = DECISIONS.includes(decision) ? decision : 'other';
  return el('span', { class: 'badge d-' + known, text: (prefix || '') + decision });
}

// ---------------------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(err) {
  return err.status ? `${err.message} (HTTP ${err.status})` : err.message;
}

async function request(method, path, body) {
  const headers = { Authorization: 'Bearer ' + state.token };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the Vigil server (${e.message}); is vigil serve still running?`);
  }
}

async function failure(res) {
  const text = await res.text();
  let message = text.slice(0, 300) || res.statusText || 'request failed';
  try {
    const data = JSON.parse(text);
    if (data && typeof data.error === 'string') message = data.error;
  } catch (_) { /* not JSON: keep the text */ }
  const err = new ApiError(res.status, message);
  // A token revoked while signed in: back to the sign-in form, saying why.
  if (res.status === 401 && state.me) signOut('Signed out: ' + message);
  return err;
}

async function api(method, path, body) {
  const res = await request(method, path, body);
  if (!res.ok) throw await failure(res);
  const text = await res.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch (_) {
    throw new ApiError(res.status, `the server answered ${path} with something that is not JSON`);
  }
}

// Evidence images are behind the token too: fetched with it and shown through object URLs.
function imageUrl(id, kind) {
  const key = id + '/' + kind;
  if (!state.images.has(key)) {
    const p = (async () => {
      const res = await request('GET', `/api/sightings/${encodeURIComponent(id)}/${kind}.jpg`);
      if (!res.ok) throw await failure(res);
      return URL.createObjectURL(await res.blob());
    })();
    p.catch(() => state.images.delete(key));
    state.images.set(key, p);
    while (state.images.size > IMAGE_CACHE_MAX) {
      const [oldest, url] = state.images.entries().next().value;
      state.images.delete(oldest);
      url.then((u) => URL.revokeObjectURL(u), () => {});
    }
  }
  return state.images.get(key);
}

function forgetImages() {
  for (const url of state.images.values()) url.then((u) => URL.revokeObjectURL(u), () => {});
  state.images.clear();
}

// ---------------------------------------------------------------------------------------------------------
// Rendering

function thumbnail(s) {
  const box = el('div', { class: 'thumb' });
  const placeholder = el('span', { class: 'noimg', text: 'no image' });
  box.append(placeholder);
  if (s.images && s.images.plate) {
    placeholder.textContent = 'loading…';
    imageUrl(s.sighting_id, 'plate').then(
      (url) => box.replaceChildren(el('img', { src: url, alt: 'Plate ' + s.text })),
      (e) => {
        placeholder.textContent = 'no image';
        placeholder.title = describe(e);
      });
  }
  return box;
}

function openFrame(s) {
  const dialog = $('frame-dialog');
  const img = $('frame-image');
  img.removeAttribute('src');
  img.alt = 'Loading the frame…';
  dialog.showModal();
  imageUrl(s.sighting_id, 'frame').then(
    (url) => { img.src = url; img.alt = `Camera ${s.camera_id}, ${when(s.time)}`; },
    (e) => { img.alt = 'Cannot show the frame: ' + describe(e); });
}

// One sighting as a card; `extra` (optional) is appended below its details.
function sightingCard(s, extra) {
  const li = el('li', {
    class: 'card',
    'data-sighting-id': s.sighting_id,
    'data-decision': s.decision,
    'data-outcome': s.outcome,
  });
  const head = el('div', { class: 'head' },
    el('span', { class: 'plate', text: s.text || '(nothing read)' }), badge(s.decision));
  if (s.resolution) head.append(badge(s.outcome, '→ '));
  const confidence = typeof s.confidence === 'number' ? Math.round(s.confidence * 100) + '%' : '';
  const meta = el('div', { class: 'meta' },
    el('span', { text: 'Camera ' + s.camera_id }),
    el('time', { datetime: s.time, title: s.time, text: when(s.time) }),
    el('span', { title: 'Read confidence', text: confidence }),
    s.country ? el('span', { text: String(s.country).toUpperCase() }) : null,
    el('span', { class: 'muted', text: '#' + s.sighting_id }));
  const body = el('div', { class: 'body' }, head, meta);
  if (s.reason) body.append(el('div', { class: 'reason', text: s.reason }));
  if (s.resolution) {
    const r = s.resolution;
    body.append(el('div', {
      class: 'reason',
      text: `Review: ${ACTION_NAMES[r.action] || r.action}${r.plate ? ' as ' + r.plate : ''}` +
            `${r.note ? ' (' + r.note + ')' : ''}, ${when(r.at)}`,
    }));
  }
  if (s.images && s.images.frame) body.append(button('Show frame', () => openFrame(s), 'small'));
  if (extra) body.append(extra);
  li.append(thumbnail(s), body);
  return li;
}

function recordItem(r, actions) {
  const what = r.kind === 'vignette' ? r.product : 'exemption: ' + r.reason;
  const until = r.last_day ? r.last_day : 'open-ended';
  const li = el('li', { class: 'record', 'data-record-id': r.id },
    el('div', { class: 'head' },
      el('span', { class: 'plate', text: r.plate }),
      el('span', { class: 'tag', text: what }),
      r.refunded ? el('span', { class: 'badge d-dismissed', text: 'refunded' }) : null),
    el('div', { class: 'meta' },
      el('span', { text: `#${r.id}` }),
      el('span', { text: `valid ${String(r.valid_from).slice(0, 10)} – ${until}` }),
      el('span', { text: String(r.country).toUpperCase() }),
      r.vehicle_category ? el('span', { text: r.vehicle_category }) : null,
      r.order_id ? el('span', { text: 'order ' + r.order_id }) : null,
      r.refunded ? el('span', { text: 'refunded ' + when(r.refunded) }) : null));
  if (r.note) li.append(el('div', { class: 'reason', text: r.note }));
  if (actions) li.append(actions);
  return li;
}

function fill(listId, emptyId, items) {
  $(listId).replaceChildren(...items);
  $(emptyId).hidden = items.length > 0;
}

// ---------------------------------------------------------------------------------------------------------
// Live sightings

function liveStop() {
  clearTimeout(state.live.timer);
  state.live.timer = null;
  state.live.generation += 1;
}

function liveReset() {
  liveStop();
  state.live.lastId = 0;
  $('live-list').replaceChildren();
  $('live-empty').hidden = true;
}

function liveStart() {
  liveStop();
  liveTick(state.live.generation);
}

async function liveTick(generation) {
  const live = state.live;
  const q = new URLSearchParams();
  const camera = $('live-camera').value;
  if (camera) q.set('camera', camera);
  if (live.lastId) {
    q.set('after_id', live.lastId);
    q.set('limit', LIVE_MAX);
  } else {
    q.set('limit', PAGE);
  }
  try {
    const r = await api('GET', '/api/sightings?' + q);
    if (generation !== live.generation) return;
    // Newest first on the first load, oldest first after an id: add them oldest first, on top.
    const rows = live.lastId ? r.sightings : r.sightings.slice().reverse();
    const list = $('live-list');
    for (const s of rows) {
      list.prepend(sightingCard(s));
      live.lastId = Math.max(live.lastId, s.sighting_id);
    }
    while (list.children.length > LIVE_MAX) list.lastElementChild.remove();
    $('live-empty').hidden = list.children.length > 0;
    show('live-state', 'updated ' + new Date().toLocaleTimeString());
    if ($('banner').dataset.source === 'live') show('banner', '');
    if (++live.ticks % 5 === 0 || rows.some((s) => s.outcome === 'review')) reviewCount();
  } catch (e) {
    if (generation !== live.generation || !state.me) return;
    show('banner', `Live updates failed: ${describe(e)}. Retrying every ${POLL_MS / 1000} s.`);
    $('banner').dataset.source = 'live';
  }
  if (generation === live.generation) live.timer = setTimeout(() => liveTick(generation), POLL_MS);
}

async function loadCameras() {
  try {
    const r = await api('GET', '/api/cameras');
    const select = $('live-camera');
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '', text: 'all' }),
      ...r.cameras.map((c) => el('option', { value: c.id, text: c.name ? `${c.id} (${c.name})` : c.id })));
    select.value = chosen;
  } catch (e) {
    show('banner', 'Cannot list the cameras: ' + describe(e));
    $('banner').dataset.source = 'cameras';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Violations and the review queue

async function loadViolations(more) {
  const q = new URLSearchParams({ order: 'newest', limit: PAGE });
  if (more && state.violationsBefore) q.set('before_id', state.violationsBefore);
  show('violations-error', '');
  try {
    const r = await api('GET', '/api/violations?' + q);
    const cards = r.violations.map((s) => sightingCard(s));
    if (more) $('violations-list').append(...cards);
    else $('violations-list').replaceChildren(...cards);
    $('violations-empty').hidden = $('violations-list').children.length > 0;
    state.violationsBefore = r.next_before_id;
    $('violations-more').hidden = !r.next_before_id;
  } catch (e) {
    show('violations-error', 'Cannot load the violations: ' + describe(e));
  }
}

async function reviewCount() {
  try {
    const r = await api('GET', '/api/review?limit=100');
    const n = r.review.length;
    $('review-count').textContent = n ? (r.next_after_id ? '100+' : String(n)) : '';
  } catch (_) { /* the count is a hint; the review view reports errors */ }
}

function reviewActions(s, li) {
  const plate = el('input', { placeholder: 'plate as you read it', maxlength: 64, spellcheck: 'false',
    'aria-label': 'Corrected plate' });
  const note = el('input', { placeholder: 'note (optional)', maxlength: 1000, 'aria-label': 'Note' });
  const error = el('p', { class: 'error', role: 'alert', hidden: '' });
  const buttons = [];
  const resolve = async (body) => {
    if (note.value.trim()) body.note = note.value.trim();
    buttons.forEach((b) => { b.disabled = true; });
    error.hidden = true;
    try {
      const r = await api('POST', `/api/review/${encodeURIComponent(s.sighting_id)}/resolve`, body);
      li.remove();
      $('review-empty').hidden = $('review-list').children.length > 0;
      show('review-status', `Sighting #${r.sighting_id} (${r.text}) ${ACTION_NAMES[body.action]}: now ${r.outcome}.`);
      reviewCount();
    } catch (e) {
      error.textContent = 'Not resolved: ' + describe(e);
      error.hidden = false;
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  buttons.push(
    button('Confirm unpaid', () => resolve({ action: 'confirm_unpaid' }), 'danger'),
    button('Dismiss', () => resolve({ action: 'dismiss' })),
    button('Correct plate', () => {
      if (!plate.value.trim()) {
        error.textContent = 'Type the plate as you read it on the image, then press Correct plate.';
        error.hidden = false;
        plate.focus();
        return;
      }
      resolve({ action: 'correct', plate: plate.value.trim() });
    }));
  return el('div', { class: 'actions' }, ...buttons, plate, note, error);
}

async function loadReview(more) {
  const q = new URLSearchParams({ limit: PAGE });
  if (more && state.reviewAfter) q.set('after_id', state.reviewAfter);
  show('review-error', '');
  if (!more) show('review-status', '');
  try {
    const r = await api('GET', '/api/review?' + q);
    const cards = r.review.map((s) => {
      const li = sightingCard(s);
      li.querySelector('.body').append(reviewActions(s, li));
      return li;
    });
    if (more) $('review-list').append(...cards);
    else $('review-list').replaceChildren(...cards);
    $('review-empty').hidden = $('review-list').children.length > 0;
    state.reviewAfter = r.next_after_id;
    $('review-more').hidden = !r.next_after_id;
    if (!more) reviewCount();
  } catch (e) {
    show('review-error', 'Cannot load the review queue: ' + describe(e));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Plates

async function searchPlate(text) {
  show('plate-error', '');
  $('plate-result').hidden = true;
  const p = encodeURIComponent(text);
  try {
    const [status, history] = await Promise.all([
      api('GET', `/api/plates/${p}/status`),
      api('GET', `/api/plates/${p}/history?order=newest&limit=${PAGE}`),
    ]);
    $('plate-status').replaceChildren(
      el('div', { class: 'head' }, el('span', { class: 'plate big', text: status.plate }), badge(status.decision)),
      el('div', { class: 'reason', text: status.reason }),
      el('div', { class: 'muted', text: 'as of ' + when(status.at) }));
    $('plate-status').dataset.decision = status.decision;
    fill('plate-records', 'plate-records-empty', history.records.map((r) => recordItem(r)));
    fill('plate-sightings', 'plate-sightings-empty', history.sightings.map((s) => sightingCard(s)));
    $('plate-result').hidden = false;
  } catch (e) {
    show('plate-error', describe(e));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Vignettes

function canSell() {
  return state.me && (state.me.role === 'shop' || state.me.role === 'admin');
}

async function lookup(query) {
  show('lookup-error', '');
  show('lookup-status', '');
  $('lookup-empty').hidden = true;
  const q = query.trim();
  try {
    let records;
    const number = /^#(\d+)$/.exec(q);
    if (number) {
      records = [await api('GET', `/api/vignettes/${number[1]}`)];
    } else {
      records = (await api('GET', '/api/vignettes?plate=' + encodeURIComponent(q))).vignettes;
    }
    fill('lookup-list', 'lookup-empty', records.map((r) => recordItem(r, refundButton(r, q))));
  } catch (e) {
    $('lookup-list').replaceChildren();
    show('lookup-error', describe(e));
  }
}

function refundButton(r, query) {
  if (!canSell() || r.refunded) return null;
  return el('div', { class: 'actions' }, button('Refund', async () => {
    if (!window.confirm(`Refund vignette #${r.id} for ${r.plate}? It stops counting from now.`)) return;
    try {
      await api('DELETE', `/api/vignettes/${encodeURIComponent(r.id)}`);
      await lookup(query);
      show('lookup-status', `Vignette #${r.id} refunded.`);
    } catch (e) {
      show('lookup-error', 'Not refunded: ' + describe(e));
    }
  }, 'danger'));
}

async function loadProducts() {
  if (state.products) return;
  try {
    state.products = await api('GET', '/api/products');
    $('buy-product').replaceChildren(...state.products.products.map((p) =>
      el('option', { value: p.id, text: `${p.name} (${p.days} ${p.days === 1 ? 'day' : 'days'})` })));
    if (!$('buy-start').value) $('buy-start').value = state.products.today;
    $('buy-start').title = 'Days count in ' + state.products.time_zone;
  } catch (e) {
    show('buy-error', 'Cannot load the products on sale: ' + describe(e));
  }
}

async function sell() {
  show('buy-error', '');
  show('buy-status', '');
  const order = {
    plate: $('buy-plate').value.trim(),
    country: $('buy-country').value.trim(),
    product: $('buy-product').value,
    start: $('buy-start').value,
  };
  const category = $('buy-category').value.trim();
  const orderId = $('buy-order').value.trim();
  if (category) order.vehicle_category = category;
  if (orderId) order.order_id = orderId;
  $('buy-submit').disabled = true;
  try {
    const res = await request('POST', '/api/vignettes', order);
    if (!res.ok) throw await failure(res);
    const r = await res.json();
    const from = String(r.valid_from).slice(0, 10);
    show('buy-status', res.status === 201
      ? `Sold: vignette #${r.id} for ${r.plate}, ${r.product}, valid ${from} to ${r.last_day}.`
      : `Already stored: order ${r.order_id} is vignette #${r.id}; nothing changed.`);
    $('lookup-query').value = r.plate;
    lookup(r.plate);
  } catch (e) {
    const hint = e.status === 403 ? ' Selling needs a shop or admin token.' : '';
    show('buy-error', `Refused: ${describe(e)}.${hint}`);
  } finally {
    $('buy-submit').disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Tokens (admin)

function tokenItem(t) {
  const li = el('li', { class: 'record', 'data-token-id': t.id },
    el('div', { class: 'head' },
      el('span', { class: 'tag', text: t.role }),
      t.camera ? el('span', { text: 'camera ' + t.camera }) : null,
      t.revoked ? el('span', { class: 'badge d-dismissed', text: 'revoked' }) : null,
      state.me && state.me.id === t.id ? el('span', { class: 'muted', text: '(you)' }) : null),
    el('div', { class: 'meta' },
      el('span', { text: '#' + t.id }),
      el('span', { text: 'created ' + when(t.created) }),
      t.revoked ? el('span', { text: 'revoked ' + when(t.revoked) }) : null));
  if (t.note) li.append(el('div', { class: 'reason', text: t.note }));
  if (!t.revoked) {
    li.append(el('div', { class: 'actions' }, button('Revoke', async () => {
      const self = state.me && state.me.id === t.id;
      const question = self ? 'Revoke the token you are signed in with? You will be signed out.'
        : `Revoke token #${t.id} (${t.role})? Whoever holds it loses access at once.`;
      if (!window.confirm(question)) return;
      try {
        await api('DELETE', `/api/tokens/${encodeURIComponent(t.id)}`);
        if (self) return signOut('You revoked the token you were signed in with.');
        await loadTokens();
      } catch (e) {
        show('tokens-error', 'Not revoked: ' + describe(e));
      }
    }, 'danger')));
  }
  return li;
}

async function loadTokens() {
  show('tokens-error', '');
  try {
    const r = await api('GET', '/api/tokens');
    $('tokens-list').replaceChildren(...r.tokens.slice().reverse().map(tokenItem));
  } catch (e) {
    show('tokens-error', 'Cannot list the tokens: ' + describe(e));
  }
}

async function createToken() {
  show('token-error', '');
  $('token-new').hidden = true;
  const body = { role: $('token-role').value };
  const camera = $('token-camera').value.trim();
  const note = $('token-note').value.trim();
  if (camera) body.camera = camera;
  if (note) body.note = note;
  try {
    const t = await api('POST', '/api/tokens', body);
    $('token-new-text').textContent = `Token #${t.id} (${t.role}${t.camera ? ' for camera ' + t.camera : ''}): ` +
      'copy it now, it is shown only once.';
    $('token-secret').value = t.token;
    $('token-new').hidden = false;
    $('token-secret').select();
    $('token-form').reset();
    await loadTokens();
  } catch (e) {
    show('token-error', 'Not created: ' + describe(e));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Views, sign-in and sign-out

function allowedViews() {
  return (state.me && VIEWS_BY_ROLE[state.me.role]) || [];
}

function showView(name) {
  const views = allowedViews();
  if (!views.includes(name)) name = views[0];
  state.view = name;
  for (const section of document.querySelectorAll('.view')) section.hidden = section.dataset.view !== name;
  for (const tab of document.querySelectorAll('.tab')) {
    tab.hidden = !views.includes(tab.dataset.view);
    tab.setAttribute('aria-current', tab.dataset.view === name ? 'page' : 'false');
  }
  if (name === 'live') liveStart();
  else liveStop();
  if (name === 'violations') loadViolations(false);
  if (name === 'review') loadReview(false);
  if (name === 'plates') $('plate-query').focus();
  if (name === 'vignettes') loadProducts();
  if (name === 'tokens') loadTokens();
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
}

async function signIn(token) {
  state.token = token;
  let me;
  try {
    me = await api('GET', '/api/me');
  } catch (e) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    return showLogin(e.status === 401 ? `This token was not accepted: ${e.message}.` : describe(e));
  }
  if (!VIEWS_BY_ROLE[me.role]) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    return showLogin(`This is a ${me.role} token: cameras only post sightings. ` +
      'Sign in with an operator, shop or admin token.');
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.me = me;
  $('login').hidden = true;
  $('app').hidden = false;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('who-role').textContent = me.role + (me.note ? ' · ' + me.note : '');
  $('buy-form').dataset.role = me.role;
  if (me.role !== 'shop') {
    loadCameras();
    reviewCount();
  }
  showView(location.hash.slice(1));
}

function showLogin(error) {
  $('login').hidden = false;
  $('app').hidden = true;
  $('nav').hidden = true;
  $('who').hidden = true;
  show('login-error', error || '');
  $('token').value = '';
  $('token').focus();
}

function signOut(why) {
  liveReset();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.view = null;
  state.products = null;
  state.violationsBefore = state.reviewAfter = null;
  forgetImages();
  for (const id of ['violations-list', 'review-list', 'plate-records', 'plate-sightings', 'lookup-list',
    'buy-product', 'tokens-list'])
    $(id).replaceChildren();
  for (const id of ['banner', 'live-state', 'violations-error', 'review-error', 'review-status', 'plate-error',
    'lookup-error', 'lookup-status', 'buy-error', 'buy-status', 'token-error', 'tokens-error'])
    show(id, '');
  $('token-new').hidden = true;
  $('token-secret').value = '';
  $('plate-result').hidden = true;
  $('review-count').textContent = '';
  $('live-camera').replaceChildren(el('option', { value: '', text: 'all' }));
  for (const form of document.querySelectorAll('form')) form.reset();
  showLogin(why);
}

function wire() {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (token) signIn(token);
  });
  $('logout').addEventListener('click', () => signOut());
  for (const tab of document.querySelectorAll('.tab'))
    tab.addEventListener('click', () => showView(tab.dataset.view));
  window.addEventListener('hashchange', () => {
    if (state.me && location.hash.slice(1) !== state.view) showView(location.hash.slice(1));
  });
  $('live-camera').addEventListener('change', () => {
    liveReset();
    liveStart();
  });
  $('violations-refresh').addEventListener('click', () => loadViolations(false));
  $('violations-more').addEventListener('click', () => loadViolations(true));
  $('review-refresh').addEventListener('click', () => loadReview(false));
  $('review-more').addEventListener('click', () => loadReview(true));
  $('plate-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    searchPlate($('plate-query').value.trim());
  });
  $('lookup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    lookup($('lookup-query').value);
  });
  $('buy-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sell();
  });
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    createToken();
  });
  $('frame-close').addEventListener('click', () => $('frame-dialog').close());
  // A hidden tab polls nothing; coming back catches up at once.
  document.addEventListener('visibilitychange', () => {
    if (state.view !== 'live') return;
    if (document.hidden) liveStop();
    else liveStart();
  });
}

wire();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
else showLogin();

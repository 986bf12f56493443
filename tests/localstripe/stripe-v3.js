/*
 * A test stand-in for Stripe.js (v3), served by tests/localstripe/launch.py at /js.stripe.com/v3/
 * in place of localstripe's own browser library. It implements the part of the Payment Element
 * API that the attendee payment page uses, against the intents that localstripe holds:
 *
 *   const stripe = Stripe(publishableKey);
 *   const elements = stripe.elements({ clientSecret });
 *   const payment = elements.create('payment');   // or later elements.getElement('payment')
 *   payment.mount('#payment-element');            // also unmount(), destroy(), focus(), blur(),
 *   payment.on('change', e => ...);               // clear(); on/off: change, ready, focus, blur
 *   const { error } = await stripe.confirmPayment({
 *     elements, confirmParams: { return_url }, redirect: 'always' | 'if_required' });
 *   const { paymentIntent, error } = await stripe.retrievePaymentIntent(clientSecret);
 *   const { error } = await elements.submit();   // validates the form only
 *
 * The element is a plain card form in the page (no iframe): a fieldset of class
 * `mc-stripe-standin` with labelled number, expiry (MM / YY) and CVC inputs. Its inputs have no
 * `name`, so the card never goes out with the page's own form. It sets no inline style, injects no
 * stylesheet and evaluates no code, so it runs under a strict Content-Security-Policy; the page's
 * CSP must allow this origin in `script-src` and `connect-src`, as it would allow Stripe's.
 *
 * confirmPayment sends the card to the launcher's POST /v1/payment_intents/{id}/_confirm_with_card
 * (publishable key and client secret in the body). An intent that then requires action opens an
 * in-page "3D Secure" dialog whose two buttons complete or fail the authentication through
 * localstripe's /v1/payment_intents/{id}/_authenticate. Outcomes are answered as Stripe.js does:
 * a redirect to return_url with payment_intent, payment_intent_client_secret and redirect_status
 * appended, or with `redirect: 'if_required'` a resolved { paymentIntent }; a card or validation
 * error resolves { error: { type, code, message } } and the page stays.
 *
 * It talks to no one but the server it was loaded from.
 */
(function () {
  'use strict';

  // The server this file came from; every request goes there.
  const API_BASE = (function () {
    let script = document.currentScript;
    if (!script) {
      const all = document.querySelectorAll('script[src]');
      for (let i = 0; i < all.length; i++) {
        if (/\/js\.stripe\.com\/v3\/?(\?.*)?$/.test(all[i].src)) {
          script = all[i];
        }
      }
    }
    if (!script) {
      throw new Error('Stripe stand-in: cannot tell which server it was loaded from');
    }
    const url = new URL(script.src);
    return url.origin + url.pathname.replace(/\/js\.stripe\.com\/v3\/?$/, '');
  })();

  const CLIENT_SECRET = /^(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/;

  let uniqueIds = 0;

  class IntegrationError extends Error {
    constructor(message) {
      super(message);
      this.name = 'IntegrationError';
    }
  }

  function validationError(code, message) {
    return {type: 'validation_error', code: code, message: message};
  }

  // ---- Card fields ------------------------------------------------------------------------

  function digitsOf(text) {
    return text.replace(/\D/g, '');
  }

  function luhnValid(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let d = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) {
        d *= 2;
        if (d > 9) {
          d -= 9;
        }
      }
      sum += d;
    }
    return sum % 10 === 0;
  }

  // Each check answers {state: 'empty' | 'incomplete' | 'invalid' | 'valid', error, value}.

  function checkNumber(raw) {
    const text = raw.trim();
    if (text === '') {
      return {state: 'empty', error: incompleteNumber()};
    }
    const digits = digitsOf(text);
    if (/[^\d\s-]/.test(text) || digits.length > 16 ||
        (digits.length === 16 && !luhnValid(digits))) {
      return {state: 'invalid',
              error: validationError('invalid_number', 'Your card number is invalid.')};
    }
    if (digits.length < 16) {
      return {state: 'incomplete', error: incompleteNumber()};
    }
    return {state: 'valid', value: digits};
  }

  function incompleteNumber() {
    return validationError('incomplete_number', 'Your card number is incomplete.');
  }

  function incompleteExpiry() {
    return validationError('incomplete_expiry', "Your card's expiration date is incomplete.");
  }

  function checkExpiry(raw, now) {
    const text = raw.trim();
    if (text === '') {
      return {state: 'empty', error: incompleteExpiry()};
    }
    if (/[^\d\s/-]/.test(text)) {
      return {state: 'invalid', error: validationError(
        'invalid_expiry_month', "Your card's expiration date is invalid.")};
    }
    let month, year;
    const parts = text.split(/[/-]/).map(digitsOf);
    if (parts.length === 2) {
      [month, year] = parts;
    } else if (parts.length === 1) {
      month = parts[0].slice(0, 2);
      year = parts[0].slice(2);
    } else {
      return {state: 'invalid', error: validationError(
        'invalid_expiry_month', "Your card's expiration date is invalid.")};
    }
    if (month === '' || (month.length === 1 && parts.length === 1)) {
      return {state: 'incomplete', error: incompleteExpiry()};
    }
    const m = parseInt(month, 10);
    if (month.length > 2 || m < 1 || m > 12) {
      return {state: 'invalid', error: validationError(
        'invalid_expiry_month', "Your card's expiration month is invalid.")};
    }
    if (year.length < 2 || year.length === 3) {
      return {state: 'incomplete', error: incompleteExpiry()};
    }
    if (year.length > 4) {
      return {state: 'invalid', error: validationError(
        'invalid_expiry_year', "Your card's expiration year is invalid.")};
    }
    const y = year.length === 2 ? 2000 + parseInt(year, 10) : parseInt(year, 10);
    const thisYear = now.getFullYear();
    if (y < thisYear) {
      return {state: 'invalid', error: validationError(
        'invalid_expiry_year_past', "Your card's expiration year is in the past.")};
    }
    if (y === thisYear && m < now.getMonth() + 1) {
      return {state: 'invalid', error: validationError(
        'invalid_expiry_month_past', "Your card's expiration date is in the past.")};
    }
    if (y > thisYear + 50) {
      return {state: 'invalid', error: validationError(
        'invalid_expiry_year', "Your card's expiration year is invalid.")};
    }
    return {state: 'valid', value: {month: m, year: y}};
  }

  function checkCvc(raw) {
    const text = raw.trim();
    const incomplete = validationError(
      'incomplete_cvc', "Your card's security code is incomplete.");
    if (text === '') {
      return {state: 'empty', error: incomplete};
    }
    if (!/^\d+$/.test(text) || text.length > 3) {
      return {state: 'invalid', error: validationError(
        'invalid_cvc', "Your card's security code is invalid.")};
    }
    if (text.length < 3) {
      return {state: 'incomplete', error: incomplete};
    }
    return {state: 'valid', value: text};
  }

  // ---- DOM helpers ------------------------------------------------------------------------

  function make(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const name of Object.keys(attributes || {})) {
      node.setAttribute(name, attributes[name]);
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  // ---- The Payment Element ----------------------------------------------------------------

  const EVENTS = ['change', 'ready', 'focus', 'blur'];

  class PaymentElement {
    constructor(group) {
      this._group = group;
      this._listeners = {};
      this._destroyed = false;
      this._container = null;
      this._touched = {number: false, expiry: false, cvc: false};
      this._showAll = false;
      this._shownError = null;
      this._build();
    }

    _build() {
      const id = 'mc-stripe-standin-' + (++uniqueIds);
      const errorId = id + '-error';
      const fieldset = make('fieldset', {'class': 'mc-stripe-standin', 'id': id});
      fieldset.appendChild(make('legend', {'class': 'mc-stripe-standin__legend'}, 'Card details'));
      const field = (key, label, attributes) => {
        const wrapper = make('div', {
          'class': 'mc-stripe-standin__field mc-stripe-standin__field--' + key});
        const inputId = id + '-' + key;
        wrapper.appendChild(make('label', {
          'for': inputId, 'class': 'mc-stripe-standin__label'}, label));
        const input = make('input', Object.assign({
          'id': inputId,
          'type': 'text',
          'class': 'mc-stripe-standin__input',
          'inputmode': 'numeric',
          'autocorrect': 'off',
          'spellcheck': 'false',
          'aria-invalid': 'false',
          'aria-describedby': errorId,
          // Not `required`: the page's form must still submit, as with Stripe's own iframe.
          'aria-required': 'true',
        }, attributes));
        wrapper.appendChild(input);
        fieldset.appendChild(wrapper);
        input.addEventListener('input', () => this._changed());
        input.addEventListener('blur', () => {
          if (input.value.trim() !== '') {
            this._touched[key] = true;
          }
          this._refresh(false);
        });
        return input;
      };
      this._inputs = {
        number: field('number', 'Card number', {
          'autocomplete': 'cc-number', 'placeholder': '1234 1234 1234 1234', 'maxlength': '23'}),
        expiry: field('expiry', 'Expiry date (MM / YY)', {
          'autocomplete': 'cc-exp', 'placeholder': 'MM / YY', 'maxlength': '9'}),
        cvc: field('cvc', 'Security code (CVC)', {
          'autocomplete': 'cc-csc', 'placeholder': 'CVC', 'maxlength': '4'}),
      };
      this._error = make('p', {
        'id': errorId, 'class': 'mc-stripe-standin__error', 'aria-live': 'polite', 'hidden': ''});
      fieldset.appendChild(this._error);
      fieldset.addEventListener('focusin', event => {
        if (!fieldset.contains(event.relatedTarget)) {
          this._emit('focus', {elementType: 'payment'});
        }
      });
      fieldset.addEventListener('focusout', event => {
        if (!fieldset.contains(event.relatedTarget)) {
          this._emit('blur', {elementType: 'payment'});
        }
      });
      this._fieldset = fieldset;
    }

    _alive() {
      if (this._destroyed) {
        throw new IntegrationError(
          'This Element has already been destroyed. Please create a new one.');
      }
    }

    mount(target) {
      this._alive();
      let node = target;
      if (typeof target === 'string') {
        node = document.querySelector(target);
        if (!node) {
          throw new IntegrationError(
            'The selector you specified (' + target + ') applies to no DOM elements that ' +
            'are currently on the page. Make sure the element exists on the page before ' +
            'calling mount().');
        }
      } else if (!(target instanceof window.Element)) {
        throw new IntegrationError(
          'Invalid DOM element. Make sure to call mount() with a valid DOM element or selector.');
      }
      if (this._container) {
        if (this._container === node) {
          return;
        }
        throw new IntegrationError('This Element is already mounted. Use `unmount()` to ' +
                                   'unmount the Element before re-mounting.');
      }
      if (node instanceof HTMLInputElement || node instanceof HTMLTextAreaElement ||
          node instanceof HTMLSelectElement) {
        throw new IntegrationError('Elements cannot be mounted in a form field (' +
                                   node.tagName.toLowerCase() + '); use a container element.');
      }
      node.appendChild(this._fieldset);
      this._container = node;
      setTimeout(() => {
        if (this._container === node) {
          this._emit('ready', {elementType: 'payment'});
        }
      }, 0);
    }

    unmount() {
      this._alive();
      if (this._container) {
        this._fieldset.remove();
        this._container = null;
      }
    }

    destroy() {
      if (this._destroyed) {
        return;
      }
      this.unmount();
      this._destroyed = true;
      this._listeners = {};
      this._group._forget(this);
    }

    focus() {
      this._alive();
      this._inputs.number.focus();
    }

    blur() {
      this._alive();
      const active = document.activeElement;
      if (active && this._fieldset.contains(active)) {
        active.blur();
      }
    }

    clear() {
      this._alive();
      for (const key of Object.keys(this._inputs)) {
        this._inputs[key].value = '';
        this._touched[key] = false;
      }
      this._showAll = false;
      this._changed();
    }

    on(event, handler) {
      if (!EVENTS.includes(event)) {
        throw new IntegrationError('The stand-in for Stripe.js knows no "' + event +
                                   '" event of the Payment Element.');
      }
      if (typeof handler !== 'function') {
        throw new IntegrationError('on(): the handler must be a function.');
      }
      (this._listeners[event] = this._listeners[event] || []).push(handler);
      return this;
    }

    off(event, handler) {
      const list = this._listeners[event] || [];
      this._listeners[event] = handler ? list.filter(h => h !== handler) : [];
      return this;
    }

    _emit(event, payload) {
      for (const handler of (this._listeners[event] || []).slice()) {
        try {
          handler(payload);
        } catch (error) {
          setTimeout(() => { throw error; }, 0);
        }
      }
    }

    // The form as it stands: each field checked, the error to show (the first field's that is
    // wrong, or incomplete once left or once the payment was tried) and the card when complete.
    _state() {
      const fields = {
        number: checkNumber(this._inputs.number.value),
        expiry: checkExpiry(this._inputs.expiry.value, new Date()),
        cvc: checkCvc(this._inputs.cvc.value),
      };
      const keys = Object.keys(fields);
      const shown = {};
      let error = null;
      for (const key of keys) {
        const f = fields[key];
        const show = f.state === 'invalid' ||
          (f.state === 'incomplete' && (this._touched[key] || this._showAll)) ||
          (f.state === 'empty' && this._showAll);
        shown[key] = show;
        if (show && !error) {
          error = f.error;
        }
      }
      const complete = keys.every(key => fields[key].state === 'valid');
      const empty = keys.every(key => fields[key].state === 'empty');
      let firstWrong = null;
      for (const key of keys) {
        if (fields[key].state !== 'valid') {
          firstWrong = firstWrong || key;
        }
      }
      return {
        fields: fields, shown: shown, error: error, complete: complete, empty: empty,
        firstWrong: firstWrong,
        card: complete ? {
          number: fields.number.value,
          exp_month: fields.expiry.value.month,
          exp_year: fields.expiry.value.year,
          cvc: fields.cvc.value,
        } : null,
      };
    }

    // Shows the state's error; answers whether the error shown changed.
    _show(state) {
      for (const key of Object.keys(this._inputs)) {
        this._inputs[key].setAttribute('aria-invalid', state.shown[key] ? 'true' : 'false');
      }
      const before = this._shownError ? this._shownError.code : null;
      this._shownError = state.error;
      if (state.error) {
        this._error.textContent = state.error.message;
        this._error.hidden = false;
      } else {
        this._error.textContent = '';
        this._error.hidden = true;
      }
      return before !== (state.error ? state.error.code : null);
    }

    _changeEvent(state) {
      return {
        elementType: 'payment',
        empty: state.empty,
        complete: state.complete,
        collapsed: false,
        value: {type: 'card'},
        error: state.error || undefined,
      };
    }

    _changed() {
      const state = this._state();
      this._show(state);
      this._emit('change', this._changeEvent(state));
    }

    _refresh(always) {
      const state = this._state();
      if (this._show(state) || always) {
        this._emit('change', this._changeEvent(state));
      }
      return state;
    }

    // Before a payment: every field's error shown, focus on the first one that is wrong.
    _validate() {
      this._showAll = true;
      const state = this._refresh(false);
      if (state.firstWrong && this._container) {
        this._inputs[state.firstWrong].focus();
      }
      return state;
    }

    _setBusy(busy) {
      this._fieldset.disabled = busy;
      this._fieldset.setAttribute('aria-busy', busy ? 'true' : 'false');
    }
  }

  // ---- Elements ---------------------------------------------------------------------------

  class Elements {
    constructor(stripe, options) {
      this._stripe = stripe;
      this._clientSecret = options.clientSecret;
      this._payment = null;
    }

    create(type, options) {
      if (type !== 'payment') {
        throw new IntegrationError('The stand-in for Stripe.js makes only the "payment" ' +
                                   'Element, not "' + type + '".');
      }
      if (!this._clientSecret) {
        throw new IntegrationError('The stand-in for Stripe.js needs elements({clientSecret}) ' +
                                   'for a Payment Element.');
      }
      if (this._payment) {
        throw new IntegrationError('Can only create one Element of type payment.');
      }
      this._payment = new PaymentElement(this);
      return this._payment;
    }

    getElement(type) {
      return type === 'payment' ? this._payment : null;
    }

    _forget(element) {
      if (this._payment === element) {
        this._payment = null;
      }
    }

    async submit() {
      const element = this._payment;
      if (!element || !element._container) {
        throw new IntegrationError('elements.submit(): no Payment Element is mounted.');
      }
      const state = element._validate();
      return state.complete ? {} : {error: state.error};
    }
  }

  // ---- Requests to the server this file came from ---------------------------------------------

  // POSTs send JSON as text/plain, which localstripe reads and which needs no CORS preflight.
  async function call(method, path, body) {
    let response;
    try {
      response = await fetch(API_BASE + path, {
        method: method,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      return {status: 0, body: {error: {
        type: 'api_connection_error',
        message: 'We could not reach the payment service. Check your connection and try again.',
      }}};
    }
    let answer;
    try {
      answer = await response.json();
    } catch (e) {
      answer = {};
    }
    return {status: response.status, body: answer};
  }

  // A Stripe-shaped error from a failed answer: the errors of a card (HTTP 402) are card errors.
  function apiError(answer) {
    const error = Object.assign({}, (answer.body && answer.body.error) || {});
    if (answer.status === 402) {
      error.type = 'card_error';
    }
    if (!error.type) {
      error.type = 'api_error';
    }
    if (!error.message) {
      error.message = 'The payment could not be made (HTTP ' + answer.status + ').';
    }
    return error;
  }

  function intentId(clientSecret) {
    const match = typeof clientSecret === 'string' && clientSecret.match(CLIENT_SECRET);
    if (!match) {
      throw new IntegrationError('Invalid value for clientSecret: it should be the client ' +
                                 'secret of a PaymentIntent, pi_..._secret_....');
    }
    return match[1];
  }

  // ---- The "3D Secure" dialog ---------------------------------------------------------------

  function formatAmount(intent) {
    try {
      return new Intl.NumberFormat(undefined, {style: 'currency', currency: intent.currency})
        .format(intent.amount / 100);
    } catch (e) {
      return (intent.amount / 100).toFixed(2) + ' ' + String(intent.currency).toUpperCase();
    }
  }

  // Asks whether the bank's authentication succeeds; answers true or false.
  function authenticate(intent) {
    return new Promise(resolve => {
      const id = 'mc-stripe-standin-3ds-' + (++uniqueIds);
      const dialog = make('dialog', {
        'class': 'mc-stripe-standin-3ds',
        'role': 'dialog',
        'aria-modal': 'true',
        'aria-labelledby': id + '-title',
        'aria-describedby': id + '-text',
      });
      dialog.appendChild(make('h2', {'id': id + '-title'}, '3D Secure'));
      dialog.appendChild(make('p', {'id': id + '-text'},
        'Your bank asks you to authenticate the payment of ' + formatAmount(intent) +
        '. This is a test: choose the outcome.'));
      const buttons = make('div', {'class': 'mc-stripe-standin-3ds__buttons'});
      const complete = make('button', {'type': 'button'}, 'Complete authentication');
      const fail = make('button', {'type': 'button'}, 'Fail authentication');
      buttons.appendChild(complete);
      buttons.appendChild(fail);
      dialog.appendChild(buttons);

      let settled = false;
      const finish = success => {
        if (settled) {
          return;
        }
        settled = true;
        if (typeof dialog.close === 'function' && dialog.open) {
          dialog.close();
        }
        dialog.remove();
        resolve(success);
      };
      complete.addEventListener('click', () => finish(true));
      fail.addEventListener('click', () => finish(false));
      // Escape closes a modal dialog: the authentication is abandoned.
      dialog.addEventListener('cancel', event => {
        event.preventDefault();
        finish(false);
      });

      document.body.appendChild(dialog);
      if (typeof dialog.showModal === 'function') {
        dialog.showModal();
      } else {
        dialog.setAttribute('open', '');
      }
      complete.focus();
    });
  }

  // ---- Stripe -------------------------------------------------------------------------------

  function redirectStatus(status) {
    if (status === 'succeeded' || status === 'requires_capture') {
      return 'succeeded';
    }
    return status === 'processing' ? 'processing' : 'failed';
  }

  function Stripe(publishableKey) {
    if (typeof publishableKey !== 'string' || publishableKey === '') {
      throw new IntegrationError('Please call Stripe() with your publishable key. You used an ' +
                                 'empty string.');
    }
    if (!publishableKey.startsWith('pk_')) {
      throw new IntegrationError('Stripe() takes a publishable key (pk_...), never a secret one.');
    }
    if (!(this instanceof Stripe)) {
      return new Stripe(publishableKey);
    }
    this._key = publishableKey;
  }

  Stripe.prototype.elements = function (options) {
    const opts = options || {};
    if (opts.clientSecret !== undefined) {
      intentId(opts.clientSecret);
    }
    return new Elements(this, opts);
  };

  Stripe.prototype.retrievePaymentIntent = async function (clientSecret) {
    const id = intentId(clientSecret);
    const query = new URLSearchParams({key: this._key, client_secret: clientSecret});
    const answer = await call('GET', '/v1/payment_intents/' + id + '?' + query.toString());
    if (answer.status !== 200) {
      return {error: apiError(answer)};
    }
    return {paymentIntent: answer.body};
  };

  Stripe.prototype.confirmPayment = async function (options) {
    const opts = options || {};
    const elements = opts.elements;
    if (!(elements instanceof Elements)) {
      throw new IntegrationError('confirmPayment(): pass the `elements` the Payment Element ' +
                                 'was created from.');
    }
    const redirect = opts.redirect === undefined ? 'always' : opts.redirect;
    if (redirect !== 'always' && redirect !== 'if_required') {
      throw new IntegrationError('confirmPayment(): `redirect` is "always" or "if_required".');
    }
    const returnUrl = (opts.confirmParams || {}).return_url;
    let target = null;
    if (returnUrl !== undefined) {
      try {
        target = new URL(returnUrl);
      } catch (e) {
        throw new IntegrationError('confirmPayment(): confirmParams.return_url must be an ' +
                                   'absolute URL.');
      }
    } else if (redirect === 'always') {
      throw new IntegrationError('confirmPayment(): the `confirmParams.return_url` argument is ' +
                                 "required unless passing `redirect: 'if_required'`.");
    }
    const element = elements._payment;
    if (!element || !element._container) {
      throw new IntegrationError('confirmPayment(): no Payment Element is mounted.');
    }

    const state = element._validate();
    if (!state.complete) {
      return {error: state.error};
    }

    const clientSecret = elements._clientSecret;
    const id = intentId(clientSecret);
    element._setBusy(true);
    let intent;
    try {
      let answer = await call('POST', '/v1/payment_intents/' + id + '/_confirm_with_card', {
        key: this._key,
        client_secret: clientSecret,
        card: state.card,
      });
      if (answer.status !== 200) {
        return {error: apiError(answer)};
      }
      intent = answer.body;
      if (intent.status === 'requires_action') {
        const success = await authenticate(intent);
        answer = await call('POST', '/v1/payment_intents/' + id + '/_authenticate?success=' +
                            success, {key: this._key, client_secret: clientSecret});
        if (answer.status !== 200) {
          return {error: apiError(answer)};
        }
        intent = answer.body;
        if (!success || intent.status === 'requires_payment_method') {
          const last = intent.last_payment_error || {};
          return {error: {
            type: 'card_error',
            code: last.code || 'payment_intent_authentication_failure',
            message: last.message ||
              'We are unable to authenticate your payment method. Please choose a different ' +
              'payment method and try again.',
            payment_intent: intent,
          }};
        }
      }
    } finally {
      element._setBusy(false);
    }

    const status = redirectStatus(intent.status);
    if (status === 'failed') {
      return {error: {
        type: 'invalid_request_error',
        code: 'payment_intent_unexpected_state',
        message: 'The payment is ' + intent.status.replace(/_/g, ' ') + '.',
        payment_intent: intent,
      }};
    }
    // A card needs no redirect (its authentication happens in this page).
    if (redirect === 'if_required') {
      return {paymentIntent: intent};
    }
    target.searchParams.append('payment_intent', intent.id);
    target.searchParams.append('payment_intent_client_secret', clientSecret);
    target.searchParams.append('redirect_status', status);
    window.location.assign(target.toString());
    // The page is leaving; like Stripe.js, the promise does not settle.
    return new Promise(() => {});
  };

  window.Stripe = Stripe;
})();

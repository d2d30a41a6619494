// The login form: any account of any role.

import { h } from '../dom.js';
import { t } from '../i18n.js';

export function renderLogin(onLogin, error) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, 'data-test': 'username' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'data-test': 'password' });
  const button = h('button.primary', { type: 'submit', 'data-test': 'login' }, t('login'));
  const form = h('form.card.login', {
    onsubmit: (e) => {
      e.preventDefault();
      button.disabled = true;
      onLogin(user.value.trim(), pass.value);
    },
  },
  h('h2', t('app_title')),
  h('label', t('username'), user),
  h('label', t('password'), pass),
  error && h('p.error', { 'data-test': 'login-error' }, error),
  button);
  setTimeout(() => user.focus(), 0);
  return form;
}

// The carrier's screen: vehicles and waybills do not exist in yjtd yet, so
// it says so, and shows nothing made up.

import { h } from '../dom.js';
import { t } from '../i18n.js';

export function renderTrs(ctx, el) {
  el.append(h('section.card.unavailable', { 'data-test': 'trs-unavailable' }, h('h2', t('tab_vehicles')), h('p', t('trs_unavailable'))));
}

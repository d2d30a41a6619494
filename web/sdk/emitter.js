// A minimal event emitter shared by the client and its calls: on(type, fn)
// returns a function that removes the listener; '*' listeners see every
// event as (type, data). A listener that throws is reported on the console
// and does not stop the others.

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /**
   * Adds a listener for an event type ('*' for all).
   * @param {string} type
   * @param {Function} fn
   * @returns {() => void} removes the listener
   */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** Like on(), for the next event of that type only. */
  once(type, fn) {
    const off = this.on(type, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }

  /**
   * Resolves with the next event of that type for which pred is true;
   * rejects after timeoutMs.
   */
  wait(type, pred = () => true, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(type, (data) => {
        if (!pred(data)) return;
        clearTimeout(timer);
        off();
        resolve(data);
      });
    });
  }

  emit(type, data) {
    for (const key of [type, '*']) {
      const set = this._listeners.get(key);
      if (!set) continue;
      for (const fn of [...set]) {
        try {
          if (key === '*') fn(type, data);
          else fn(data);
        } catch (e) {
          console.error(`yjt: a listener for ${type} threw`, e);
        }
      }
    }
  }
}

/* Presence messages over WebSocket (presence.query, presence.subscribe,
 * presence.unsubscribe; events presence.changed). The handlers are in
 * presence_handlers (ws.h); this is the registry's notify callback. */
#ifndef YJT_PRESENCE_API_H
#define YJT_PRESENCE_API_H

void presence_api_notify(const char *user_id, void *const *subscribers, unsigned n, void *ud);

#endif

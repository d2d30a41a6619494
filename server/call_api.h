/* Calls, patrols and ICE servers over WebSocket: the handlers in
 * call_handlers (ws.h) hand each request to signaling/, and the hooks
 * signaling/ sends events through find the device's connection. */
#ifndef YJT_CALL_API_H
#define YJT_CALL_API_H

/* Starts signaling/ with the limits from the configuration. */
void call_api_init(void);
void call_api_shutdown(void);

#endif

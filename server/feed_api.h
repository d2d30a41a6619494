/* WebSocket glue of the 3D feeds (push/feed.c). */
#ifndef YJT_FEED_API_H
#define YJT_FEED_API_H

void feed_api_init(void);
void feed_api_shutdown(void);

#endif

/* Logging: one line per event, to stderr, with a UTC timestamp, a level and
 * the module that speaks. Callers pass ids (user, conn, call) in the message;
 * they never pass secrets (passwords, tokens). */
#ifndef YJT_LOG_H
#define YJT_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *name);
/* While on, this thread's lines are dropped: a request run that will be
 * thrown away and run again (records/store_replay.h) says nothing. */
void log_hush(bool on);
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif

/* Opening the records: the store plus every index the record modules
 * declare. yjtd and yjtctl both open the data directory through here, so
 * they always maintain the same indexes. */
#ifndef YJT_RECORDS_H
#define YJT_RECORDS_H

#include "records/store.h"

/* Opens the store and declares the indexes; NULL with *err (g_free).
 * With redis_url (not NULL or empty) the store is on that Redis server,
 * its keys under redis_prefix; otherwise it is the SQLite file in dir. */
struct store *records_open(const char *dir, const char *redis_url, const char *redis_prefix,
                           char **err);

#endif

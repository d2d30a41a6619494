/* Opening the records: the store plus every index the record modules
 * declare. yjtd and yjtctl both open the data directory through here, so
 * they always maintain the same indexes. */
#ifndef YJT_RECORDS_H
#define YJT_RECORDS_H

#include "records/store.h"

/* Opens dir's store and declares the indexes; NULL with *err (g_free). */
struct store *records_open(const char *dir, char **err);

#endif

/* The demo data set behind --demo: province 44 with two cities and three
 * districts, a few enterprises and a carrier, and one account of each role.
 * Loaded once; the generated passwords are printed on stdout and kept in
 * DATA_DIR/demo-accounts.txt (mode 0600) for later. */
#ifndef YJT_DEMO_H
#define YJT_DEMO_H

#include "records/store.h"

/* Returns 0, or -1 after logging why. */
int demo_load(struct store *st, const char *data_dir, int hash_iterations);

#endif

/* The SQLite store's VFS: SQLite's default one, except that a connection
 * writes each commit to the write-ahead log in one system call instead of
 * two per page (see store_sqlite_vfs.c). Registered on first use, from the
 * thread that opens stores. */
#ifndef YJT_STORE_SQLITE_VFS_H
#define YJT_STORE_SQLITE_VFS_H

#include <sqlite3.h>

/* The VFS's name for sqlite3_open_v2(), or NULL (SQLite's default is then
 * used) if the default VFS is too old to be wrapped. */
const char *store_vfs_name(void);

#endif

/* A VFS over SQLite's own that writes each commit to the log in one system
 * call (see store_sqlite_vfs.h).
 *
 * SQLite appends a commit to the write-ahead log one frame at a time, each
 * frame as two writes (its 24-byte header, then the page): a call record
 * saved with its index rows is some twenty writes, each a system call,
 * which made the log writes a fifth of the event loop's time. Here the
 * log's writes are gathered while they follow on from one another and go
 * out together when the commit's last frame is complete (the frame whose
 * header carries the database size: the commit marker of the log format),
 * so the commit is in the file before SQLite publishes it in the shared
 * index, where other connections look. Any other use of the file (a read,
 * a sync, a size, a truncation, a write elsewhere, closing) first writes
 * what is gathered. Files other than logs are SQLite's own, untouched. */
#include "records/store_sqlite_vfs.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define GATHER_MAX (1 << 20) /* written out past this many bytes */
#define WAL_HDR 32           /* the log's header */
#define FRAME_HDR 24         /* each frame's header */

struct wal_file {
    sqlite3_file base;
    sqlite3_file *real; /* SQLite's file, right after this struct */
    unsigned char *buf; /* gathered bytes, for [at, at + len) */
    size_t len, cap;
    sqlite3_int64 at;
    bool commit_frame; /* the frame header just gathered is a commit's */
};

static sqlite3_vfs gather_vfs;
static sqlite3_vfs *real_vfs;

static int put_out(struct wal_file *f)
{
    if (!f->len)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
    f->len = 0;
    return rc;
}

static int w_close(sqlite3_file *p)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = put_out(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int w_read(sqlite3_file *p, void *out, int n, sqlite3_int64 off)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = put_out(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, n, off);
}

static int w_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 off)
{
    struct wal_file *f = (struct wal_file *)p;
    bool header = n == FRAME_HDR && off >= WAL_HDR;
    if (header) {
        /* A frame header: bytes 4-7 hold the database size in pages after
         * the commit if this frame ends one, else zero. */
        const unsigned char *h = data;
        f->commit_frame = (h[4] | h[5] | h[6] | h[7]) != 0;
        /* Unless it follows on from what is gathered, it goes straight to
         * the file (after what is gathered): the first frame of a commit,
         * or a header SQLite rewrites in place (new checksums after a page
         * was written twice in one transaction), which no page write
         * follows to send it out. */
        if (!f->len || off != f->at + (sqlite3_int64)f->len) {
            int rc = put_out(f);
            return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, data, n, off);
        }
    }
    if (f->len && off != f->at + (sqlite3_int64)f->len) {
        int rc = put_out(f); /* not a continuation: what is gathered goes first */
        if (rc != SQLITE_OK)
            return rc;
    }
    if (n <= 0 || (size_t)n > GATHER_MAX) {
        int rc = put_out(f);
        return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, data, n, off);
    }
    if (f->len + (size_t)n > f->cap) {
        int rc = put_out(f);
        if (rc != SQLITE_OK)
            return rc;
        if ((size_t)n > f->cap) {
            size_t cap = f->cap ? f->cap : 64 * 1024;
            while (cap < (size_t)n)
                cap *= 2;
            unsigned char *buf = realloc(f->buf, cap);
            if (!buf)
                return f->real->pMethods->xWrite(f->real, data, n, off);
            f->buf = buf;
            f->cap = cap;
        }
    }
    if (!f->len)
        f->at = off;
    memcpy(f->buf + f->len, data, (size_t)n);
    f->len += (size_t)n;
    if (header)
        return SQLITE_OK; /* its page follows */
    bool end_of_commit = f->commit_frame;
    f->commit_frame = false;
    if (end_of_commit || f->len >= GATHER_MAX)
        return put_out(f);
    return SQLITE_OK;
}

static int w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = put_out(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int w_sync(sqlite3_file *p, int flags)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = put_out(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int w_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = put_out(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int w_lock(sqlite3_file *p, int level)
{
    struct wal_file *f = (struct wal_file *)p;
    return f->real->pMethods->xLock(f->real, level);
}

static int w_unlock(sqlite3_file *p, int level)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = put_out(f);
    int rc2 = f->real->pMethods->xUnlock(f->real, level);
    return rc != SQLITE_OK ? rc : rc2;
}

static int w_reserved(sqlite3_file *p, int *out)
{
    struct wal_file *f = (struct wal_file *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int w_fcntl(sqlite3_file *p, int op, void *arg)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = put_out(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int w_sector(sqlite3_file *p)
{
    struct wal_file *f = (struct wal_file *)p;
    return f->real->pMethods->xSectorSize(f->real);
}

static int w_device(sqlite3_file *p)
{
    struct wal_file *f = (struct wal_file *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* A log is never mapped into memory or given a shared index of its own;
 * version 1 methods say so. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = w_close,
    .xRead = w_read,
    .xWrite = w_write,
    .xTruncate = w_truncate,
    .xSync = w_sync,
    .xFileSize = w_file_size,
    .xLock = w_lock,
    .xUnlock = w_unlock,
    .xCheckReservedLock = w_reserved,
    .xFileControl = w_fcntl,
    .xSectorSize = w_sector,
    .xDeviceCharacteristics = w_device,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL)) /* SQLite's file in place, its own methods */
        return real_vfs->xOpen(real_vfs, name, p, flags, out_flags);
    struct wal_file *f = (struct wal_file *)p;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (rc == SQLITE_OK)
        f->base.pMethods = &wal_methods;
    else if (f->real->pMethods)
        f->real->pMethods->xClose(f->real);
    return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_path(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    real_vfs->xDlError(real_vfs, n, out);
}

static void (*v_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void v_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    real_vfs->xDlClose(real_vfs, h);
}

static int v_random(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return real_vfs->xSleep(real_vfs, us);
}

static int v_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int v_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

const char *store_vfs_name(void)
{
    static bool tried;
    static const char *name;
    if (tried)
        return name;
    tried = true;
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs || real_vfs->iVersion < 2)
        return NULL;
    gather_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct wal_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = "yjt-gather",
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_path,
        .xDlOpen = v_dl_open,
        .xDlError = v_dl_error,
        .xDlSym = v_dl_sym,
        .xDlClose = v_dl_close,
        .xRandomness = v_random,
        .xSleep = v_sleep,
        .xCurrentTime = v_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_time64,
    };
    if (sqlite3_vfs_register(&gather_vfs, 0) == SQLITE_OK)
        name = gather_vfs.zName;
    return name;
}

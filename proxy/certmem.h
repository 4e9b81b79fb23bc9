/* certmem.h: remembers the certificate each remote domain last presented, so that a change is
 * noticed and logged, or refused when policy pins (RFC 7590 §3.7, human factors). State file:
 * one "DOMAIN SHA256HEX\n" line per domain, sorted, mode 0600. Thread-safe: worker threads
 * share one struct certmem. tests: test_certmem.c */
#ifndef XTP_CERTMEM_H
#define XTP_CERTMEM_H

#include <stdbool.h>
#include <stddef.h>

#define CERTMEM_MAX        100000 /* domains remembered at most */
#define CERTMEM_DOMAIN_MAX 253

struct certmem;

/* Reads the state file at path; a missing file is an empty memory, but its folder must be
 * writable. NULL with "PATH:LINE: message" (or "PATH: message") in err when a line is
 * malformed (not DOMAIN, one space, 64 lower-case hex digits), a domain appears twice, or
 * the file cannot be read. */
struct certmem *certmem_open(const char *path, char *err, size_t errlen);
void certmem_free(struct certmem *m); /* NULL is fine */

enum certmem_seen {
    CERTMEM_NEW = 0,     /* first time seen: remembered */
    CERTMEM_SAME = 1,    /* the fingerprint we remembered */
    CERTMEM_CHANGED = 2, /* a different one: old_fp gets the remembered one */
};

/* Compares fp (64 lower-case hex digits, verify_fingerprint()) with what we remember for
 * domain (compared ASCII case-insensitively). A new domain is remembered; on a change the new
 * fingerprint replaces the old one when replace is true, and the old one stays (pinned) when
 * it is false. old_fp may be NULL. Memory only, no I/O: returns enum certmem_seen, or -EINVAL
 * for a malformed domain or fp, -ENOSPC when CERTMEM_MAX domains are already remembered,
 * -ENOMEM. */
int certmem_check(struct certmem *m, const char *domain, const char *fp, bool replace,
                  char old_fp[65]);

/* Writes the memory to the state file if it changed since the last successful write: a
 * temporary file in the same folder, fsync, rename over the old one, fsync of the folder.
 * Blocks on the disk, so call it off the event loop (or accept the stall) after a
 * certmem_check() that returned CERTMEM_NEW or CERTMEM_CHANGED; a clean memory returns at
 * once. A failed write is retried by the next call. 0 or -errno. */
int certmem_flush(struct certmem *m);

/* Number of domains remembered. */
size_t certmem_count(struct certmem *m);

#endif

/* dialback.h: stateless Server Dialback keys (XEP-0185, taken up by XEP-0220). Every instance
 * and worker thread that loads the same secret file computes the same key for a stream, so a
 * db:verify is answered by recomputing, with no table shared between threads or processes.
 * tests: test_dialback.c */
#ifndef XTP_DIALBACK_H
#define XTP_DIALBACK_H

#include <stdbool.h>
#include <stddef.h>

#define DIALBACK_KEY_LEN 64 /* hex digits of an HMAC-SHA256 */

/* The HMAC key: SHA-256(secret) in lower-case hex, as XEP-0185 §2 ("the output of the SHA256
 * hashing algorithm MUST be provided in the hexadecimal representation") and its §3 example
 * use it. Immutable once loaded; share it freely between threads. */
struct dialback {
    char k[DIALBACK_KEY_LEN];
};

/* Loads the secret from path: the whole file, one trailing "\n" or "\r\n" removed, must be
 * non-empty and at most 4 KiB. A file readable or writable by group or others is refused
 * (anyone who reads it can forge our keys). When the file does not exist it is created with
 * 32 random bytes (getrandom) as 64 hex digits and a newline, mode 0600: written to a
 * temporary file in the same folder and linked into place, so that proxy instances starting
 * together all end up with the one secret that won. Returns 0, or XTP_ECONFIG (or -errno on
 * I/O failure) with "PATH: message" in err. */
int dialback_load(struct dialback *d, const char *path, char *err, size_t errlen);

/* For tests and for a secret given inline: the key for these secret bytes. */
void dialback_init(struct dialback *d, const void *secret, size_t len);

/* key = hex(HMAC-SHA256(d->k, receiving + " " + originating + " " + id)) (XEP-0185 §2):
 * receiving is the server that got the db:result (the 'to' of db:result and db:verify),
 * originating the one that sent it (the 'from'), id the stream ID the receiving server
 * gave. out gets 64 lower-case hex digits and a NUL. */
void dialback_key(const struct dialback *d, const char *receiving, const char *originating,
                  const char *id, char out[DIALBACK_KEY_LEN + 1]);

/* Whether key is the key for this triple. The comparison takes the same time wherever the
 * keys differ; a key of the wrong length (or NULL) is false. Hex digits must be lower case,
 * as dialback_key() writes them and XEP-0185 shows them. */
bool dialback_check(const struct dialback *d, const char *receiving, const char *originating,
                    const char *id, const char *key);

#endif

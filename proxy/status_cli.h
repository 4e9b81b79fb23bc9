/* status_cli.h: the /status document and the `xmpp-tls-proxy status` subcommand that prints
 * it as a table. Both sides of the format live here, so they cannot drift apart:
 *
 *   {"sessions":[{"id":12,"listener":"c2s","kind":"c2s","peer":"203.0.113.5:40312",
 *     "domain":"example.test","remote_domain":null,"tls_version":"TLSv1.3",
 *     "cipher":"TLS1-3-AES-128-GCM-SHA256","peer_auth":"none",
 *     "peer_cert":{"subject":"CN=other.test","sans":["other.test"],
 *                  "sha256":"3f:a2:...","not_after":"2027-01-01T00:00:00Z"} | null,
 *     "bytes":{"in":1234,"out":5678},"age":37}, ...]}
 *
 * peer_auth is "pkix", "dane", "dialback" or "none"; bytes are the peer socket's, read ("in")
 * and written ("out"); age is in seconds. Absent values are null.
 * tests: test_admin.c (the subcommand against a live admin server), test_json.c (the format) */
#ifndef XTP_STATUS_CLI_H
#define XTP_STATUS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"

#define STATUS_CLI_TIMEOUT_MS 5000        /* connect, and each wait for the server */
#define STATUS_CLI_MAX_BODY   (64u << 20) /* a bigger /status response is refused */

/* One live session, as the proxy describes it. Strings are borrowed; NULL writes null. */
struct status_session {
    uint64_t id;
    const char *listener;      /* the listener's name from the config */
    const char *kind;          /* "c2s", "s2s", "s2s-out" */
    const char *peer;          /* "IP:PORT" of the socket on the Internet side */
    const char *domain;        /* our domain */
    const char *remote_domain; /* s2s: the authenticated remote domain */
    const char *tls_version;
    const char *cipher;
    const char *peer_auth; /* "pkix" | "dane" | "dialback" | "none" */
    bool has_peer_cert;    /* the fields below are valid */
    const char *cert_subject;
    const char *const *cert_sans;
    size_t ncert_sans;
    const char *cert_sha256; /* hex pairs separated by ':' */
    int64_t cert_not_after;  /* Unix time */
    uint64_t bytes_in, bytes_out;
    uint64_t age_s;
};

/* Writing /status: begin, one call per session, end. status_cli_end() returns
 * json_finish()'s result (0 or -ENOMEM). */
void status_cli_begin(struct json *j);
void status_cli_session(struct json *j, const struct status_session *s);
int status_cli_end(struct json *j);

/* Prints a /status document as a table (ID LISTENER KIND PEER DOMAIN REMOTE TLS CIPHER AUTH
 * AGE BYTES), sessions by id. Control characters in values print as '?'. Returns 0, or
 * -EBADMSG with a reason in err when the text is not such a document. */
int status_cli_print(const char *text, size_t len, FILE *out, char *err, size_t errlen);

/* The subcommand: GET /status from host_port ("127.0.0.1:9480", "[::1]:9480": the value of
 * admin.listen) over a blocking connection, and prints the table to out. Returns 0, or 1
 * after one line on stderr saying what failed. */
int status_cli_run(const char *host_port, FILE *out);

#endif

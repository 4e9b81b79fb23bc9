/* worker.h: what one event loop owns: its listeners, its sessions, the configuration snapshot
 * new sessions take, and the scratch buffers every read on this loop shares (reads are
 * processed synchronously, so one buffer per loop is enough and no session holds one while
 * idle). One worker per thread; nothing here is shared between threads but the snapshot. */
#ifndef XTP_WORKER_H
#define XTP_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "snap.h"

#define WORKER_RBUF_SIZE (64 * 1024)       /* socket reads */
#define WORKER_PBUF_SIZE (16 * 1024 + 256) /* one decrypted TLS record */
#define WORKER_CORK_SIZE (16 * 1024)       /* relay_cork(): a TLS flight, gathered */

struct certmem;
struct conn;
struct dialback;
struct dns;
struct listener;
struct metrics;
struct tls_ticket;

#define WORKER_TICKETS 64 /* s2s-out TLS sessions kept for resumption, per loop */

/* A TLS session to resume on the next s2s-out connection from local to remote. */
struct worker_ticket {
    char local[254], remote[254];
    struct tls_ticket *ticket; /* owned; NULL: free slot */
};

struct worker {
    uv_loop_t *loop;       /* borrowed (worker 0: the default loop) or own_loop */
    unsigned index;        /* 0 .. nworkers-1 */
    unsigned nworkers;     /* cfg->workers at start */
    unsigned *total_live;  /* shared by the workers (atomic): limits.max_connections */
    struct snap *snap;     /* shared (ref): what new sessions use */
    struct listener **lsn; /* owned */
    size_t nlsn;
    struct conn *conns;      /* live sessions, a doubly linked list through conn->next/prev */
    unsigned live;           /* sessions not yet freed */
    uint64_t next_id;        /* ids are index + k * nworkers: unique in the process */
    bool stopping;           /* no new sessions */
    uint64_t drain_deadline; /* uv_now() when the SIGTERM drain ends (main.c) */
    struct dns *dns;         /* owned by main: s2s-out lookups; NULL without s2s-out */
    struct certmem *certmem; /* borrowed, process-wide: remote certificate memory */
    const struct dialback *dialback; /* borrowed, process-wide: the XEP-0185 secret */
    struct metrics *metrics;         /* this loop's shard of the process's metrics (metrics.h) */
    struct worker_ticket tickets[WORKER_TICKETS];
    unsigned ticket_next; /* the slot the next new remote takes (round robin) */
    uv_timer_t sweep;     /* conn_sweep_start(): trims idle sessions */
    uint8_t rbuf[WORKER_RBUF_SIZE];
    uint8_t pbuf[WORKER_PBUF_SIZE];
    struct conn *cork_owner; /* relay_cork(): whose peer output cork holds, or NULL */
    size_t cork_len;
    uint8_t cork[WORKER_CORK_SIZE];
};

#endif

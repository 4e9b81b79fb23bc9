/* notify.h: the sd_notify protocol (systemd's Type=notify), without libsystemd: one datagram
 * to the AF_UNIX socket named by $NOTIFY_SOCKET ("/path" or "@abstract"). A leaf: no loop. */
#ifndef XTP_NOTIFY_H
#define XTP_NOTIFY_H

/* Sends state ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...", "STOPPING=1", "STATUS=...").
 * Without $NOTIFY_SOCKET it does nothing and returns 0; else 0 or a negative errno. */
int notify_send(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC= that systemd 253+ asks for (Type=notify-reload). */
int notify_reloading(void);

#endif

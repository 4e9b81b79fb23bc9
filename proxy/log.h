/* log.h: one event per line on stderr, text or JSON. Leaf modules do not log: they return
 * codes and their callers log once. Never pass stanza contents to these functions. */
#ifndef XTP_LOG_H
#define XTP_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* Process-wide settings; call before threads start (or under the reload lock). */
void log_setup(enum log_level level, enum log_format format);
int log_enabled(enum log_level level);

/* "error" | "warn" | "info" | "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif

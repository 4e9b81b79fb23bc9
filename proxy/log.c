/* log.c: timestamped lines on stderr. One write(2) per event so that lines from several threads
 * never interleave. JSON mode escapes the message; callers put key=value pairs in it. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set by the main thread (start, SIGHUP), read by every worker: relaxed atomics. */
static enum log_level cur_level = LOG_INFO;
static enum log_format cur_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_format format)
{
    __atomic_store_n(&cur_level, level, __ATOMIC_RELAXED);
    __atomic_store_n(&cur_format, format, __ATOMIC_RELAXED);
}

int log_enabled(enum log_level level)
{
    return level <= __atomic_load_n(&cur_level, __ATOMIC_RELAXED);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

/* Appends src to dst[*n..cap) as a JSON string body; truncates silently. */
static void json_escape(char *dst, size_t *n, size_t cap, const char *src)
{
    for (; *src && *n + 7 < cap; src++) {
        unsigned char ch = (unsigned char)*src;

        if (ch == '"' || ch == '\\') {
            dst[(*n)++] = '\\';
            dst[(*n)++] = (char)ch;
        } else if (ch < 0x20) {
            *n += (size_t)snprintf(dst + *n, cap - *n, "\\u%04x", ch);
        } else {
            dst[(*n)++] = (char)ch;
        }
    }
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    char msg[2048], line[4096], ts[40];
    struct timeval tv;
    struct tm tm;
    size_t n;

    if (!log_enabled(level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    if (__atomic_load_n(&cur_format, __ATOMIC_RELAXED) == LOG_FORMAT_JSON) {
        n = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                             level_names[level]);
        json_escape(line, &n, sizeof(line) - 4, msg);
        memcpy(line + n, "\"}\n", 3);
        n += 3;
    } else {
        int r = snprintf(line, sizeof(line), "%s %-5s %s\n", ts, level_names[level], msg);

        n = r < 0 ? 0 : (size_t)r >= sizeof(line) ? sizeof(line) - 1 : (size_t)r;
        if (n == sizeof(line) - 1)
            line[n - 1] = '\n';
    }
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report it. */
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

/*
 * An LD_PRELOAD allocator hook for the benchmarks: counts every malloc, calloc, realloc and
 * aligned allocation the process makes (any thread), then hands the call to glibc.
 *
 * The counts live in a file named by BENCH_ALLOC_COUNT_FILE, mapped shared: one 64-byte slot
 * per thread (each thread bumps its own slot, so counting adds no contention between threads),
 * the bench reads the file and sums the slots. Without the variable nothing is counted.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 1024
#define SLOT_WORDS 8 /* 64 bytes: one cache line per thread */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static volatile uint64_t *slots;
static volatile uint64_t next_slot;
/* initial-exec: a preloaded library's thread-locals sit in the static TLS block, so reaching
 * them never calls malloc (the general model may, on a thread's first access) */
#define THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))
static THREAD_LOCAL volatile uint64_t *mine;
static THREAD_LOCAL int resolving;

__attribute__((constructor)) static void open_counts(void)
{
    const char *file = getenv("BENCH_ALLOC_COUNT_FILE");
    if (!file) return;
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    size_t size = SLOTS * SLOT_WORDS * sizeof(uint64_t);
    if (ftruncate(fd, (off_t)size) == 0) {
        void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) slots = map;
    }
    close(fd);
}

static inline void count(void)
{
    if (!slots) return;
    if (!mine) {
        if (resolving) return;
        resolving = 1;
        uint64_t slot = __atomic_fetch_add(&next_slot, 1, __ATOMIC_RELAXED);
        /* threads past the last slot share it: counted, with a rare lost update */
        mine = &slots[(slot < SLOTS ? slot : SLOTS - 1) * SLOT_WORDS];
        resolving = 0;
    }
    *mine = *mine + 1;
}

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t k, size_t n) { count(); return __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t align, size_t n) { count(); return __libc_memalign(align, n); }
void *aligned_alloc(size_t align, size_t n) { count(); return __libc_memalign(align, n); }
void *valloc(size_t n) { count(); return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n); }
int posix_memalign(void **out, size_t align, size_t n)
{
    count();
    void *p = __libc_memalign(align, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

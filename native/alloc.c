/*
 * The engine's allocator in release builds. A plugin run lives a few milliseconds and makes tens of thousands of
 * small allocations; with musl's malloc, malloc itself and malloc_usable_size (which the engine calls on every
 * allocation and free, for its memory limit) were a third of the instructions of an ADD. Here: sizes up to
 * 4 KiB round up to one of a few size classes, each with a free list, carved from 256 KiB chunks; larger blocks
 * come from libc. Every block has a 16-byte header holding its class (or its size, for a large block), so the
 * usable size is one load. Memory of small blocks is reused within their class and returned to the system only
 * at exit: right for a short-lived process, and the engine's memory limit still bounds the total.
 *
 * Sanitizer builds do not use this file: AddressSanitizer sees every allocation only through libc's malloc.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quickjs.h"

#ifndef LOCAL_IPAM_SANITIZE

#define HEADER 16                       /* keeps blocks 16-byte aligned, as malloc's are */
#define CHUNK ((size_t)256 << 10)
#define LARGE ((uint64_t)1 << 63)       /* header flag: a libc block; the rest of the word is its size */

static const uint32_t class_size[] = {
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
    640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
};
#define NCLASS (sizeof class_size / sizeof class_size[0])
#define SMALL_MAX 4096

/* class_of[(n + 15) / 16] for n <= 4096: the smallest class that holds n bytes */
static uint8_t class_of[SMALL_MAX / 16 + 1];
static void *free_list[NCLASS];
static uint8_t *chunk_pos, *chunk_end;

static void init_classes(void)
{
    unsigned c = 0;
    for (unsigned i = 0; i <= SMALL_MAX / 16; i++) {
        while (class_size[c] < i * 16)
            c++;
        class_of[i] = (uint8_t)c;
    }
}

static uint64_t *header_of(const void *p)
{
    return (uint64_t *)((uint8_t *)p - HEADER);
}

static size_t usable(const void *p)
{
    uint64_t h = *header_of(p);
    return h & LARGE ? (size_t)(h & ~LARGE) : class_size[h];
}

static void *alloc_block(size_t size)
{
    if (size > SMALL_MAX) {
        if (size > SIZE_MAX - HEADER)
            return NULL;
        uint64_t *h = malloc(size + HEADER);
        if (!h)
            return NULL;
        *h = LARGE | size;
        return (uint8_t *)h + HEADER;
    }
    unsigned c = class_of[(size + 15) / 16];
    void *p = free_list[c];
    if (p) {
        memcpy(&free_list[c], p, sizeof p); /* the next free block is stored in the block itself */
        return p;
    }
    size_t need = HEADER + class_size[c];
    if ((size_t)(chunk_end - chunk_pos) < need) {
        uint8_t *chunk = malloc(CHUNK); /* the rest of the old chunk is left unused: at most 4 KiB per chunk */
        if (!chunk)
            return NULL;
        chunk_pos = chunk;
        chunk_end = chunk + CHUNK;
    }
    uint64_t *h = (uint64_t *)chunk_pos;
    chunk_pos += need;
    *h = c;
    return (uint8_t *)h + HEADER;
}

static void free_block(void *p)
{
    uint64_t h = *header_of(p);
    if (h & LARGE) {
        free(header_of(p));
        return;
    }
    memcpy(p, &free_list[h], sizeof p);
    free_list[h] = p;
}

/* The engine's accounting, as its default allocator does it: the limit checked before, usable sizes counted. */
static void *a_malloc(JSMallocState *s, size_t size)
{
    if (size == 0 || s->malloc_size + size > s->malloc_limit)
        return NULL;
    void *p = alloc_block(size);
    if (!p)
        return NULL;
    s->malloc_count++;
    s->malloc_size += usable(p) + HEADER;
    return p;
}

static void a_free(JSMallocState *s, void *p)
{
    if (!p)
        return;
    s->malloc_count--;
    s->malloc_size -= usable(p) + HEADER;
    free_block(p);
}

static void *a_realloc(JSMallocState *s, void *p, size_t size)
{
    if (!p)
        return size == 0 ? NULL : a_malloc(s, size);
    if (size == 0) {
        a_free(s, p);
        return NULL;
    }
    size_t old = usable(p);
    if (size <= old)
        return p; /* still fits (a block is never shrunk: it is freed soon enough) */
    void *q = a_malloc(s, size);
    if (!q)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    a_free(s, p);
    return q;
}

static size_t a_usable_size(const void *p)
{
    return p ? usable(p) : 0;
}

JSRuntime *new_runtime(void)
{
    static const JSMallocFunctions functions = {a_malloc, a_free, a_realloc, a_usable_size};
    init_classes();
    return JS_NewRuntime2(&functions, NULL);
}

#else

JSRuntime *new_runtime(void)
{
    return JS_NewRuntime();
}

#endif

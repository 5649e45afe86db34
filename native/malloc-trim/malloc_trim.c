/*
 * mallocTrim(callback): runs glibc's malloc_trim(0) on a libuv thread-pool thread and then calls
 * callback(released), released being whether any memory went back to the system.
 *
 * Why: V8 compiles optimized code on background threads in zone memory taken from malloc in 32 KiB
 * segments. Freed, those segments stay in the malloc arenas as holes between live chunks, which
 * glibc only gives back from the top of a heap, so a proxy under load carries 10-20 MB of freed but
 * resident malloc memory. malloc_trim(0) returns the free pages from the middle of every arena too.
 * It walks the arenas for a fraction of a millisecond to a few milliseconds, so it runs off the event
 * loop. Built by scripts/build-native.ts; loaded by src/proxy/memory-trim.ts.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <malloc.h>
#include <stdlib.h>

#ifndef __GLIBC__
#error "malloc_trim is glibc's; on another C library the proxy runs without it"
#endif

typedef struct {
  napi_async_work work;
  napi_ref callback;
  int released;
} trim_job;

static void free_job(napi_env env, trim_job *job) {
  if (job->callback != NULL) napi_delete_reference(env, job->callback);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  free(job);
}

static void execute(napi_env env, void *data) {
  (void)env;
  trim_job *job = data;
  job->released = malloc_trim(0);
}

static void complete(napi_env env, napi_status status, void *data) {
  trim_job *job = data;
  napi_value callback, receiver, released;
  /* A cancelled job (the environment is shutting down) has nobody left to tell. */
  if (status == napi_ok && napi_get_reference_value(env, job->callback, &callback) == napi_ok &&
      napi_get_undefined(env, &receiver) == napi_ok &&
      napi_get_boolean(env, job->released != 0, &released) == napi_ok) {
    napi_call_function(env, receiver, callback, 1, &released, NULL);
  }
  free_job(env, job);
}

static napi_value malloc_trim_async(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc >= 1 && napi_typeof(env, argv[0], &type) != napi_ok) return NULL;
  if (type != napi_function) {
    napi_throw_type_error(env, NULL, "mallocTrim: the argument must be a callback function");
    return NULL;
  }
  trim_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "mallocTrim: out of memory");
    return NULL;
  }
  napi_value name;
  if (napi_create_reference(env, argv[0], 1, &job->callback) != napi_ok ||
      napi_create_string_utf8(env, "weft.mallocTrim", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    free_job(env, job);
    return NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "mallocTrim", NAPI_AUTO_LENGTH, malloc_trim_async, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mallocTrim", fn) != napi_ok) return NULL;
  return exports;
}

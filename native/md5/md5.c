/*
 * dropzone_md5: incremental MD5 for upload ETags, hashed on one thread of its own so the event loop never waits for
 * it — what a worker thread did, without a second V8 isolate (~20 MiB of resident memory).
 *
 * The digest itself is OpenSSL's, which Node links in and exports to addons (EVP_* in Node's dynamic symbol table;
 * the headers ship in Node's include/node/openssl). Only Node-API is used, so one build loads in every Node >= 18.
 *
 *   start(onHashed)                        once per process: starts the hashing thread; onHashed(token, ok) is called
 *                                          on the event loop for every chunk pushed, in the order pushed
 *   create()                               -> state (an external)
 *   push(state, view, length, token)       queues the first `length` bytes of `view` (a Uint8Array) for hashing into
 *                                          `state`. The caller keeps `view` and `state` alive and unchanged until
 *                                          onHashed(token) — one FIFO for every state, so each state's chunks are
 *                                          hashed in order, back to back, without waiting for the event loop
 *   digest(state)                          -> 32 hex characters, once every pushed chunk was reported; the state
 *                                          cannot be used afterwards
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct {
  EVP_MD_CTX *ctx;
  int finished; /* digest() was called */
} md5_state;

typedef struct md5_item {
  md5_state *state;
  const unsigned char *data;
  size_t length;
  double token;
  int ok;
  struct md5_item *next;
} md5_item;

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_ready = PTHREAD_COND_INITIALIZER;
static md5_item *queue_head = NULL, *queue_tail = NULL;
static napi_threadsafe_function hashed_tsfn = NULL;
static int started = 0;

static void state_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  md5_state *s = (md5_state *)data;
  if (s->ctx) EVP_MD_CTX_free(s->ctx);
  free(s);
}

static md5_state *state_of(napi_env env, napi_value value) {
  napi_valuetype type;
  void *data = NULL;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external || napi_get_value_external(env, value, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "expected an MD5 state from create()");
    return NULL;
  }
  return (md5_state *)data;
}

/*
 * Reads the `n` arguments of a call whose first is a state that is still open; throws (naming `usage`) and answers
 * NULL when there are fewer, or the state is not one or is finished.
 */
static md5_state *open_state_call(napi_env env, napi_callback_info info, napi_value *argv, size_t n, const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < n) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  md5_state *s = state_of(env, argv[0]);
  if (s && s->finished) {
    napi_throw_error(env, NULL, "the MD5 digest is already finished");
    return NULL;
  }
  return s;
}

/* The hashing thread: takes chunks in the order pushed, hashes each, reports it to the event loop. */
static void *hash_thread(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&queue_lock);
    while (!queue_head) pthread_cond_wait(&queue_ready, &queue_lock);
    md5_item *item = queue_head;
    queue_head = item->next;
    if (!queue_head) queue_tail = NULL;
    pthread_mutex_unlock(&queue_lock);
    item->ok = EVP_DigestUpdate(item->state->ctx, item->data, item->length) == 1;
    /* blocking call on an unbounded queue: never fails for want of room */
    if (napi_call_threadsafe_function(hashed_tsfn, item, napi_tsfn_blocking) != napi_ok) free(item);
  }
  return NULL;
}

/* On the event loop: onHashed(token, ok). */
static void report_hashed(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  md5_item *item = (md5_item *)data;
  if (env && callback) {
    napi_value global, argv[2];
    napi_get_global(env, &global);
    napi_create_double(env, item->token, &argv[0]);
    napi_get_boolean(env, item->ok, &argv[1]);
    napi_call_function(env, global, callback, 2, argv, NULL);
  }
  free(item);
}

static napi_value md5_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype type = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "start(onHashed)");
    return NULL;
  }
  if (started) {
    napi_throw_error(env, NULL, "the MD5 thread is already started");
    return NULL;
  }
  napi_value name;
  napi_create_string_utf8(env, "dropzone:md5", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, report_hashed, &hashed_tsfn) != napi_ok) {
    napi_throw_error(env, NULL, "could not create the MD5 callback");
    return NULL;
  }
  /* the thread never keeps the process alive; requests being uploaded do */
  napi_unref_threadsafe_function(env, hashed_tsfn);
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int rc = pthread_create(&thread, &attr, hash_thread, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    napi_release_threadsafe_function(hashed_tsfn, napi_tsfn_abort);
    hashed_tsfn = NULL;
    napi_throw_error(env, NULL, "could not start the MD5 thread");
    return NULL;
  }
  started = 1;
  return NULL;
}

static napi_value md5_create(napi_env env, napi_callback_info info) {
  (void)info;
  md5_state *s = (md5_state *)calloc(1, sizeof(md5_state));
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  s->ctx = EVP_MD_CTX_new();
  if (!s->ctx || EVP_DigestInit_ex(s->ctx, EVP_md5(), NULL) != 1) {
    state_finalize(env, s, NULL);
    napi_throw_error(env, NULL, "OpenSSL could not start an MD5 digest");
    return NULL;
  }
  napi_value external;
  if (napi_create_external(env, s, state_finalize, NULL, &external) != napi_ok) {
    state_finalize(env, s, NULL);
    napi_throw_error(env, NULL, "could not create the MD5 state");
    return NULL;
  }
  return external;
}

static napi_value md5_push(napi_env env, napi_callback_info info) {
  if (!started) {
    napi_throw_error(env, NULL, "start() the MD5 thread first");
    return NULL;
  }
  napi_value argv[4];
  md5_state *s = open_state_call(env, info, argv, 4, "push(state, view, length, token)");
  if (!s) return NULL;
  bool is_typed = false;
  napi_typedarray_type type;
  size_t count = 0, offset = 0;
  void *bytes = NULL;
  napi_value arraybuffer;
  if (napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[1], &type, &count, &bytes, &arraybuffer, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "expected a Uint8Array");
    return NULL;
  }
  int64_t length = -1;
  if (napi_get_value_int64(env, argv[2], &length) != napi_ok || length < 0 || (uint64_t)length > count) {
    napi_throw_range_error(env, NULL, "length is outside the view");
    return NULL;
  }
  double token = 0;
  if (napi_get_value_double(env, argv[3], &token) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a numeric token");
    return NULL;
  }
  md5_item *item = (md5_item *)calloc(1, sizeof(md5_item));
  if (!item) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  item->state = s;
  item->data = (const unsigned char *)bytes;
  item->length = (size_t)length;
  item->token = token;
  pthread_mutex_lock(&queue_lock);
  if (queue_tail) queue_tail->next = item;
  else queue_head = item;
  queue_tail = item;
  pthread_cond_signal(&queue_ready);
  pthread_mutex_unlock(&queue_lock);
  return NULL;
}

static napi_value md5_digest(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  md5_state *s = open_state_call(env, info, argv, 1, "digest(state)");
  if (!s) return NULL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  s->finished = 1;
  if (EVP_DigestFinal_ex(s->ctx, md, &len) != 1 || len != 16) {
    napi_throw_error(env, NULL, "OpenSSL failed to finish the MD5 digest");
    return NULL;
  }
  static const char hex[] = "0123456789abcdef";
  char out[33];
  for (unsigned int i = 0; i < 16; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[32] = 0;
  napi_value result;
  if (napi_create_string_latin1(env, out, 32, &result) != napi_ok) return NULL;
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"start", NULL, md5_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"create", NULL, md5_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"push", NULL, md5_push, NULL, NULL, NULL, napi_enumerable, NULL},
      {"digest", NULL, md5_digest, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

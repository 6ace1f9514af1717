/*
 * dropzone_md5: incremental MD5 whose updates run on libuv's thread pool, so an upload's ETag is computed off the
 * event loop without a worker thread (a worker is a second V8 isolate: ~20 MiB of resident memory).
 *
 * The digest itself is OpenSSL's, which Node links in and exports to addons (EVP_* in Node's dynamic symbol table;
 * the headers ship in Node's include/node/openssl). Only Node-API is used, so one build loads in every Node >= 18.
 *
 *   create()                               -> state (an external)
 *   update(state, views, lengths, callback) hashes the first lengths[i] bytes of each views[i] (Uint8Arrays), in
 *                                          order, in one task on the pool, then calls callback(err) on the event
 *                                          loop; one update at a time per state (the caller queues what arrives
 *                                          meanwhile and hands it over as the next batch, so the pool thread never
 *                                          waits for the event loop between buffers); `views` is kept alive until then
 *   digest(state)                          -> 32 hex characters; the state cannot be updated afterwards
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  EVP_MD_CTX *ctx;
  int busy;     /* an update is queued or running on the pool */
  int finished; /* digest() was called */
} md5_state;

typedef struct {
  const unsigned char *data;
  size_t length;
} md5_chunk;

typedef struct {
  napi_async_work work;
  napi_ref state_ref; /* keeps the state's external alive while the pool reads it */
  napi_ref views_ref; /* the array of views: keeps the bytes alive */
  napi_ref callback_ref;
  md5_state *state;
  md5_chunk *chunks;
  uint32_t count;
  int ok;
} md5_update;

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      const napi_extended_error_info *info = NULL;                         \
      napi_get_last_error_info((env), &info);                              \
      napi_throw_error((env), NULL, info && info->error_message ? info->error_message : #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

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

/* On a pool thread: touches only the state's context and the bytes, both kept alive by references. */
static void update_execute(napi_env env, void *data) {
  (void)env;
  md5_update *u = (md5_update *)data;
  u->ok = 1;
  for (uint32_t i = 0; i < u->count && u->ok; i++) u->ok = EVP_DigestUpdate(u->state->ctx, u->chunks[i].data, u->chunks[i].length) == 1;
}

/* Back on the event loop. */
static void update_complete(napi_env env, napi_status status, void *data) {
  md5_update *u = (md5_update *)data;
  u->state->busy = 0;
  napi_value callback = NULL, global = NULL, arg = NULL;
  napi_get_reference_value(env, u->callback_ref, &callback);
  napi_get_global(env, &global);
  if (status != napi_ok || !u->ok) {
    napi_value msg;
    napi_create_string_utf8(env, status == napi_cancelled ? "the MD5 update was cancelled" : "OpenSSL failed to update the MD5 digest", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &arg);
  } else {
    napi_get_null(env, &arg);
  }
  napi_delete_reference(env, u->callback_ref);
  napi_delete_reference(env, u->views_ref);
  napi_delete_reference(env, u->state_ref);
  napi_delete_async_work(env, u->work);
  free(u->chunks);
  free(u);
  if (callback) napi_call_function(env, global, callback, 1, &arg, NULL);
}

static void update_free(napi_env env, md5_update *u) {
  if (u->state_ref) napi_delete_reference(env, u->state_ref);
  if (u->views_ref) napi_delete_reference(env, u->views_ref);
  if (u->callback_ref) napi_delete_reference(env, u->callback_ref);
  free(u->chunks);
  free(u);
}

/* Reads views[i] and lengths[i] into u->chunks; throws and answers 0 on bad input. */
static int read_chunks(napi_env env, napi_value views, napi_value lengths, md5_update *u) {
  bool is_array = false;
  uint32_t n = 0, m = 0;
  if (napi_is_array(env, views, &is_array) != napi_ok || !is_array || napi_get_array_length(env, views, &n) != napi_ok ||
      napi_is_array(env, lengths, &is_array) != napi_ok || !is_array || napi_get_array_length(env, lengths, &m) != napi_ok || n != m) {
    napi_throw_type_error(env, NULL, "expected an array of Uint8Arrays and an array of as many lengths");
    return 0;
  }
  u->chunks = (md5_chunk *)calloc(n ? n : 1, sizeof(md5_chunk));
  if (!u->chunks) {
    napi_throw_error(env, NULL, "out of memory");
    return 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value view, len;
    bool is_typed = false;
    napi_typedarray_type type;
    size_t count = 0, offset = 0;
    void *bytes = NULL;
    napi_value arraybuffer;
    int64_t length = -1;
    if (napi_get_element(env, views, i, &view) != napi_ok || napi_is_typedarray(env, view, &is_typed) != napi_ok || !is_typed ||
        napi_get_typedarray_info(env, view, &type, &count, &bytes, &arraybuffer, &offset) != napi_ok || type != napi_uint8_array) {
      napi_throw_type_error(env, NULL, "expected a Uint8Array");
      return 0;
    }
    if (napi_get_element(env, lengths, i, &len) != napi_ok || napi_get_value_int64(env, len, &length) != napi_ok || length < 0 || (uint64_t)length > count) {
      napi_throw_range_error(env, NULL, "length is outside the view");
      return 0;
    }
    u->chunks[i].data = (const unsigned char *)bytes;
    u->chunks[i].length = (size_t)length;
  }
  u->count = n;
  return 1;
}

static napi_value md5_update_async(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "update(state, views, lengths, callback)");
    return NULL;
  }
  md5_state *s = state_of(env, argv[0]);
  if (!s) return NULL;
  if (s->busy || s->finished) {
    napi_throw_error(env, NULL, s->finished ? "the MD5 digest is already finished" : "an MD5 update is already running for this state");
    return NULL;
  }
  napi_valuetype cb_type;
  CHECK(env, napi_typeof(env, argv[3], &cb_type));
  if (cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "expected a callback");
    return NULL;
  }
  md5_update *u = (md5_update *)calloc(1, sizeof(md5_update));
  if (!u) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  u->state = s;
  if (!read_chunks(env, argv[1], argv[2], u)) {
    update_free(env, u);
    return NULL;
  }
  napi_value name;
  if (napi_create_reference(env, argv[0], 1, &u->state_ref) != napi_ok || napi_create_reference(env, argv[1], 1, &u->views_ref) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &u->callback_ref) != napi_ok || napi_create_string_utf8(env, "dropzone:md5", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, update_execute, update_complete, u, &u->work) != napi_ok) {
    update_free(env, u);
    napi_throw_error(env, NULL, "could not queue the MD5 update");
    return NULL;
  }
  if (napi_queue_async_work(env, u->work) != napi_ok) {
    napi_delete_async_work(env, u->work);
    update_free(env, u);
    napi_throw_error(env, NULL, "could not queue the MD5 update");
    return NULL;
  }
  s->busy = 1;
  return NULL;
}

static napi_value md5_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "digest(state)");
    return NULL;
  }
  md5_state *s = state_of(env, argv[0]);
  if (!s) return NULL;
  if (s->busy || s->finished) {
    napi_throw_error(env, NULL, s->finished ? "the MD5 digest is already finished" : "an MD5 update is still running for this state");
    return NULL;
  }
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
  CHECK(env, napi_create_string_latin1(env, out, 32, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"create", NULL, md5_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"update", NULL, md5_update_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"digest", NULL, md5_digest, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

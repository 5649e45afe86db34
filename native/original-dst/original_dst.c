/*
 * originalDestination(fd): the address a TCP connection was sent to before an iptables REDIRECT
 * (or DNAT) rewrote it, read from conntrack with getsockopt(SO_ORIGINAL_DST). Node has no
 * getsockopt, hence this addon. Built by scripts/build-native.ts; loaded by
 * src/proxy/network/original-dst.ts.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* The netfilter headers that define these clash with <netinet/in.h>; the values are kernel ABI. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* Any failing napi call leaves a pending exception or a broken env; either way JS gets control back. */
#define NAPI_OK(call)                                                                              \
  do {                                                                                             \
    if ((call) != napi_ok) return NULL;                                                            \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value make_result(napi_env env, const char *address, unsigned port, int family) {
  napi_value result, value;
  NAPI_OK(napi_create_object(env, &result));
  NAPI_OK(napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &value));
  NAPI_OK(napi_set_named_property(env, result, "address", value));
  NAPI_OK(napi_create_uint32(env, port, &value));
  NAPI_OK(napi_set_named_property(env, result, "port", value));
  NAPI_OK(napi_create_int32(env, family, &value));
  NAPI_OK(napi_set_named_property(env, result, "family", value));
  return result;
}

static napi_value original_destination(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));

  napi_valuetype type = napi_undefined;
  if (argc >= 1) NAPI_OK(napi_typeof(env, argv[0], &type));
  double number = -1;
  if (type == napi_number) NAPI_OK(napi_get_value_double(env, argv[0], &number));
  /* Rejecting fractions and huge values here keeps a stray value from naming some other fd. */
  if (type != napi_number || !(number >= 0) || number > 2147483647.0 || number != (double)(int)number) {
    napi_throw_type_error(env, NULL, "originalDestination: fd must be a non-negative integer");
    return NULL;
  }
  int fd = (int)number;

  struct sockaddr_in v4;
  socklen_t len = sizeof v4;
  memset(&v4, 0, sizeof v4);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &v4, &len) == 0) {
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text) == NULL) return throw_errno(env, "inet_ntop", errno);
    return make_result(env, text, ntohs(v4.sin_port), 4);
  }
  int v4_error = errno;

  /*
   * An AF_INET6 socket carrying a v4-mapped connection answers the IPv4 query above; only a native
   * IPv6 connection needs the IPv6 table, so ask it only when the IPv4 one had nothing.
   */
  if (v4_error == ENOENT || v4_error == ENOPROTOOPT) {
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) return throw_errno(env, "getsockname", errno);
    if (local.ss_family == AF_INET6) {
      struct sockaddr_in6 v6;
      len = sizeof v6;
      memset(&v6, 0, sizeof v6);
      if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &v6, &len) == 0) {
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text) == NULL) return throw_errno(env, "inet_ntop", errno);
        return make_result(env, text, ntohs(v6.sin6_port), 6);
      }
      int v6_error = errno;
      /* One family's table lacking the entry (the other's module being absent) still means "not redirected". */
      if (v6_error == ENOENT || v4_error == ENOENT) {
        napi_value null_value;
        NAPI_OK(napi_get_null(env, &null_value));
        return null_value;
      }
      return throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", v6_error);
    }
  }

  if (v4_error == ENOENT) {
    napi_value null_value;
    NAPI_OK(napi_get_null(env, &null_value));
    return null_value;
  }
  return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", v4_error);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  NAPI_OK(napi_create_function(env, "originalDestination", NAPI_AUTO_LENGTH, original_destination, NULL, &fn));
  NAPI_OK(napi_set_named_property(env, exports, "originalDestination", fn));
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}

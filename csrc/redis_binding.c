/* leadq.core's Redis client for plain Lua hosts (the CLI's `leadq state`, tests, scripts): a thin
** binding of hiredis (Debian's libhiredis-dev), blocking, one connection per object. nginx uses its
** own cosocket client (lua-nginx-redis) instead: a blocking socket would stall a whole worker.
**
**   local conn, err = core.redis_connect(host, port, timeout_seconds)
**   local conn, err = core.redis_connect_unix(path, timeout_seconds)   -- a Redis on this host
**   conn:call("HSET", key, field, value)      -> reply, or nil and the error (Redis's or the socket's)
**   conn:pipeline{ {"HGET", k, f}, {...} }     -> replies, errors (a table of Redis error replies by
**                                               index, or nil): one round trip for them all
**   conn:send(commands); conn:receive(n)       the same in two halves: work between them overlaps Redis's
**   conn:receive_lines(keys, prefix_length)     HMGET replies received as `leadq state` export lines
**   conn:close()                               (also __gc and __close)
**
** Replies: status and bulk strings as strings, integers as numbers, a nil reply as false, arrays as
** tables. A socket error closes the connection: later calls answer nil, "redis: connection closed".
**
** Also core.hex_encode(s) and core.hex_decode(s) (nil for odd lengths or non-hex): the engagement
** states in `leadq state` exports, a million of them in seconds (a gsub in Lua takes ~50 us each); and
** core.state_line(text), such a line read back without decoding its profile (state_line.c). */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "compat.h"
#include "bindings.h"
#include "state_line.h"

#define REDIS_CONN "leadq.RedisConnection"

/* Tunable: arguments in one command, commands in one pipeline call. */
#if !defined(LQ_REDIS_MAX_ARGS)
#define LQ_REDIS_MAX_ARGS 512   /* an import writes 100 leads a command: 303 */
#endif
#if !defined(LQ_REDIS_MAX_PIPELINE)
#define LQ_REDIS_MAX_PIPELINE 100000
#endif

typedef struct {
  redisContext *context;   /* NULL once closed */
} redis_conn;

static redis_conn *check_conn(lua_State *L, int arg) {
  return (redis_conn *)luaL_checkudata(L, arg, REDIS_CONN);
}

static void close_conn(redis_conn *conn) {
  if (conn->context != NULL) {
    redisFree(conn->context);
    conn->context = NULL;
  }
}

/* nil, "redis: <what>" for a socket error; the connection is closed (hiredis cannot go on). */
static int push_socket_error(lua_State *L, redis_conn *conn) {
  lua_pushnil(L);
  lua_pushfstring(L, "redis: %s", conn->context && conn->context->errstr[0] ? conn->context->errstr
    : "connection closed");
  close_conn(conn);
  return 2;
}

static void push_reply(lua_State *L, const redisReply *reply, int depth) {
  size_t i;
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      lua_pushlstring(L, reply->str, reply->len);
      break;
    case REDIS_REPLY_INTEGER:
      lua_pushinteger(L, (lua_Integer)reply->integer);
      break;
    case REDIS_REPLY_ARRAY:
      luaL_checkstack(L, 3, "redis reply too deep");
      lua_createtable(L, (int)reply->elements, 0);
      for (i = 0; i < reply->elements; i++) {
        if (depth > 8) lua_pushboolean(L, 0);
        else push_reply(L, reply->element[i], depth + 1);
        lua_rawseti(L, -2, (int)i + 1);
      }
      break;
    default:   /* REDIS_REPLY_NIL */
      lua_pushboolean(L, 0);
      break;
  }
}

/* The command in the table at index t (or the arguments from first on when t is 0) as argv. */
static int collect_args(lua_State *L, int t, int first, const char **argv, size_t *lens) {
  int n = 0, i, top = lua_gettop(L);
  if (t == 0) {
    for (i = first; i <= top; i++) {
      if (n >= LQ_REDIS_MAX_ARGS) luaL_error(L, "redis: more than %d arguments in one command", LQ_REDIS_MAX_ARGS);
      argv[n] = luaL_checklstring(L, i, &lens[n]);
      n++;
    }
  } else {
    int len = (int)lua_rawlen(L, t);
    if (len > LQ_REDIS_MAX_ARGS) luaL_error(L, "redis: more than %d arguments in one command", LQ_REDIS_MAX_ARGS);
    for (i = 1; i <= len; i++) {
      lua_rawgeti(L, t, i);
      if (!lua_isstring(L, -1)) luaL_error(L, "redis: argument %d of a command is not a string or number", i);
      argv[n] = lua_tolstring(L, -1, &lens[n]);   /* the string stays referenced by the table */
      lua_pop(L, 1);
      n++;
    }
  }
  if (n == 0) luaL_error(L, "redis: an empty command");
  return n;
}

/* The connection of core.redis_connect (path NULL: TCP to host:port) or core.redis_connect_unix
** (path: a Unix socket), timeout at the stack index given; or nil and why. */
static int connect_to(lua_State *L, const char *host, int port, const char *path, int timeout_arg) {
  lua_Number timeout = luaL_optnumber(L, timeout_arg, 1.0);
  struct timeval tv;
  redis_conn *conn;
  if (timeout <= 0 || timeout > 3600) luaL_argerror(L, timeout_arg, "a timeout in seconds, above 0 and at most 3600");
  conn = (redis_conn *)lua_newuserdata(L, sizeof(redis_conn));
  conn->context = NULL;   /* safe to collect before it connects */
  luaL_setmetatable(L, REDIS_CONN);
  tv.tv_sec = (long)timeout;
  tv.tv_usec = (long)((timeout - (lua_Number)tv.tv_sec) * 1e6);
  conn->context = path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
  if (conn->context == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "redis: out of memory");
    return 2;
  }
  if (conn->context->err) {
    lua_pushnil(L);
    if (path) lua_pushfstring(L, "redis: cannot connect to %s: %s", path, conn->context->errstr);
    else lua_pushfstring(L, "redis: cannot connect to %s:%d: %s", host, port, conn->context->errstr);
    close_conn(conn);
    return 2;
  }
  if (redisSetTimeout(conn->context, tv) != REDIS_OK) return push_socket_error(L, conn);
  return 1;
}

/* core.redis_connect(host, port, timeout) -> connection, or nil and why */
static int l_redis_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  return connect_to(L, host, port, NULL, 3);
}

/* core.redis_connect_unix(path, timeout) -> connection, or nil and why: a Redis on this host, over
** its Unix socket (no TCP stack on either side of each round trip). */
static int l_redis_connect_unix(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return connect_to(L, NULL, 0, path, 2);
}

/* conn:call(command, args...) -> reply, or nil and the error */
static int l_call(lua_State *L) {
  redis_conn *conn = check_conn(L, 1);
  const char *argv[LQ_REDIS_MAX_ARGS];
  size_t lens[LQ_REDIS_MAX_ARGS];
  redisReply *reply;
  int argc = collect_args(L, 0, 2, argv, lens);
  if (conn->context == NULL) return push_socket_error(L, conn);
  reply = (redisReply *)redisCommandArgv(conn->context, argc, argv, lens);
  if (reply == NULL) return push_socket_error(L, conn);
  if (reply->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, reply->str, reply->len);
    freeReplyObject(reply);
    return 2;
  }
  push_reply(L, reply, 0);
  freeReplyObject(reply);
  return 1;
}

/* Appends the commands of the table at index 2, every entry checked first (a raise must not leave
** half a pipeline sent), and writes them out. 0, or pushes nil and the socket's error and returns 2. */
static int send_commands(lua_State *L, redis_conn *conn, int count) {
  const char *argv[LQ_REDIS_MAX_ARGS];
  size_t lens[LQ_REDIS_MAX_ARGS];
  int i, done = 0;
  for (i = 1; i <= count; i++) {
    int j, len;
    lua_rawgeti(L, 2, i);
    if (!lua_istable(L, -1)) return luaL_error(L, "redis: pipeline entry %d is not a table", i);
    len = (int)lua_rawlen(L, -1);
    if (len < 1 || len > LQ_REDIS_MAX_ARGS) return luaL_error(L, "redis: pipeline entry %d has %d arguments", i, len);
    for (j = 1; j <= len; j++) {
      lua_rawgeti(L, -1, j);
      if (!lua_isstring(L, -1)) return luaL_error(L, "redis: argument %d of pipeline entry %d is not a string", j, i);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (conn->context == NULL) return push_socket_error(L, conn);
  for (i = 1; i <= count; i++) {
    int argc;
    lua_rawgeti(L, 2, i);
    argc = collect_args(L, lua_gettop(L), 0, argv, lens);
    if (redisAppendCommandArgv(conn->context, argc, argv, lens) != REDIS_OK) return push_socket_error(L, conn);
    lua_pop(L, 1);
  }
  while (!done) {
    if (redisBufferWrite(conn->context, &done) != REDIS_OK) return push_socket_error(L, conn);
  }
  return 0;
}

/* Reads count replies: pushes replies (or true when values are not wanted), errors-or-nil and returns
** 2 (or nil and the socket's error). */
static int receive_replies(lua_State *L, redis_conn *conn, int count, int values) {
  int i, has_errors = 0;
  if (conn->context == NULL) return push_socket_error(L, conn);
  if (values) lua_createtable(L, count, 0);   /* replies */
  else lua_pushboolean(L, 1);
  lua_newtable(L);                /* errors */
  for (i = 1; i <= count; i++) {
    redisReply *reply = NULL;
    if (redisGetReply(conn->context, (void **)&reply) != REDIS_OK || reply == NULL) {
      return push_socket_error(L, conn);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      lua_pushlstring(L, reply->str, reply->len);
      lua_rawseti(L, -2, i);
      has_errors = 1;
      if (values) lua_pushboolean(L, 0);
    } else if (values) {
      push_reply(L, reply, 0);
    }
    freeReplyObject(reply);
    if (values) lua_rawseti(L, -3, i);
  }
  if (!has_errors) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 2;
}

static int check_count(lua_State *L) {
  int count;
  luaL_checktype(L, 2, LUA_TTABLE);
  count = (int)lua_rawlen(L, 2);
  if (count > LQ_REDIS_MAX_PIPELINE) {
    return luaL_error(L, "redis: more than %d commands in one pipeline", LQ_REDIS_MAX_PIPELINE);
  }
  return count;
}

/* conn:pipeline(commands) -> replies, errors-or-nil; or nil and the socket's error */
static int l_pipeline(lua_State *L) {
  redis_conn *conn = check_conn(L, 1);
  int count = check_count(L);
  if (send_commands(L, conn, count) != 0) return 2;
  return receive_replies(L, conn, count, 1);
}

/* conn:send(commands) -> true (the commands written, their replies left to receive), or nil and why.
** With receive, a caller overlaps its own work with Redis's: send a batch, then receive the one before. */
static int l_send(lua_State *L) {
  redis_conn *conn = check_conn(L, 1);
  int count = check_count(L);
  if (send_commands(L, conn, count) != 0) return 2;
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:receive(n [, discard]) -> the next n replies (discard: true instead), errors-or-nil; or nil and
** the socket's error */
static int l_receive(lua_State *L) {
  redis_conn *conn = check_conn(L, 1);
  lua_Integer count = luaL_checkinteger(L, 2);
  if (count < 0 || count > LQ_REDIS_MAX_PIPELINE) luaL_argerror(L, 2, "a count of replies, 0 to the pipeline's limit");
  return receive_replies(L, conn, (int)count, !lua_toboolean(L, 3));
}

static int plain_id_char(unsigned char b) {
  return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '-' || b == '_' ||
    b == '.' || b == ':' || b == '@' || b == '+';
}

static void add_hex(luaL_Buffer *b, const char *s, size_t len) {
  static const char digits[] = "0123456789abcdef";
  char chunk[512];
  size_t i, n = 0;
  for (i = 0; i < len; i++) {
    chunk[n++] = digits[(unsigned char)s[i] >> 4];
    chunk[n++] = digits[(unsigned char)s[i] & 15];
    if (n == sizeof chunk) {
      luaL_addlstring(b, chunk, n);
      n = 0;
    }
  }
  luaL_addlstring(b, chunk, n);
}

/* Whether a reply is a string of 1 to 15 digits (a version written as it is). */
static int plain_version(const redisReply *v) {
  size_t i;
  if (v->type != REDIS_REPLY_STRING || v->len < 1 || v->len > 15) return 0;
  for (i = 0; i < v->len; i++) if (v->str[i] < '0' || v->str[i] > '9') return 0;
  return 1;
}

/* conn:receive_lines(keys, prefix_length) -> text, count, others: the replies of one HMGET key p v s
** per key, as the lines of a `leadq state` export (leadq.store's lead_line, "\n" after each), made
** here: a million leads leave no Lua value behind. A lead whose id or version is not written plainly
** is left to the caller in others ({ id, profile, version text|false, state|false } each), a key
** without a profile is skipped. Or nil and why (an error reply ends the export: no lead is left out
** in silence). */
static int l_receive_lines(lua_State *L) {
  redis_conn *conn = check_conn(L, 1);
  lua_Integer prefix = luaL_checkinteger(L, 3);
  int n, i, count = 0, others = 0;
  luaL_Buffer b;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = (int)lua_rawlen(L, 2);
  if (conn->context == NULL) return push_socket_error(L, conn);
  lua_newtable(L);   /* others: index 4 */
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    redisReply *reply = NULL, *p, *v, *st;
    const char *key;
    size_t key_len, id_len, k;
    int plain = 1;
    if (redisGetReply(conn->context, (void **)&reply) != REDIS_OK || reply == NULL) return push_socket_error(L, conn);
    if (reply->type == REDIS_REPLY_ERROR || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
      lua_pushnil(L);
      if (reply->type == REDIS_REPLY_ERROR) lua_pushlstring(L, reply->str, reply->len);
      else lua_pushliteral(L, "redis: an HMGET answered something else than 3 values");
      freeReplyObject(reply);
      return 2;
    }
    p = reply->element[0];
    v = reply->element[1];
    st = reply->element[2];
    /* the key, "<prefix>{<id>}": popped at once (the buffer's box must stay on top; the keys table
    ** keeps the string alive) */
    lua_rawgeti(L, 2, i);
    key = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &key_len) : NULL;
    lua_pop(L, 1);
    if (key == NULL || p->type != REDIS_REPLY_STRING || key_len < (size_t)prefix + 2) {
      freeReplyObject(reply);
      continue;
    }
    id_len = key_len - (size_t)prefix - 2;
    key += prefix + 1;
    for (k = 0; k < id_len && plain; k++) plain = plain_id_char((unsigned char)key[k]);
    if (id_len == 0 || !plain || (v->type != REDIS_REPLY_NIL && !plain_version(v))) {
      lua_createtable(L, 4, 0);
      lua_pushlstring(L, key, id_len);
      lua_rawseti(L, -2, 1);
      lua_pushlstring(L, p->str, p->len);
      lua_rawseti(L, -2, 2);
      if (v->type == REDIS_REPLY_STRING) lua_pushlstring(L, v->str, v->len);
      else lua_pushboolean(L, 0);
      lua_rawseti(L, -2, 3);
      if (st->type == REDIS_REPLY_STRING) lua_pushlstring(L, st->str, st->len);
      else lua_pushboolean(L, 0);
      lua_rawseti(L, -2, 4);
      lua_rawseti(L, 4, ++others);
      freeReplyObject(reply);
      continue;
    }
    luaL_addlstring(&b, "{\"lead\":\"", 9);
    luaL_addlstring(&b, key, id_len);
    luaL_addlstring(&b, "\",\"profile\":", 12);
    luaL_addlstring(&b, p->str, p->len);
    luaL_addlstring(&b, ",\"version\":", 11);
    if (v->type == REDIS_REPLY_STRING) luaL_addlstring(&b, v->str, v->len);
    else luaL_addchar(&b, '0');
    if (st->type == REDIS_REPLY_STRING) {
      luaL_addlstring(&b, ",\"state\":\"", 10);
      add_hex(&b, st->str, st->len);
      luaL_addlstring(&b, "\"}\n", 3);
    } else {
      luaL_addlstring(&b, "}\n", 2);
    }
    count++;
    freeReplyObject(reply);
  }
  luaL_pushresult(&b);
  lua_pushinteger(L, count);
  if (others > 0) lua_pushvalue(L, 4);
  else lua_pushnil(L);
  return 3;
}

static int l_close(lua_State *L) {
  close_conn(check_conn(L, 1));
  return 0;
}

static int l_connected(lua_State *L) {
  lua_pushboolean(L, check_conn(L, 1)->context != NULL);
  return 1;
}

static int l_tostring(lua_State *L) {
  redis_conn *conn = check_conn(L, 1);
  if (conn->context == NULL) lua_pushliteral(L, "leadq.RedisConnection (closed)");
  else lua_pushfstring(L, "leadq.RedisConnection (%p)", (void *)conn);
  return 1;
}

/* Both through a small stack chunk and luaL_addlstring: luaL_buffinitsize is not in Lua 5.1. */
static int l_hex_encode(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  size_t len, i, n = 0;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  char chunk[512];
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i++) {
    chunk[n++] = digits[s[i] >> 4];
    chunk[n++] = digits[s[i] & 15];
    if (n == sizeof chunk) {
      luaL_addlstring(&b, chunk, n);
      n = 0;
    }
  }
  luaL_addlstring(&b, chunk, n);
  luaL_pushresult(&b);
  return 1;
}

/* The hex digits of a state as its bytes, into the buffer (checked by the caller). */
static void push_unhex(lua_State *L, const char *hex, size_t len) {
  char chunk[512];
  size_t i, n = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 0; i + 1 < len; i += 2) {
    chunk[n++] = (char)(lq_hex_value((unsigned char)hex[i]) * 16 + lq_hex_value((unsigned char)hex[i + 1]));
    if (n == sizeof chunk) {
      luaL_addlstring(&b, chunk, n);
      n = 0;
    }
  }
  luaL_addlstring(&b, chunk, n);
  luaL_pushresult(&b);
}

static int l_hex_decode(lua_State *L) {
  size_t len, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  if (len % 2 != 0) {
    lua_pushnil(L);
    return 1;
  }
  for (i = 0; i < len; i++) {   /* checked whole first: no buffer to abandon halfway */
    if (lq_hex_value(s[i]) < 0) {
      lua_pushnil(L);
      return 1;
    }
  }
  push_unhex(L, (const char *)s, len);
  return 1;
}

/* core.state_line(text) -> id, profile text, version, state bytes|false: a line of an export as
** leadq.store writes it, its profile checked but not decoded; nil for any other line (the caller's
** JSON reader then decides). */
static int l_state_line(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lq_state_line line;
  if (!lq_state_line_parse(text, len, &line)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, line.id, line.id_len);
  lua_pushlstring(L, line.profile, line.profile_len);
  lq_push_number(L, line.version);
  if (line.state_hex) push_unhex(L, line.state_hex, line.state_hex_len);
  else lua_pushboolean(L, 0);
  return 4;
}

void lq_open_redis(lua_State *L) {
  static const luaL_Reg meta[] = {
    { "__gc", l_close }, { "__close", l_close }, { "__tostring", l_tostring }, { NULL, NULL }
  };
  static const luaL_Reg methods[] = {
    { "call", l_call }, { "pipeline", l_pipeline }, { "send", l_send }, { "receive", l_receive },
    { "receive_lines", l_receive_lines },
    { "close", l_close }, { "connected", l_connected },
    { NULL, NULL }
  };
  lq_new_class(L, REDIS_CONN, meta, methods);
  lua_pushcfunction(L, l_redis_connect);
  lua_setfield(L, -2, "redis_connect");
  lua_pushcfunction(L, l_redis_connect_unix);
  lua_setfield(L, -2, "redis_connect_unix");
  lua_pushcfunction(L, l_hex_encode);
  lua_setfield(L, -2, "hex_encode");
  lua_pushcfunction(L, l_hex_decode);
  lua_setfield(L, -2, "hex_decode");
  lua_pushcfunction(L, l_state_line);
  lua_setfield(L, -2, "state_line");
}

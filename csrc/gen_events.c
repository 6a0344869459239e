/* leadq.core.event_engine: the hot loop of the synthetic data generator (lua/leadq/gen.lua).
**
** One lead's events (page views, e-mail opens and clicks, downloads, webinars, demo requests...)
** in sessions over the months after it was created, written as events.csv rows into a buffer the
** Lua side takes in large pieces. Every word and weight comes from the Lua side's config table
** (kept alive as the engine's user value, so the strings can be pointed at); this file holds only
** the algorithm. Draws come from a leadq.Random, so the bytes are the same under every Lua.
**
**   local engine = core.event_engine(config)
**   rows, engagement, mql_at, demo_at, bytes =
**     engine:lead(rng, id, created, persona, intent, fit, first, campaign, personal)
**   text = engine:take()        -- the rows so far; the buffer starts again empty
**
** Times are whole seconds since the first day of the calendar (config.first_day, days since
** 1970-01-01). mql_at is when the lead's history score (35 * fit plus the engagement points of its
** events) first crossed a bar drawn per lead; demo_at is its first demo request; both nil if never.
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "civil_time.h"
#include "random.h"

#define ENGINE_TYPE "leadq.EventEngine"

/* Event types, in the order of config.types. */
enum { PAGE_VIEW, PRICING, DOWNLOAD, OPEN, CLICK, WEBINAR_REG, WEBINAR_ATT, DEMO, FORM, UNSUB, CAREERS,
       NTYPES };
/* Personas, as numbered by gen.lua (1-based there). */
enum { BUYER = 1, BOT = 6, INTERNAL = 7, NPERSONAS = 7 };
#define NBANDS 5

#if !defined(LQ_GEN_LIST_MAX)
#define LQ_GEN_LIST_MAX 64
#endif
#define DAYS_MAX 400
#define MONTHS_MAX 16
#define MAX_EVENTS_PER_LEAD 3000

typedef struct text {
  const char *s;
  size_t len;
} text;

/* A weighted list of words: value[i] (and, for assets, page[i]) drawn with weight i. */
typedef struct word_list {
  int n;
  double total;
  double cum[LQ_GEN_LIST_MAX];
  text value[LQ_GEN_LIST_MAX];
  text page[LQ_GEN_LIST_MAX];
} word_list;

typedef struct engine {
  text type_name[NTYPES];
  double engagement[NTYPES];
  double mix_cum[NPERSONAS][NBANDS][NTYPES];
  double mix_total[NPERSONAS][NBANDS];
  word_list pages, careers, assets, forms, pricing, nurture;
  double hour_cum[24], hour_total;
  double email_kind_cum[4], email_kind_total;
  text webinar_page, demo_page;
  int ndays, nmonths;
  int day_month[DAYS_MAX];
  char day_prefix[DAYS_MAX][12];        /* "2026-03-04T" */
  text newsletter[MONTHS_MAX], product_update[MONTHS_MAX], webinar_invite[MONTHS_MAX], webinar[MONTHS_MAX];
  int64_t t_last;
  /* the rows not yet taken */
  lua_Alloc alloc;
  void *alloc_ud;
  char *buf;
  size_t len, cap;
} engine;

/* What one lead's events add up to. */
typedef struct lead_state {
  const char *id;
  size_t id_len;
  double score, bar, engagement;
  int64_t mql_at, demo_at;
  long rows;
} lead_state;

static const text EMPTY = { "", 0 };

/* ---- output ---- */

static int grow(engine *e, size_t need) {
  size_t cap = e->cap ? e->cap : 65536;
  char *p;
  while (cap < e->len + need) cap *= 2;
  p = (char *)e->alloc(e->alloc_ud, e->buf, e->cap, cap);
  if (p == NULL) return -1;
  e->buf = p;
  e->cap = cap;
  return 0;
}

static char *put(char *p, text t) {
  memcpy(p, t.s, t.len);
  return p + t.len;
}

static char *put_uint(char *p, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

static char *put_two(char *p, int v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
  return p + 2;
}

/* One row: id,type,at,value,page,asset,campaign. value < 0 writes an empty field.
** Returns -1 when the buffer cannot grow. */
static int emit(engine *e, lead_state *st, int type, int64_t at, int64_t value,
                text page, text asset, text campaign) {
  size_t need = st->id_len + e->type_name[type].len + page.len + asset.len + campaign.len + 64;
  char *p;
  int64_t day, sec;
  double points;
  if (at < 0 || at > e->t_last) return -2;            /* a bug here, not bad input: see l_engine_lead */
  if (e->len + need > e->cap && grow(e, need) != 0) return -1;
  p = e->buf + e->len;
  memcpy(p, st->id, st->id_len);
  p += st->id_len;
  *p++ = ',';
  p = put(p, e->type_name[type]);
  *p++ = ',';
  day = at / 86400;
  sec = at - day * 86400;
  memcpy(p, e->day_prefix[day], 11);
  p += 11;
  p = put_two(p, (int)(sec / 3600));
  *p++ = ':';
  p = put_two(p, (int)(sec / 60 % 60));
  *p++ = ':';
  p = put_two(p, (int)(sec % 60));
  *p++ = 'Z';
  *p++ = ',';
  if (value >= 0) p = put_uint(p, (uint64_t)value);
  *p++ = ',';
  p = put(p, page);
  *p++ = ',';
  p = put(p, asset);
  *p++ = ',';
  p = put(p, campaign);
  *p++ = '\n';
  e->len = (size_t)(p - e->buf);
  st->rows++;

  points = e->engagement[type];
  if (type == PAGE_VIEW && value < 10) points = 0;    /* a bounce is no interest */
  st->engagement += points;
  if (st->mql_at < 0 && st->score + st->engagement >= st->bar) st->mql_at = at;
  if (type == DEMO && st->demo_at < 0) st->demo_at = at;
  return 0;
}

/* ---- the algorithm ---- */

static int pick(lq_random *r, const word_list *w) {
  return lq_random_pick(r, w->cum, w->n, w->total);
}

static int month_of(const engine *e, int64_t t) {
  return e->day_month[t / 86400];
}

static int64_t seconds_on_page(lq_random *r, double median) {
  double u = lq_random_uniform(r);
  double s;
  if (u < 0.1) return (int64_t)floor(u * 30);          /* bounced at once: 0 to 2 seconds */
  s = floor(lq_random_lognormal(r, median, 1.1));
  return s > 1800 ? 1800 : (int64_t)s;
}

static text email_campaign(const engine *e, lq_random *r, int64_t t) {
  int m = month_of(e, t);
  int kind = lq_random_pick(r, e->email_kind_cum, 4, e->email_kind_total);
  if (kind == 0) return e->newsletter[m];
  if (kind == 1) return e->nurture.value[lq_random_int(r, 0, e->nurture.n - 1)];
  if (kind == 2) return e->product_update[m];
  return e->webinar_invite[m];
}

#define EMIT(type, at, value, page, asset, campaign) \
  do { \
    int status_ = emit(e, &st, (type), (at), (value), (page), (asset), (campaign)); \
    if (status_ != 0) return status_; \
  } while (0)

/* first: 0 no web event made the lead (a badge scan), 1 a webinar registration for campaign,
** 2 a download or a form. Returns -1 when out of memory, -2 for a time outside the calendar. */
static int lead_events(engine *e, lq_random *r, lead_state *out, int64_t created, int persona,
                       double intent, double fit, int first, text campaign, int personal) {
  lead_state st = *out;
  int64_t t = created;
  int band = intent < 0.1 ? 0 : intent < 0.25 ? 1 : intent < 0.45 ? 2 : intent < 0.7 ? 3 : 4;
  const double *mix = e->mix_cum[persona - 1][band];
  double mix_total = e->mix_total[persona - 1][band];
  int unsubscribed = 0, scanner, bot = persona == BOT;
  int64_t pending_at = -1;
  text pending_campaign = EMPTY;
  uint32_t registered = 0;                            /* webinars by month */
  long n, i;
  int session_left = 0;
  double gap_mean;

  st.bar = 50 + 12 * lq_random_normal(r);
  if (st.bar < 20) st.bar = 20;
  st.score = 35 * fit;
  st.engagement = 0;
  st.mql_at = st.demo_at = -1;
  st.rows = 0;
  scanner = !personal && persona == BUYER && lq_random_chance(r, 0.08);

  /* how many events: most leads few, some many */
  if (bot) {
    n = 80 + (long)floor(lq_random_exponential(r, 400));
  } else if (persona == INTERNAL) {
    n = (long)lq_random_int(r, 10, 60);
  } else {
    n = (long)floor(lq_random_lognormal(r, 2.4 * (1 + 3.5 * intent + 0.5 * fit), 1.0));
  }
  if (n > MAX_EVENTS_PER_LEAD) n = MAX_EVENTS_PER_LEAD;

  /* the event that made the lead, at created_at */
  if (first == 1) {
    EMIT(WEBINAR_REG, t, -1, e->webinar_page, EMPTY, campaign);
    registered |= 1u << month_of(e, t);
    if (lq_random_chance(r, 0.35 + 0.4 * intent)) {
      int64_t days = lq_random_int(r, 1, 14);
      pending_at = t + days * 86400 + lq_random_int(r, -3600, 3600);
      pending_campaign = campaign;
    }
  } else if (first == 2) {
    if (lq_random_chance(r, 0.4)) {
      int a = pick(r, &e->assets);
      EMIT(DOWNLOAD, t, -1, e->assets.page[a], e->assets.value[a], EMPTY);
    } else {
      EMIT(FORM, t, -1, e->forms.value[pick(r, &e->forms)], EMPTY, EMPTY);
    }
  }

  gap_mean = 86400 * (30 - 25 * intent);
  for (i = 0; i < n; i++) {
    int type;
    if (session_left == 0) {
      if (bot) {
        t += (int64_t)floor(lq_random_exponential(r, 3 * 86400));
        session_left = 100 + (int)lq_random_int(r, 0, 400);
      } else {
        /* people come back on another day, mostly in working hours */
        int64_t next_t = t + (int64_t)floor(lq_random_exponential(r, gap_mean)) + 60;
        int64_t day = next_t / 86400;
        int64_t hour = lq_random_pick(r, e->hour_cum, 24, e->hour_total);
        int64_t at = day * 86400 + hour * 3600 + lq_random_int(r, 0, 3599);
        t = at > t ? at : next_t;
        gap_mean *= 1.15;
        session_left = 1 + (int)floor(lq_random_exponential(r, 1.6));
      }
    } else {
      t += bot ? lq_random_int(r, 0, 2) : 5 + (int64_t)floor(lq_random_exponential(r, 90));
    }
    if (t > e->t_last) break;
    session_left--;
    if (pending_at >= 0 && pending_at <= t) {
      EMIT(WEBINAR_ATT, pending_at, lq_random_int(r, 5, 60), EMPTY, EMPTY, pending_campaign);
      pending_at = -1;
    }

    type = lq_random_pick(r, mix, NTYPES, mix_total);
    if (unsubscribed && (type == OPEN || type == CLICK)) type = PAGE_VIEW;
    switch (type) {
      case PAGE_VIEW: case PRICING: case CAREERS: {
        const word_list *where = type == PAGE_VIEW ? &e->pages : type == PRICING ? &e->pricing : &e->careers;
        double median = type == PAGE_VIEW ? 35 : type == PRICING ? 60 : 50;
        int64_t seconds = bot ? lq_random_int(r, 0, 1) : seconds_on_page(r, median);
        EMIT(type, t, seconds, where->value[pick(r, where)], EMPTY, EMPTY);
        break;
      }
      case DOWNLOAD: {
        int a = pick(r, &e->assets);
        EMIT(type, t, -1, e->assets.page[a], e->assets.value[a], EMPTY);
        break;
      }
      case OPEN: {
        text c = email_campaign(e, r, t);
        EMIT(type, t, -1, EMPTY, EMPTY, c);
        if (scanner && lq_random_chance(r, 0.7)) {    /* a mail scanner clicks every link at once */
          int64_t clicks = lq_random_int(r, 1, 3), k;
          for (k = 0; k < clicks; k++) {
            int64_t at = t + lq_random_int(r, 0, 2);
            int p = pick(r, &e->pages);
            if (at <= e->t_last) EMIT(CLICK, at, -1, e->pages.value[p], EMPTY, c);
          }
          t += 2;
        } else if (lq_random_chance(r, 0.06 + 0.2 * intent)) {
          t += 20 + (int64_t)floor(lq_random_exponential(r, 600));
          if (t <= e->t_last) EMIT(CLICK, t, -1, e->pages.value[pick(r, &e->pages)], EMPTY, c);
        }
        break;
      }
      case CLICK: {                                   /* the open went unseen (images blocked) */
        int p = pick(r, &e->pages);
        EMIT(type, t, -1, e->pages.value[p], EMPTY, email_campaign(e, r, t));
        break;
      }
      case WEBINAR_REG: {
        int64_t wt = t + lq_random_int(r, 1, 14) * 86400;
        int m = month_of(e, wt <= e->t_last ? wt : t);
        if (!(registered & (1u << m))) {
          registered |= 1u << m;
          EMIT(type, t, -1, e->webinar_page, EMPTY, e->webinar[m]);
          if (pending_at < 0 && lq_random_chance(r, 0.35 + 0.4 * intent)) {
            pending_at = wt;
            pending_campaign = e->webinar[m];
          }
        }
        break;
      }
      case DEMO:
        EMIT(type, t, -1, e->demo_page, EMPTY, EMPTY);
        break;
      case FORM:
        EMIT(type, t, -1, e->forms.value[pick(r, &e->forms)], EMPTY, EMPTY);
        break;
      case UNSUB:
        EMIT(type, t, -1, EMPTY, EMPTY, email_campaign(e, r, t));
        unsubscribed = 1;
        break;
      default:                                        /* webinar_attended only follows a registration */
        break;
    }
  }
  if (pending_at >= 0 && pending_at <= e->t_last)
    EMIT(WEBINAR_ATT, pending_at, lq_random_int(r, 5, 60), EMPTY, EMPTY, pending_campaign);
  *out = st;
  return 0;
}

/* ---- configuration: read once from the Lua table ---- */

/* The string at t[i] (t at the top of the stack); it stays alive because the table does. */
static text string_at(lua_State *L, int i, const char *what) {
  text out;
  lua_rawgeti(L, -1, i);
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "event engine: %s[%d] must be a string", what, i);
  out.s = lua_tolstring(L, -1, &out.len);
  lua_pop(L, 1);
  return out;
}

static double number_at(lua_State *L, int i, const char *what) {
  double v;
  lua_rawgeti(L, -1, i);
  if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "event engine: %s[%d] must be a number", what, i);
  v = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v >= 0) || !isfinite(v)) luaL_error(L, "event engine: %s[%d] must be a finite number >= 0", what, i);
  return v;
}

static void push_field(lua_State *L, int t, const char *key, int type) {
  lua_getfield(L, t, key);
  if (lua_type(L, -1) != type)
    luaL_error(L, "event engine: config.%s must be a %s", key, lua_typename(L, type));
}

/* cumulative weights from the list at the top of the stack */
static double read_weights(lua_State *L, double *cum, int n, const char *what) {
  double total = 0;
  int i;
  if ((int)lua_rawlen(L, -1) != n) luaL_error(L, "event engine: %s must hold %d weights", what, n);
  for (i = 0; i < n; i++) {
    total += number_at(L, i + 1, what);
    cum[i] = total;
  }
  if (!(total > 0)) luaL_error(L, "event engine: %s must not be all 0", what);
  return total;
}

/* config[key] = { values = {...}, weights = {...} [, pages = {...}] } */
static void read_list(lua_State *L, int t, const char *key, word_list *w, int with_pages) {
  int i, n;
  push_field(L, t, key, LUA_TTABLE);
  lua_getfield(L, -1, "values");
  if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "event engine: config.%s.values must be a list", key);
  n = (int)lua_rawlen(L, -1);
  if (n < 1 || n > LQ_GEN_LIST_MAX)
    luaL_error(L, "event engine: config.%s.values must hold 1 to %d words", key, LQ_GEN_LIST_MAX);
  w->n = n;
  for (i = 0; i < n; i++) w->value[i] = string_at(L, i + 1, key);
  lua_pop(L, 1);
  lua_getfield(L, -1, "weights");
  if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "event engine: config.%s.weights must be a list", key);
  w->total = read_weights(L, w->cum, n, key);
  lua_pop(L, 1);
  if (with_pages) {
    lua_getfield(L, -1, "pages");
    if (lua_type(L, -1) != LUA_TTABLE || (int)lua_rawlen(L, -1) != n)
      luaL_error(L, "event engine: config.%s.pages must hold one page per value", key);
    for (i = 0; i < n; i++) w->page[i] = string_at(L, i + 1, key);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void read_monthly(lua_State *L, int t, const char *key, text *out, int nmonths) {
  int i;
  push_field(L, t, key, LUA_TTABLE);
  if ((int)lua_rawlen(L, -1) != nmonths)
    luaL_error(L, "event engine: config.%s must name one campaign per month (%d)", key, nmonths);
  for (i = 0; i < nmonths; i++) out[i] = string_at(L, i + 1, key);
  lua_pop(L, 1);
}

static engine *check_engine(lua_State *L, int i) {
  return (engine *)luaL_checkudata(L, i, ENGINE_TYPE);
}

static int l_engine_new(lua_State *L) {
  engine *e;
  int i, p, b, last_key = -1;
  lua_Number first_day;
  luaL_checktype(L, 1, LUA_TTABLE);
  e = (engine *)lq_newuserdata(L, sizeof(engine));
  memset(e, 0, sizeof *e);                         /* safe empty state before anything can fail */
  e->alloc = lua_getallocf(L, &e->alloc_ud);
  luaL_setmetatable(L, ENGINE_TYPE);
  lua_pushvalue(L, 1);
  lua_setuservalue(L, -2);                         /* the strings we point at live in here */

  push_field(L, 1, "types", LUA_TTABLE);
  if ((int)lua_rawlen(L, -1) != NTYPES) luaL_error(L, "event engine: config.types must name %d types", NTYPES);
  for (i = 0; i < NTYPES; i++) e->type_name[i] = string_at(L, i + 1, "types");
  lua_pop(L, 1);
  push_field(L, 1, "engagement", LUA_TTABLE);
  for (i = 0; i < NTYPES; i++) {
    lua_rawgeti(L, -1, i + 1);
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "event engine: engagement[%d] must be a number", i + 1);
    e->engagement[i] = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  push_field(L, 1, "mix", LUA_TTABLE);
  for (p = 0; p < NPERSONAS; p++) {
    lua_rawgeti(L, -1, p + 1);
    if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "event engine: mix[%d] must be a list of bands", p + 1);
    for (b = 0; b < NBANDS; b++) {
      lua_rawgeti(L, -1, b + 1);
      if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "event engine: mix[%d][%d] must be a list", p + 1, b + 1);
      e->mix_total[p][b] = read_weights(L, e->mix_cum[p][b], NTYPES, "mix");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  read_list(L, 1, "pages", &e->pages, 0);
  read_list(L, 1, "careers", &e->careers, 0);
  read_list(L, 1, "assets", &e->assets, 1);
  read_list(L, 1, "forms", &e->forms, 0);
  read_list(L, 1, "pricing", &e->pricing, 0);
  read_list(L, 1, "nurture", &e->nurture, 0);
  push_field(L, 1, "hours", LUA_TTABLE);
  e->hour_total = read_weights(L, e->hour_cum, 24, "hours");
  lua_pop(L, 1);
  push_field(L, 1, "email_kinds", LUA_TTABLE);
  e->email_kind_total = read_weights(L, e->email_kind_cum, 4, "email_kinds");
  lua_pop(L, 1);
  push_field(L, 1, "webinar_page", LUA_TSTRING);
  e->webinar_page.s = lua_tolstring(L, -1, &e->webinar_page.len);
  lua_pop(L, 1);
  push_field(L, 1, "demo_page", LUA_TSTRING);
  e->demo_page.s = lua_tolstring(L, -1, &e->demo_page.len);
  lua_pop(L, 1);

  /* the calendar: day prefixes and month numbers, as gen.lua counts them */
  push_field(L, 1, "first_day", LUA_TNUMBER);
  first_day = lua_tonumber(L, -1);
  lua_pop(L, 1);
  push_field(L, 1, "days", LUA_TNUMBER);
  e->ndays = (int)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (e->ndays < 1 || e->ndays > DAYS_MAX || floor(first_day) != first_day || fabs(first_day) > 1e7)
    luaL_error(L, "event engine: config.days must be 1 to %d and first_day a day number", DAYS_MAX);
  for (i = 0; i < e->ndays; i++) {
    int64_t y;
    unsigned m, d;
    lq_civil_from_days((int64_t)first_day + i, &y, &m, &d);
    snprintf(e->day_prefix[i], sizeof e->day_prefix[i], "%04d-%02u-%02uT", (int)y, m, d);
    if ((int)y * 12 + (int)m != last_key) {
      if (e->nmonths == MONTHS_MAX) luaL_error(L, "event engine: too many months");
      e->nmonths++;
      last_key = (int)y * 12 + (int)m;
    }
    e->day_month[i] = e->nmonths - 1;
  }
  e->t_last = (int64_t)e->ndays * 86400 - 1;
  read_monthly(L, 1, "newsletter", e->newsletter, e->nmonths);
  read_monthly(L, 1, "product_update", e->product_update, e->nmonths);
  read_monthly(L, 1, "webinar_invite", e->webinar_invite, e->nmonths);
  read_monthly(L, 1, "webinar", e->webinar, e->nmonths);
  return 1;
}

static int l_engine_lead(lua_State *L) {
  engine *e = check_engine(L, 1);
  lq_random *r = (lq_random *)luaL_checkudata(L, 2, LQ_RANDOM_TYPE);
  lead_state st;
  text campaign = EMPTY;
  lua_Number created = luaL_checknumber(L, 4);
  int persona = (int)luaL_checkinteger(L, 5);
  double intent = (double)luaL_checknumber(L, 6);
  double fit = (double)luaL_checknumber(L, 7);
  int first = (int)luaL_checkinteger(L, 8);
  int personal = lua_toboolean(L, 10);
  int status;
  memset(&st, 0, sizeof st);
  st.id = luaL_checklstring(L, 3, &st.id_len);
  if (!lua_isnoneornil(L, 9)) campaign.s = luaL_checklstring(L, 9, &campaign.len);
  if (e->ndays == 0) return luaL_error(L, "event engine is not configured");
  if (!(created >= 0 && created <= (lua_Number)e->t_last) || floor(created) != created)
    return luaL_argerror(L, 4, "created must be a whole number of seconds within the calendar");
  if (persona < 1 || persona > NPERSONAS) return luaL_argerror(L, 5, "persona must be 1 to 7");
  if (first < 0 || first > 2) return luaL_argerror(L, 8, "first must be 0, 1 or 2");
  status = lead_events(e, r, &st, (int64_t)created, persona, intent, fit, first, campaign, personal);
  if (status == -1) return luaL_error(L, "not enough memory for the events buffer");
  if (status != 0) return luaL_error(L, "event engine: an event of lead %s fell outside the calendar", st.id);
  lua_pushinteger(L, (lua_Integer)st.rows);
  lua_pushnumber(L, st.engagement);
  if (st.mql_at >= 0) lua_pushinteger(L, (lua_Integer)st.mql_at); else lua_pushnil(L);
  if (st.demo_at >= 0) lua_pushinteger(L, (lua_Integer)st.demo_at); else lua_pushnil(L);
  lua_pushinteger(L, (lua_Integer)e->len);
  return 5;
}

static int l_engine_take(lua_State *L) {
  engine *e = check_engine(L, 1);
  lua_pushlstring(L, e->buf ? e->buf : "", e->len);
  e->len = 0;
  return 1;
}

static int l_engine_gc(lua_State *L) {
  engine *e = check_engine(L, 1);
  if (e->buf) e->alloc(e->alloc_ud, e->buf, e->cap, 0);
  e->buf = NULL;
  e->len = e->cap = 0;
  return 0;
}

static int l_engine_tostring(lua_State *L) {
  engine *e = check_engine(L, 1);
  lua_pushfstring(L, ENGINE_TYPE " (%d days, %d bytes buffered)", e->ndays, (int)e->len);
  return 1;
}

static const luaL_Reg engine_methods[] = {
  {"lead", l_engine_lead},
  {"take", l_engine_take},
  {NULL, NULL}
};

static const luaL_Reg engine_meta[] = {
  {"__gc", l_engine_gc},
  {"__close", l_engine_gc},
  {"__tostring", l_engine_tostring},
  {NULL, NULL}
};

void lq_open_gen_events(lua_State *L) {
  lq_new_class(L, ENGINE_TYPE, engine_meta, engine_methods);
  lua_pushcfunction(L, l_engine_new);
  lua_setfield(L, -2, "event_engine");
}

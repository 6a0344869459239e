/* leadq.core.calendar(zone [, from, to, days]) -> a "leadq.Calendar", or nil and why: working hours
** (from, to: hours of the local day; days: a bit per weekday, bit 0 Sunday) in a time zone (an IANA
** name, "UTC" or "+HH:MM"); without from and to, every hour counts. Methods: deadline(at, seconds)
** (nil when no day works), offset(t) (seconds east of UTC), zone(). The reactions' SLA makes one
** (leadq.reactions) and the funnel takes it (funnel_binding.c), so both time a hand-off alike. */
#include <math.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "working_hours.h"

#define CALENDAR_TYPE "leadq.Calendar"

struct lq_calendar *lq_check_calendar(lua_State *L, int arg) {
  return (lq_calendar *)luaL_checkudata(L, arg, CALENDAR_TYPE);
}

static int l_calendar(lua_State *L) {
  const char *zone = luaL_checkstring(L, 1);
  int working = !lua_isnoneornil(L, 2);
  double from = working ? luaL_checknumber(L, 2) : 0, to = working ? luaL_checknumber(L, 3) : 24;
  unsigned days = working ? (unsigned)luaL_checkinteger(L, 4) & 0x7fu : 0x7fu;
  char err[256];
  lq_calendar *c;
  luaL_argcheck(L, from >= 0 && from < to && to <= 24, 2, "working hours: 0 <= from < to <= 24");
  c = (lq_calendar *)lua_newuserdata(L, sizeof(lq_calendar));
  memset(c, 0, sizeof *c);   /* a safe empty state before anything can fail */
  luaL_setmetatable(L, CALENDAR_TYPE);
  if (lq_zone_load(&c->zone, zone, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  c->working = working;
  c->from = from;
  c->to = to;
  c->days = days;
  return 1;
}

static int l_deadline(lua_State *L) {
  const lq_calendar *c = lq_check_calendar(L, 1);
  double d = lq_calendar_deadline(c, luaL_checknumber(L, 2), luaL_checknumber(L, 3));
  if (isnan(d)) lua_pushnil(L); else lq_push_number(L, d);
  return 1;
}

static int l_offset(lua_State *L) {
  const lq_calendar *c = lq_check_calendar(L, 1);
  lua_pushinteger(L, lq_zone_offset(&c->zone, luaL_checknumber(L, 2)));
  return 1;
}

static int l_zone(lua_State *L) {
  lua_pushstring(L, lq_check_calendar(L, 1)->zone.name);
  return 1;
}

static int l_tostring(lua_State *L) {
  const lq_calendar *c = lq_check_calendar(L, 1);
  if (c->working)
    lua_pushfstring(L, "leadq.Calendar (%s, %f to %f h)", c->zone.name, c->from, c->to);
  else
    lua_pushfstring(L, "leadq.Calendar (%s, every hour)", c->zone.name);
  return 1;
}

static const luaL_Reg calendar_methods[] = {
  { "deadline", l_deadline }, { "offset", l_offset }, { "zone", l_zone }, { NULL, NULL }
};

void lq_open_calendar(lua_State *L) {
  if (luaL_newmetatable(L, CALENDAR_TYPE)) {
    lua_newtable(L);
    luaL_setfuncs(L, calendar_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_calendar);
  lua_setfield(L, -2, "calendar");
}

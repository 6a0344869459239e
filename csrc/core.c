/* leadq.core: the one exported symbol; each binding file adds its part of the module. */
#include "compat.h"
#include "bindings.h"

LQ_EXPORT int luaopen_leadq_core(lua_State *L);

LQ_EXPORT int luaopen_leadq_core(lua_State *L) {
  lua_newtable(L);
  lq_open_table(L);
  lq_open_random(L);
  lq_open_gen_events(L);
  lq_open_funnel(L);
  lq_open_score(L);
  lq_open_features(L);
  lq_open_accounts(L);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "version");
  return 1;
}

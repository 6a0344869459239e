/* Internal: each binding file registers its functions into the module table at the top of the stack. */
#ifndef LEADQ_BINDINGS_H
#define LEADQ_BINDINGS_H

#include "compat.h"

void lq_open_table(lua_State *L);
void lq_open_random(lua_State *L);
void lq_open_funnel(lua_State *L);

#endif

/* The read_csv option `plan` (a mapping script compiled by lua/leadq/mapping.lua) as a C plan. */
#ifndef LEADQ_COLUMN_PLAN_BINDING_H
#define LEADQ_COLUMN_PLAN_BINDING_H

#include "compat.h"
#include "column_plan.h"

/* The plan table at idx into *plan. Its arrays are userdata pushed on the stack, its strings those
** of the table: both must stay on the stack while the plan is in use. Raises on a malformed plan. */
void lq_read_plan(lua_State *L, int idx, lq_plan *plan);

#endif

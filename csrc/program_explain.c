/* p:explain_one and p:explain_row: one lead's facts, which leadq.model words into an explanation:
** per rule whether it fired, its points before and after its group's cap, each group's sums, and
** which disqualifiers hold. The same program as score and score_one, on a batch of one row, so an
** explanation always tells of the answer those give. See program_binding.h. */
#include <string.h>

#include "compat.h"
#include "program_binding.h"

/* The facts table of one row: rules (fired, raw, points), disqualifiers, groups (raw, points), and
** leaves, in the program's order (holds, missing, and number, or value and needle, 1-based). */
static void push_facts(lua_State *L, const lq_program *p, const lq_row_facts *f) {
  int r, g, k;
  lua_createtable(L, 0, 3);
  lua_createtable(L, p->nrules, 0);
  for (r = 0; r < p->nrules; r++) {
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, f->rule_fired[r]);
    lua_setfield(L, -2, "fired");
    lua_pushnumber(L, f->rule_raw[r]);
    lua_setfield(L, -2, "raw");
    lua_pushnumber(L, f->rule_points[r]);
    lua_setfield(L, -2, "points");
    lua_rawseti(L, -2, r + 1);
  }
  lua_setfield(L, -2, "rules");
  lua_createtable(L, p->ndisq, 0);
  for (r = 0; r < p->ndisq; r++) {
    lua_pushboolean(L, f->disq_fired[r]);
    lua_rawseti(L, -2, r + 1);
  }
  lua_setfield(L, -2, "disqualifiers");
  lua_createtable(L, p->ngroups, 0);
  for (g = 0; g < p->ngroups; g++) {
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, f->group_raw[g]);
    lua_setfield(L, -2, "raw");
    lua_pushnumber(L, f->group_points[g]);
    lua_setfield(L, -2, "points");
    lua_rawseti(L, -2, g + 1);
  }
  lua_setfield(L, -2, "groups");
  lua_createtable(L, p->nleaves, 0);
  for (k = 0; k < p->nleaves; k++) {   /* each test's result, and what decided it */
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, f->leaf_holds[k]);
    lua_setfield(L, -2, "holds");
    lua_pushboolean(L, f->leaf_missing[k]);
    lua_setfield(L, -2, "missing");
    if (f->leaf_number[k] == f->leaf_number[k]) {
      lq_push_number(L, f->leaf_number[k]);
      lua_setfield(L, -2, "number");
    }
    if (f->leaf_needle[k] >= 0) {
      lua_pushinteger(L, (lua_Integer)f->leaf_needle[k] + 1);
      lua_setfield(L, -2, "needle");
      lua_pushinteger(L, (lua_Integer)f->leaf_value[k] + 1);
      lua_setfield(L, -2, "value");
    }
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "leaves");
}

/* Runs row `row` of run alone and pushes the answer (as score_one's) with its .facts. The facts'
** block is a userdata on the stack, so an error cannot leak it. */
static void push_explained(lua_State *L, program_box *pb, const lq_run *run, lq_scratch *s, size_t row, int uv,
                           int errors) {
  const lq_program *p = pb->prog;
  lq_row_facts f;
  one_answer ans;
  lua_matchers ctx;
  int status;
  lq_row_facts_init(&f, p, lua_newuserdata(L, lq_row_facts_size(p)));
  lq_push_lua_matchers(L, uv, &ctx);
  status = lq_program_explain_row(run, s, row, lq_lua_matcher, &ctx, &f);
  lua_pop(L, 1);
  if (status != 0) luaL_error(L, "a 'matches' pattern failed: %s", ctx.message);
  ans.total = f.total;
  ans.status = f.status;
  ans.grade = f.grade;
  ans.reason = f.reason;
  ans.disq = f.disq;
  ans.group_points = f.group_points;
  lq_push_answer(L, pb, uv, &ans, errors, 0);
  push_facts(L, p, &f);
  lua_setfield(L, -2, "facts");
  lua_remove(L, -2);   /* the block */
}

/* p:explain_one(record [, options [, extra]]) -> result (as score_one) with .facts */
int lq_method_explain_one(lua_State *L) {
  program_box *pb = lq_check_program(L, 1);
  one_state *o;
  one_call call;
  const char *bad;
  if (!pb->record_mode) return luaL_error(L, "this program scores tables (compiled for a table's columns)");
  o = lq_one_state(L, pb);
  bad = lq_one_run(L, pb, o, NULL, &call);
  if (bad != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, bad);
    return 2;
  }
  push_explained(L, pb, &o->run, &o->scratch, 0, call.uv, call.errors);
  return 1;
}

/* p:explain_row(lead, features, results, row, as_of [, id_column]) -> the same for one row of a table */
int lq_method_explain_row(lua_State *L) {
  program_box *pb = lq_check_program(L, 1);
  lq_table *tables[3];
  size_t row, nrows;
  double as_of = (double)luaL_checknumber(L, 6);
  binding_box *b;
  int uv, id_col = -1;
  error_log log;

  lq_check_lead_tables(L, pb, tables);
  nrows = tables[SRC_LEAD]->nrows;
  row = (size_t)luaL_checkinteger(L, 5);
  if (row < 1 || row > nrows) return luaL_argerror(L, 5, "row out of range");
  row -= 1;
  if (lua_type(L, 7) == LUA_TSTRING) id_col = lq_table_find(tables[SRC_LEAD], lua_tostring(L, 7));
  lua_settop(L, 7);
  memset(&log, 0, sizeof log);
  lua_pushnil(L);
  log.slot = lua_gettop(L);   /* the errors of Lua functions: nil until the first */
  lua_getuservalue(L, 1);
  uv = lua_gettop(L);
  b = lq_bind_tables(L, pb, 1, 2, tables, as_of, 1, uv);
  lq_run_lead_functions(L, pb, b, 2, tables, row, row + 1, uv, &log, id_col);
  push_explained(L, pb, &b->run, &b->scratches[0], row, uv, log.slot);
  return 1;
}

-- rules/sql.lua: the sales-qualified-lead (SQL) model, by BANT: Budget, Authority, Need, Timing.
--
-- Runs AFTER rules/mql.lua in the same run and reads its results (mql.status, mql.total, mql.fit):
--   build/leadq score --rules rules/mql.lua,rules/sql.lua --leads leads.csv
-- Sales development uses it to decide which leads to accept (SAL) and which to turn into
-- opportunities (SQL). Each BANT letter is a group capped at 25 points, so a lead needs at least
-- three of the four letters to reach "sql" (70).

return model "sql" {
  description = "BANT sales qualification, on top of the MQL model's result",

  groups = {
    budget    = { label = "Budget", cap = 25 },
    authority = { label = "Authority", cap = 25 },
    need      = { label = "Need", cap = 25 },
    timing    = { label = "Timing", cap = 25 },
  },

  rules = {
    -- B: can they pay? A stated budget is best; company size is the fallback for "probably can".
    rule "BUDGET_LARGE" {
      label = "Budget of 25,000 or more", group = "budget", points = 25,
      when = { budget = { at_least = 25000 } },
    },
    rule "BUDGET_MEDIUM" {
      label = "Budget of 5,000 to 24,999", group = "budget", points = 15,
      when = { budget = { at_least = 5000, below = 25000 } },
    },
    rule "BUDGET_FROM_SIZE" {     -- no budget given, but a company this size has one
      label = "No stated budget, 500+ employees", group = "budget", points = 10,
      when = { budget = "missing", employees = { at_least = 500 } },
    },

    -- A: can they sign? The economic buyer (C-level, VP) or the one who runs the evaluation.
    -- When enrichment left the seniority empty, the title decides.
    rule "AUTHORITY_SIGNER" {
      label = "C-level or VP", group = "authority", points = 25,
      when = { any = {
        { seniority = { one_of = { "c_level", "vp" } } },
        { seniority = "missing",
          title = { word = { "chief", "ceo", "cmo", "cro", "founder", "owner", "vp", "svp", "vice president" } } },
      } },
    },
    rule "AUTHORITY_EVALUATOR" {
      label = "Director", group = "authority", points = 15,
      when = { any = {
        { seniority = "director" },
        { seniority = "missing", title = { word = { "director", "head of" } } },
      } },
    },
    rule "AUTHORITY_INFLUENCER" {
      label = "Manager", group = "authority", points = 5,
      when = { seniority = "manager" },
    },

    -- N: do they need us? Marketing said the profile fits (the MQL model's fit points).
    rule "NEED_STRONG_FIT" {
      label = "Strong ICP fit in the MQL model (40+)", group = "need", points = 20,
      when = { ["mql.fit"] = { at_least = 40 } },
    },
    rule "NEED_SOME_FIT" {
      label = "Some ICP fit in the MQL model (25 to 39)", group = "need", points = 10,
      when = { ["mql.fit"] = { at_least = 25, below = 40 } },
    },
    rule "NEED_PLAYBOOK" {
      label = "Industry with a ready-made sales playbook", group = "need", points = 5,
      when = { industry = { one_of = { "Software", "IT Services", "Financial Services" } } },
    },

    -- T: will they buy soon? The form says so, or marketing already calls them an MQL.
    rule "TIMING_NOW" {
      label = "Buying within 3 months", group = "timing", points = 25,
      when = { timeline = "0-3 months" },
    },
    rule "TIMING_SOON" {
      label = "Buying in 3 to 6 months", group = "timing", points = 15,
      when = { timeline = "3-6 months" },
    },
    rule "TIMING_MQL" {
      label = "Is an MQL now", group = "timing", points = 10,
      when = { ["mql.status"] = "mql" },
    },
  },

  disqualifiers = {
    -- Marketing already ruled the lead out (competitor, student, internal, fake): sales never sees it.
    disqualify "MQL_DISQUALIFIED" {
      reason = "disqualified by marketing", when = { ["mql.status"] = "disqualified" },
    },
    -- Too weak for a sales call even with every BANT box ticked.
    disqualify "MQL_TOO_LOW" {
      reason = "mql score below 10", when = { ["mql.total"] = { below = 10 } },
    },
  },

  -- 70+: a sales-qualified lead (open an opportunity). 45 to 69: accepted by sales (SAL), keep working.
  thresholds = { sql = 70, sal = 45, otherwise = "not_ready" },
}

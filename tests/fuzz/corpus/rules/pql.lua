-- rules/pql.lua: the default product-qualified-lead (PQL) model.
--
-- Who edits this: marketing and product ops. A PQL is someone who has tried the product and got
-- value out of it: they came back on several days, used the feature that makes customers stay, and
-- brought colleagues in. Sales calls a PQL with the trial in front of them.
--
-- Input: the usage events of the product, in the same events.csv as the marketing events
-- (lead_id, type, at, value), with these types:
--   trial_started        the trial (or free plan) began
--   active_day           the user did something in the product that day (one a day is enough)
--   key_feature_used     the feature our retained customers use in their first week (value: times)
--   seat_invited         the user invited a colleague to their workspace
--   usage_limit_hit      the user ran into a limit of the free plan / trial
--   upgrade_page_viewed  the user opened the upgrade / plans page inside the product
--
-- How a lead is scored
--   1. Each rule whose `when` holds adds its points to its group (activation, team, buying).
--   2. Groups are clamped to their caps, so no one kind of usage carries a lead alone.
--   3. Status: "pql" at 60 points or more, "activated" at 30 or more, "trial" below that.
--      A lead with no usage at all is "no_usage" (a disqualifier: not a product lead, use the MQL).
--
-- Windows count back from the scoring day: `within_days = 7` is the 7 calendar days ending today.
-- "Three active days in the first week" is therefore read as: the trial started in the last 7 days
-- and the user was active on 3+ of them (ACTIVE_FIRST_WEEK), or, for an older trial, the user was
-- active on 3+ days of the last 7 (ACTIVE_LAST_WEEK, the same habit, seen later).

return model "pql" {
  description = "Default product-qualified-lead model: activation, team adoption, buying signals",

  groups = {
    -- Coming back and using the key feature: the user found value.
    activation = { label = "Activation", cap = 50 },
    -- Colleagues in the workspace: the strongest sign that a team, not one person, will buy.
    team       = { label = "Team adoption", cap = 30 },
    -- Hitting limits and looking at plans: the trial is turning into a purchase.
    buying     = { label = "Buying signals", cap = 30 },
    -- A trial gone quiet.
    negative   = { label = "Fading usage", floor = -30 },
  },

  rules = {
    -- Activation ------------------------------------------------------------------------------
    rule "ACTIVE_FIRST_WEEK" {      -- the classic PQL bar: 3+ active days in the trial's first week
      label = "3+ active days in the first week of the trial", group = "activation", points = 30,
      when = { trial_started_at = { within_days = 7 }, active_days_7d = { at_least = 3 } },
    },
    rule "ACTIVE_LAST_WEEK" {       -- an older trial with the same habit
      label = "3+ active days in the last 7 days", group = "activation", points = 20,
      when = { trial_started_at = { older_than_days = 7 }, active_days_7d = { at_least = 3 } },
    },
    rule "KEY_FEATURE" {            -- the feature our retained customers use early
      label = "Used the key feature (14 days)", group = "activation", points = 20,
      when = { key_feature_uses_14d = { at_least = 1 } },
    },
    rule "KEY_FEATURE_HABIT" {      -- and kept using it
      label = "Used the key feature 5+ times (14 days)", group = "activation", points = 10,
      when = { key_feature_uses_14d = { at_least = 5 } },
    },

    -- Team adoption ---------------------------------------------------------------------------
    rule "TEAM_INVITE" {            -- one colleague invited: a strong signal on its own
      label = "Invited a colleague", group = "team", points = 20,
      when = { seats_invited = { at_least = 1 } },
    },
    rule "TEAM_OF_THREE" {          -- three or more: the team is adopting
      label = "Invited 3+ colleagues", group = "team", points = 10,
      when = { seats_invited = { at_least = 3 } },
    },

    -- Buying signals --------------------------------------------------------------------------
    rule "HIT_LIMIT" {              -- outgrew the free plan
      label = "Hit a usage limit (30 days)", group = "buying", points = 15,
      when = { limits_hit_30d = { at_least = 1 } },
    },
    rule "UPGRADE_PAGE" {           -- looked at the plans from inside the product
      label = "Viewed the upgrade page (14 days)", group = "buying", points = 15,
      when = { upgrade_views_14d = { at_least = 1 } },
    },

    -- Fading usage ----------------------------------------------------------------------------
    rule "GONE_QUIET" {             -- no activity for two weeks after starting a trial
      label = "No active day in 14 days", group = "negative", points = -20,
      when = { trial_started_at = "present", days_since_active = { above = 14 } },
    },
  },

  disqualifiers = {
    -- No trial and no activity: not a product lead. The MQL model is the one to read for them.
    disqualify "NO_USAGE" {
      reason = "no product usage",
      when = { trial_started_at = "missing", active_days_all = { at_most = 0 } },
    },
  },

  thresholds = { pql = 60, activated = 30, otherwise = "trial" },

  features = {
    trial_started_at     = feature { first = "trial_started" },
    active_days_7d       = feature { active_days = "active_day", within_days = 7 },
    active_days_all      = feature { active_days = "active_day" },
    days_since_active    = feature { days_since_last = "active_day" },
    key_feature_uses_14d = feature { count = "key_feature_used", within_days = 14 },
    seats_invited        = feature { count = "seat_invited" },
    limits_hit_30d       = feature { count = "usage_limit_hit", within_days = 30 },
    upgrade_views_14d    = feature { count = "upgrade_page_viewed", within_days = 14 },
  },
}

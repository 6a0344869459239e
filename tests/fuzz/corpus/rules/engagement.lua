-- luacheck: read globals model rule disqualify list file feature
-- The OpenResty integration test's and bench's model: a short MQL with event features, so that
-- POST /events moves the score. The test copies this file and edits its points to test reloads.
return model "engagement" {
  description = "Short MQL model with real-time engagement features (tests/test_service.lua)",

  lists = {
    free_email = { "gmail.com", "yahoo.com", "hotmail.com", "outlook.com" },
  },

  groups = {
    fit        = { label = "ICP fit", cap = 50 },
    engagement = { label = "Engagement", cap = 60 },
    negative   = { label = "Negative signals", floor = -60 },
  },

  rules = {
    rule "SENIORITY_VP" {
      label = "Vice president", group = "fit", points = 20,
      when = { seniority = "VP" },
    },
    rule "SIZE_MID_MARKET" {
      label = "200 to 5,000 employees", group = "fit", points = 15,
      when = { employees = { between = { 200, 5000 } } },
    },
    rule "PERSONAL_EMAIL" {
      label = "Personal e-mail address", group = "negative", points = -15,
      when = { email_domain = { one_of = list "free_email" } },
    },
    rule "PRICING_VIEWED" {
      label = "Viewed pricing (30 days)", group = "engagement", points = 10,
      when = { pricing_views_30d = { at_least = 1 } },
    },
    rule "PRICING_VIEWS" {
      label = "Viewed pricing 3+ times in 30 days", group = "engagement", points = 15,
      when = { pricing_views_30d = { at_least = 3 } },
    },
    rule "WEBINAR_ATTENDED" {
      label = "Attended a webinar (90 days)", group = "engagement", points = 10,
      when = { webinars_90d = { at_least = 1 } },
    },
    rule "EMAIL_ENGAGED" {
      label = "Clicks our e-mails", group = "engagement", points = 10,
      when = { email_clicks_decayed = { at_least = 2 } },
    },
  },

  disqualifiers = {
    disqualify "UNSUBSCRIBED" { reason = "unsubscribed", when = { unsubscribed = true } },
  },

  thresholds = { mql = 60, nurture = 25, otherwise = "cold" },

  grades = {
    fit        = { group = "fit",        A = 35, B = 20, C = 10, otherwise = "D" },
    engagement = { group = "engagement", ["1"] = 40, ["2"] = 20, ["3"] = 8, otherwise = "4" },
  },

  features = {
    pricing_views_30d    = feature { count = "pricing_view", within_days = 30 },
    webinars_90d         = feature { count = "webinar_attended", within_days = 90 },
    email_clicks_decayed = feature { decayed = "email_click", half_life_days = 14 },
    page_views_7d        = feature { count = "page_view", within_days = 7 },
  },
}

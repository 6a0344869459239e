-- What happens when a lead's status or grade changes (see rules/README.md, "Reactions").
-- Check it with: leadq check rules/reactions.lua

-- Where the facts go. The secret signing each delivery (X-Leadq-Signature) is read from the
-- environment at start-up, never written here.
webhook "crm" { url = "http://127.0.0.1:8080/hooks/leadq", secret_env = "LEADQ_WEBHOOK_SECRET" }
webhook "manager" { url = "http://127.0.0.1:8080/hooks/sla", secret_env = "LEADQ_WEBHOOK_SECRET" }

-- The MQL model's status changes.
on { model = "mql", to = "mql", webhook = "crm", assign = true, transition = "mql",
     description = "hand the lead to sales" }
on { model = "mql", to = "disqualified", webhook = "crm", transition = "disqualified" }
on { model = "mql", from = "mql", to = "nurture", webhook = "crm", transition = "nurture",
     description = "back to marketing" }
on { model = "mql", grade = true, webhook = "crm" }

-- The sales model (rules/sql.lua reads mql.status) tells sales when BANT is met.
on { model = "sql", to = "sql", webhook = "crm", transition = "sql" }

-- Who gets an MQL: the first route that matches.
team "dach" { owners = { "anna", "bernd" }, capacity = 40 }
team "emea" { owners = { "chloe", "dario", "eva" }, capacity = 30 }
team "americas" { owners = { amy = 50, brian = 50, carlos = 25 } }

route { account_owner = "account_owner", why = "the account is owned" }
route { when = { country = { one_of = { "DE", "AT", "CH" } } }, team = "dach", why = "DACH territory" }
route { when = { country = { one_of = { "GB", "FR", "NL", "ES", "IT", "SE" } } }, team = "emea",
        why = "EMEA territory" }
route { team = "americas", why = "everyone else" }

-- Sales accepts an MQL within 24 working hours (Monday to Friday, 9 to 17 on Berlin's clock,
-- summer time included); a breach goes to the manager.
sla { accept_within_hours = 24, working_hours = { from = 9, to = 17, days = { "mon", "tue", "wed", "thu", "fri" },
      zone = "Europe/Berlin" }, webhook = "manager" }

-- An MQL nobody accepted in 14 days, or that did not move on in 45, goes back to nurture.
recycle { not_accepted_days = 14, not_progressing_days = 45, reason = "not worked by sales", reset_engagement = true }

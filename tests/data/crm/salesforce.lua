-- A Salesforce leads report (Reports > Leads, exported as "Details Only" CSV) into the fields of
-- rules/mql.lua. The report shows times in the running user's zone (here US Eastern standard time,
-- UTC-05:00) as US dates with a 12-hour clock, money with a currency sign, countries by name.
return mapping "salesforce" {
  tz = "-05:00",
  fields = {
    id = "Lead ID",
    email = "Email",
    email_domain = { from = "Email", take = "domain" },
    title = "Title",
    seniority = { from = "Seniority", values = { ["C-Level"] = "c_level", VP = "vp", Director = "director",
      Manager = "manager" } },
    department = { from = "Department", take = "lower" },
    company = "Company / Account",
    employees = { from = "Employees", type = "number" },
    industry = "Industry",
    country = { from = "Country", values = { ["United States"] = "US", Germany = "DE", ["United Kingdom"] = "GB",
      Spain = "ES" } },
    source = { from = "Lead Source", values = { Webinar = "webinar", Web = "organic",
      ["Customer Referral"] = "referral", ["Trade Show"] = "event", ["Paid Search"] = "paid_search",
      Partner = "partner" } },
    created_at = { from = "Created Date", format = "%m/%d/%Y %I:%M %p" },
    budget = { from = "Annual Budget", type = "number" },
    timeline = { from = "Timeline", take = "lower" },
  },
}

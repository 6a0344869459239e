-- The mapping the read_csv bench loads the 1M-lead file through: renames, a domain taken from the
-- e-mail, a lower-cased field, the first non-empty of two columns, a value map, null tokens and
-- declared types: the per-value work a CRM export asks for.
return mapping "bench" {
  null = { "n/a", "-", "NULL", "(none)" },
  fields = {
    id = "id",
    email = "email",
    email_domain = { from = "email", take = "domain" },
    first_name = "first_name",
    title = "title",
    seniority = { from = "seniority", take = "lower" },
    department = "department",
    company = { first_of = { "company", "email_domain" } },
    employees = { from = "employees", type = "number" },
    industry = "industry",
    country = { from = "country", values = { ["United States"] = "US", Germany = "DE", ["United Kingdom"] = "GB" } },
    source = "source",
    campaign = "campaign",
    created_at = { from = "created_at", type = "time" },
    budget = { from = "budget", type = "number" },
    timeline = "timeline",
  },
}

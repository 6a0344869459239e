return model "m" {
  rules = { rule "F" { points = function(lead) return #(lead.title or "") end, when = { title = { matches = "^vp.-sales" } } } },
  thresholds = { hot = 10, otherwise = "cold" },
}

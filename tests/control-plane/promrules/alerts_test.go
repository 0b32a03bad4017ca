package main

// TestAlerts evaluates the alerting rules of one rule file over time series, with Prometheus'
// own rule evaluation (rules.AlertingRule) and test storage (promqltest's `load` syntax), and
// checks which alerts fire when. It is how the chart's alerts are shown to fire, and to stay
// quiet, in the situations they are written for.
//
// PROMRULES_RULES names the rule file, PROMRULES_CASES a YAML list of cases:
//
//	- name: the operator is down
//	  load: |
//	    load 1m
//	      up{job="x"} 1 1 0 0 0 0 0 0 0 0
//	  at: 10m
//	  firing: [SomeAlert]
//
// Rules are evaluated every 30 s from time 0 to `at`; `firing` lists exactly the alerts firing
// then (none when empty).

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

type alertCase struct {
	Name   string         `yaml:"name"`
	Load   string         `yaml:"load"`
	At     model.Duration `yaml:"at"`
	Firing []string       `yaml:"firing"`
}

func TestAlerts(t *testing.T) {
	rulesFile, casesFile := os.Getenv("PROMRULES_RULES"), os.Getenv("PROMRULES_CASES")
	if rulesFile == "" || casesFile == "" {
		t.Fatal("PROMRULES_RULES and PROMRULES_CASES must name the rule file and the cases")
	}
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, p, nil)
	for _, err := range errs {
		t.Fatal(err)
	}
	text, err := os.ReadFile(casesFile)
	if err != nil {
		t.Fatal(err)
	}
	var cases []alertCase
	if err := yaml.Unmarshal(text, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			storage := promqltest.LoadedStorage(t, c.Load)
			engine := promqltest.NewTestEngine(t, false, 5*time.Minute, 50000000)
			query := rules.EngineQueryFunc(engine, storage)
			var alerting []*rules.AlertingRule
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					if r.Alert == "" {
						continue
					}
					expr, err := p.ParseExpr(r.Expr)
					if err != nil {
						t.Fatalf("%s: %v", r.Alert, err)
					}
					alerting = append(alerting, rules.NewAlertingRule(
						r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
						labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(),
						"", true, nil,
					))
				}
			}
			start := time.Unix(0, 0).UTC()
			for ts := time.Duration(0); ts <= time.Duration(c.At); ts += 30 * time.Second {
				for _, rule := range alerting {
					if _, err := rule.Eval(context.Background(), 0, start.Add(ts), query, nil, 0); err != nil {
						t.Fatalf("%s at %s: %v", rule.Name(), ts, err)
					}
				}
			}
			var firing []string
			for _, rule := range alerting {
				for _, a := range rule.ActiveAlerts() {
					if a.State == rules.StateFiring && !slices.Contains(firing, rule.Name()) {
						firing = append(firing, rule.Name())
					}
				}
			}
			want := slices.Clone(c.Firing)
			slices.Sort(firing)
			slices.Sort(want)
			if !slices.Equal(firing, want) {
				t.Errorf("at %s: firing %v, want %v", time.Duration(c.At), firing, want)
			}
		})
	}
}

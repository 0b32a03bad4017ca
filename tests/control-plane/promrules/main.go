// Command promrules checks Prometheus rule files the way Prometheus loads them: every group,
// alert, PromQL expression and annotation template. It is `promtool check rules` without the
// rest of promtool (whose service discovery would pull in every cloud SDK).
//
// Usage: promrules FILE...
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	failed := false
	for _, file := range os.Args[1:] {
		groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), nil)
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, err)
			failed = true
		}
		if len(errs) == 0 {
			rules := 0
			for _, g := range groups.Groups {
				rules += len(g.Rules)
			}
			fmt.Printf("%s: %d rules ok\n", file, rules)
		}
	}
	if failed || len(os.Args) < 2 {
		os.Exit(1)
	}
}

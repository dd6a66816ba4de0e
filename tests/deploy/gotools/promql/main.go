// Command promql parses PromQL expressions with Prometheus's own parser and reports,
// per expression, the parse error or what the expression reads: the series it selects
// with their matcher labels, and the labels it groups or matches by.
//
// Input: a JSON array of expressions on stdin. Output: a JSON array, in order, of
// {"error", "type", "selectors": [{"name", "labels"}], "grouping": [label]}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

type selector struct {
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
}

type report struct {
	Error     string     `json:"error"`
	Type      string     `json:"type"`
	Selectors []selector `json:"selectors"`
	Grouping  []string   `json:"grouping"`
}

func inspect(p parser.Parser, input string) report {
	out := report{Selectors: []selector{}, Grouping: []string{}}
	expr, err := p.ParseExpr(input)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Type = string(expr.Type())
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			s := selector{Name: n.Name, Labels: []string{}}
			for _, m := range n.LabelMatchers {
				if m.Name != "__name__" {
					s.Labels = append(s.Labels, m.Name)
				}
			}
			out.Selectors = append(out.Selectors, s)
		case *parser.AggregateExpr:
			out.Grouping = append(out.Grouping, n.Grouping...)
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				out.Grouping = append(out.Grouping, n.VectorMatching.MatchingLabels...)
				out.Grouping = append(out.Grouping, n.VectorMatching.Include...)
			}
		}
		return nil
	})
	return out
}

func main() {
	var inputs []string
	if err := json.NewDecoder(os.Stdin).Decode(&inputs); err != nil {
		fmt.Fprintln(os.Stderr, "promql: stdin must be a JSON array of strings:", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	reports := make([]report, 0, len(inputs))
	for _, input := range inputs {
		reports = append(reports, inspect(p, input))
	}
	if err := json.NewEncoder(os.Stdout).Encode(reports); err != nil {
		fmt.Fprintln(os.Stderr, "promql:", err)
		os.Exit(1)
	}
}

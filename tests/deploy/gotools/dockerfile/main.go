// Command dockerfile lints a Dockerfile as `docker build --check` does, with BuildKit's
// own Dockerfile frontend, offline: base images are not looked up in a registry but
// given a minimal image configuration, so the check needs no Docker engine and no
// network.
//
// Usage: dockerfile PATH. Output: one JSON object {"error", "warnings": [{"rule",
// "detail", "line"}]}; the exit status is 0 whenever the file could be read.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	digest "github.com/opencontainers/go-digest"
)

// offlineImages answers every base image with the same minimal configuration.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config := `{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"]}}`
	return ref, "", []byte(config), nil
}

type warning struct {
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
	Line   int32  `json:"line"`
}

type report struct {
	Error    string    `json:"error"`
	Warnings []warning `json:"warnings"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile PATH")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	scratch := llb.Scratch()
	definition, err := scratch.Marshal(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile:", err)
		os.Exit(1)
	}
	source := llb.NewSourceMap(&scratch, "Dockerfile", "Dockerfile", data)
	source.Definition = definition
	results, err := dockerfile2llb.DockerfileLint(ctx, data, dockerfile2llb.ConvertOpt{
		SourceMap:    source,
		MetaResolver: offlineImages{},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile:", err)
		os.Exit(1)
	}
	out := report{Warnings: []warning{}}
	if results.Error != nil {
		out.Error = results.Error.Message
	}
	for _, w := range results.Warnings {
		line := int32(0)
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = w.Location.Ranges[0].Start.Line
		}
		out.Warnings = append(out.Warnings, warning{Rule: w.RuleName, Detail: w.Detail, Line: line})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile:", err)
		os.Exit(1)
	}
}

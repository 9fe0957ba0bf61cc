package spec

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

type file struct {
	Clusters []Cluster `hcl:"cluster,block"`
}

// ReadFile reads and decodes a spec file. It returns HCL diagnostics that name the file, line and
// field for syntax errors and unknown or mistyped fields; call Validate for everything else.
func ReadFile(path string) (*Cluster, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read spec", Detail: err.Error()}}
	}
	return Parse(src, path)
}

// Parse decodes a spec from HCL source; filename is used in diagnostics.
func Parse(src []byte, filename string) (*Cluster, hcl.Diagnostics) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	var decoded file
	if d := gohcl.DecodeBody(f.Body, evalContext(filename), &decoded); d.HasErrors() {
		return nil, d
	}
	if len(decoded.Clusters) != 1 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Exactly one cluster block is required",
			Detail:   fmt.Sprintf("%s holds %d cluster blocks; a spec describes one cluster.", filename, len(decoded.Clusters)),
			Subject:  rangePtr(f.Body.MissingItemRange()),
		}}
	}
	c := decoded.Clusters[0]
	c.Filename = filename
	c.Source = src
	c.Ranges = map[string]hcl.Range{}
	for i := range c.Controllers {
		c.Controllers[i].Role = RoleController
	}
	for i := range c.Workers {
		c.Workers[i].Role = RoleWorker
	}
	if c.Bootstrap != nil {
		c.Bootstrap.Role = RoleBootstrap
	}
	recordRanges(f.Body.(*hclsyntax.Body), c.Ranges)
	return &c, c.Platform.decode(evalContext(filename))
}

// recordRanges walks the syntax tree and records where every attribute (and every element of a list
// attribute) was written, keyed by the field paths that Problems use.
func recordRanges(root *hclsyntax.Body, ranges map[string]hcl.Range) {
	for _, b := range root.Blocks {
		if b.Type != "cluster" {
			continue
		}
		ranges["cluster"] = b.DefRange()
		recordAttrs(b.Body, "cluster", ranges)
		for _, inner := range b.Body.Blocks {
			prefix := inner.Type
			if len(inner.Labels) > 0 {
				prefix = inner.Type + "." + inner.Labels[0]
			}
			ranges[prefix] = inner.DefRange()
			recordAttrs(inner.Body, prefix, ranges)
		}
	}
}

func recordAttrs(body *hclsyntax.Body, prefix string, ranges map[string]hcl.Range) {
	for name, a := range body.Attributes {
		key := prefix + "." + name
		ranges[key] = a.Expr.Range()
		if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
			for i, e := range t.Exprs {
				ranges[fmt.Sprintf("%s[%d]", key, i)] = e.Range()
			}
		}
		if o, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok {
			for _, item := range o.Items {
				if k, d := item.KeyExpr.Value(nil); !d.HasErrors() && k.Type().FriendlyName() == "string" {
					ranges[fmt.Sprintf("%s[%q]", key, k.AsString())] = item.KeyExpr.Range()
				}
			}
		}
	}
}

func rangePtr(r hcl.Range) *hcl.Range { return &r }

// evalContext offers file(PATH), relative to the spec's directory, so snippets can live in their own files.
func evalContext(filename string) *hcl.EvalContext {
	dir := filepath.Dir(filename)
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"file": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				p := args[0].AsString()
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(string(b)), nil
			},
		}),
	}}
}

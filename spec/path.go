package spec

import (
	"fmt"
	"slices"
	"strings"
)

// Path is where a value is in a spec, as typed steps from the top (like Butane's
// path.ContextPath): a block or attribute name, a block's label, a map key, a list index. The CLI
// finds its file and line from it, the Terraform provider the attribute it was given as; String is
// the field as problems print it, like `worker.node4.labels["zone"]`.
type Path struct{ steps []Step }

// Step is one step of a Path.
type Step struct {
	Kind StepKind
	// Name is the block or attribute name (StepName), the block's label (StepLabel) or the map
	// key (StepKey).
	Name string
	// Index is the list index (StepIndex).
	Index int
}

// StepKind tells what a Step is.
type StepKind int

// The kinds of steps.
const (
	StepName StepKind = iota
	StepLabel
	StepKey
	StepIndex
)

// At is the path of a block or attribute and the attributes below it: At("cluster", "pod_cidr").
func At(names ...string) Path {
	var p Path
	for _, n := range names {
		p = p.Attr(n)
	}
	return p
}

// Block is the path of a labelled block: Block("worker", "node4"), Block("platform", "matchbox").
func Block(typ, label string) Path { return At(typ).Label(label) }

// MachinePath is the path of a machine's block: its role and name.
func MachinePath(n Node) Path { return Block(n.Role, n.Name) }

func (p Path) with(s Step) Path { return Path{append(slices.Clip(p.steps), s)} }

// Attr is the path of an attribute or block below p.
func (p Path) Attr(name string) Path { return p.with(Step{Kind: StepName, Name: name}) }

// Label is the path of p's block with this label.
func (p Path) Label(label string) Path { return p.with(Step{Kind: StepLabel, Name: label}) }

// Key is the path of a map's entry.
func (p Path) Key(key string) Path { return p.with(Step{Kind: StepKey, Name: key}) }

// Index is the path of a list's item.
func (p Path) Index(i int) Path { return p.with(Step{Kind: StepIndex, Index: i}) }

// Steps returns the path's steps.
func (p Path) Steps() []Step { return slices.Clone(p.steps) }

// String is the field as problems print it.
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p.steps {
		switch s.Kind {
		case StepName, StepLabel:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Name)
		case StepKey:
			fmt.Fprintf(&b, "[%q]", s.Name)
		case StepIndex:
			fmt.Fprintf(&b, "[%d]", s.Index)
		}
	}
	return b.String()
}

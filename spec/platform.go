package spec

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// Platform kinds of the platforms liftoff ships: the label of a spec's platform block.
const (
	PlatformMatchbox = "matchbox"
	PlatformAWS      = "aws"
	PlatformVagrant  = "vagrant"
)

// Platform selects where the cluster runs and holds that platform's settings. The HCL reader
// decodes the block's body into Settings; the Terraform provider sets it directly.
type Platform struct {
	Kind string   `hcl:"kind,label"`
	Body hcl.Body `hcl:",remain"`

	// Settings is the platform's settings: a pointer to the struct its package registered
	// (PlatformDef.Settings), which the platform's code reads back with its own type.
	Settings any
	// Also names other platforms whose settings were given as well (the Terraform provider's
	// platform argument may hold several); a spec has one platform, so Complete refuses them.
	Also []string
}

// PlatformDef is a platform as its package registers it (platforms.Register): everything the spec,
// its validation, the CLI and the Terraform provider need to know of it.
type PlatformDef struct {
	// Kind is the platform block's label, like "matchbox".
	Kind string
	// Summary says in a sentence or two what the platform is, for docs and the Terraform schema.
	Summary string
	// Settings returns new, empty settings: a pointer to a struct whose exported fields carry an
	// `hcl` tag (the setting's name, ",optional" when it may be left out) and are strings, bools,
	// ints, lists of strings or maps of strings; the struct is a SettingsDocs.
	Settings func() any
	// Validate checks a completed spec for what the platform needs: its settings and what it asks
	// of the rest of the spec (a MAC on every bare-metal machine).
	Validate PlatformValidator
}

// decode fills Settings from the HCL body with the registered platform's settings type. It is a
// no-op for a spec without a platform block.
func (p *Platform) decode(ctx *hcl.EvalContext) hcl.Diagnostics {
	if p == nil || p.Body == nil {
		return nil
	}
	def, ok := LookupPlatform(p.Kind)
	if !ok {
		r := p.Body.MissingItemRange()
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown platform",
			Detail:   fmt.Sprintf("platform %q is not one of %s.", p.Kind, strings.Join(quoteAll(PlatformKinds()), ", ")),
			Subject:  &r,
		}}
	}
	p.Settings = def.Settings()
	return gohcl.DecodeBody(p.Body, ctx, p.Settings)
}

// PlatformKinds lists the kinds of the registered platforms, sorted.
func PlatformKinds() []string {
	platforms.RLock()
	defer platforms.RUnlock()
	out := make([]string, 0, len(platforms.m))
	for k := range platforms.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LookupPlatform returns the registered platform of a kind.
func LookupPlatform(kind string) (PlatformDef, bool) {
	platforms.RLock()
	defer platforms.RUnlock()
	d, ok := platforms.m[kind]
	return d, ok
}

// PlatformValidator checks a completed spec (after defaults) for what one platform needs: its own
// settings and what it asks of the rest of the spec (a MAC on every bare-metal machine). Problems
// name fields like "platform.matchbox.install_disk" or "controller.node1.mac".
type PlatformValidator func(*Cluster) Problems

// SettingsDocs is what a platform's settings type says of its settings.
type SettingsDocs interface {
	// Docs describes each setting by its name, in Markdown.
	Docs() map[string]string
}

var platforms = struct {
	sync.RWMutex
	m map[string]PlatformDef
}{m: map[string]PlatformDef{}}

// RegisterPlatform makes a platform one a spec may name: the reader decodes its block into its
// settings and Complete runs its validation. Platform packages register themselves when they are
// initialised; a program that reads specs imports them all (platforms/all) so that every caller of
// Complete knows the same platforms.
func RegisterPlatform(d PlatformDef) {
	platforms.Lock()
	defer platforms.Unlock()
	if _, dup := platforms.m[d.Kind]; dup {
		panic("spec: platform " + d.Kind + " registered twice")
	}
	platforms.m[d.Kind] = d
}

// PlatformField is the path of a platform setting.
func PlatformField(kind, setting string) Path { return Block("platform", kind).Attr(setting) }

// platformProblems checks the platform block's shape and runs its platform's validator.
func platformProblems(c *Cluster) Problems {
	p := c.Platform
	if p == nil {
		return nil
	}
	field := Block("platform", p.Kind)
	def, ok := LookupPlatform(p.Kind)
	switch {
	case !ok && p.Settings == nil && len(PlatformKinds()) == 0:
		return Problems{{Path: field, Summary: "Platform not built in", Detail: fmt.Sprintf("this program cannot check or render platform %q: it must import github.com/liftoff-k8s/liftoff/platforms/all", p.Kind)}}
	case !ok:
		return Problems{{Path: field, Summary: "Unknown platform", Detail: fmt.Sprintf("%q is not one of %s", p.Kind, strings.Join(quoteAll(PlatformKinds()), ", "))}}
	case p.Settings == nil:
		return Problems{{Path: field, Summary: "Missing platform settings", Detail: fmt.Sprintf("the platform is %q but its settings block is not set", p.Kind)}}
	case len(p.Also) > 0:
		others := append([]string{}, p.Also...)
		sort.Strings(others)
		return Problems{{Path: field, Summary: "Settings of another platform", Detail: fmt.Sprintf("the platform is %q but settings for %s are set too", p.Kind, strings.Join(others, ", "))}}
	}
	if def.Validate == nil {
		return nil
	}
	return def.Validate(c)
}

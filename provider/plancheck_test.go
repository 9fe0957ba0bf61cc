package provider

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// Plan checks that read terraform's JSON plan of one liftoff_cluster.

// How a map entry fares in a plan.
const (
	same    = "same"    // known and equal to before
	changed = "changed" // known and different
	unknown = "unknown" // known only after apply
	added   = "added"   // new and known
	removed = "removed" // gone
)

// mapEntries checks each key of a map attribute against want (key → same, changed, unknown,
// added or removed); every key before or after the plan must be in want.
type mapEntries struct {
	resource, attribute string
	want                map[string]string
}

func (c mapEntries) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	rc, err := resourceChange(req.Plan, c.resource)
	if err != nil {
		resp.Error = err
		return
	}
	got := entryFates(rc.Change, c.attribute)
	if !reflect.DeepEqual(got, c.want) {
		resp.Error = fmt.Errorf("%s.%s: plan has %s, want %s", c.resource, c.attribute, describe(got), describe(c.want))
	}
}

// unchangedEntries checks that every key a map attribute had in a snapshot of state is the same in
// the plan, except those in except, which must fare as it says.
type unchangedEntries struct {
	resource, attribute string
	snap                *snapshot
	except              map[string]string
}

func (c unchangedEntries) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	rc, err := resourceChange(req.Plan, c.resource)
	if err != nil {
		resp.Error = err
		return
	}
	got := entryFates(rc.Change, c.attribute)
	n := 0
	for k := range *c.snap {
		rest, ok := strings.CutPrefix(k, c.attribute+".")
		if !ok || rest == "%" {
			continue
		}
		n++
		want, ok := c.except[rest]
		if !ok {
			want = same
		}
		if got[rest] != want {
			resp.Error = fmt.Errorf("%s.%s[%q]: plan has %s, want %s", c.resource, c.attribute, rest, got[rest], want)
			return
		}
	}
	if n == 0 {
		resp.Error = fmt.Errorf("the snapshot holds no %s", c.attribute)
	}
}

// entryFates says how each key of a map attribute fares in a change.
func entryFates(ch *tfjson.Change, attribute string) map[string]string {
	before, _ := asMap(ch.Before)[attribute].(map[string]any)
	after, _ := asMap(ch.After)[attribute].(map[string]any)
	unknownAll, _ := asMap(ch.AfterUnknown)[attribute].(bool)
	unknownKeys, _ := asMap(ch.AfterUnknown)[attribute].(map[string]any)
	got := map[string]string{}
	for k, v := range before {
		switch a, ok := after[k]; {
		case unknownAll || unknownKeys[k] == true:
			got[k] = unknown
		case !ok:
			got[k] = removed
		case reflect.DeepEqual(a, v):
			got[k] = same
		default:
			got[k] = changed
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			got[k] = added
		}
	}
	for k, u := range unknownKeys {
		if _, ok := before[k]; !ok && u == true {
			got[k] = unknown
		}
	}
	return got
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func describe(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

func resourceChange(p *tfjson.Plan, address string) (*tfjson.ResourceChange, error) {
	for _, rc := range p.ResourceChanges {
		if rc.Address == address {
			return rc, nil
		}
	}
	return nil, fmt.Errorf("the plan has no change for %s", address)
}

// certificateFates checks which certificates' not_after the plan knows: want maps a certificate
// path to same or unknown.
type certificateFates struct {
	resource string
	want     map[string]string
}

func (c certificateFates) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	rc, err := resourceChange(req.Plan, c.resource)
	if err != nil {
		resp.Error = err
		return
	}
	before, _ := asMap(rc.Change.Before)["certificates"].([]any)
	after, _ := asMap(rc.Change.After)["certificates"].([]any)
	unknowns, _ := asMap(rc.Change.AfterUnknown)["certificates"].([]any)
	was := map[string]any{}
	for _, b := range before {
		was[asMap(b)["path"].(string)] = asMap(b)["not_after"]
	}
	got := map[string]string{}
	for i, a := range after {
		p, _ := asMap(a)["path"].(string)
		switch {
		case i < len(unknowns) && asMap(unknowns[i])["not_after"] == true:
			got[p] = unknown
		case asMap(a)["not_after"] == was[p]:
			got[p] = same
		default:
			got[p] = changed
		}
	}
	for p, w := range c.want {
		if got[p] != w {
			resp.Error = fmt.Errorf("certificate %s: plan has %q, want %q (all: %s)", p, got[p], w, describe(got))
			return
		}
	}
}

// sensitiveAttributes checks that terraform hides the named attributes in the plan, before and after.
type sensitiveAttributes struct {
	resource   string
	attributes []string
}

func (c sensitiveAttributes) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	rc, err := resourceChange(req.Plan, c.resource)
	if err != nil {
		resp.Error = err
		return
	}
	for _, a := range c.attributes {
		if asMap(rc.Change.AfterSensitive)[a] != true {
			resp.Error = fmt.Errorf("%s.%s is not sensitive in the plan", c.resource, a)
			return
		}
		if rc.Change.Before != nil && asMap(rc.Change.BeforeSensitive)[a] != true {
			resp.Error = fmt.Errorf("%s.%s was not sensitive before the plan", c.resource, a)
			return
		}
	}
}

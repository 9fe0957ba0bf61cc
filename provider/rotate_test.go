package provider

import (
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

// TestRotatedTokens checks which tokens a change of rotate_bootstrap_tokens replaces: those whose
// value changed or is new, by pool or machine name, and that an unknown name is refused.
func TestRotatedTokens(t *testing.T) {
	c := &spec.Cluster{Controllers: []spec.Node{{Name: "c1"}}, Workers: []spec.Node{{Name: "w1"}},
		WorkerPools: []spec.WorkerPool{{Name: "general"}}}
	got, err := rotatedTokens(c, map[string]string{"general": "1", "w1": "a"}, map[string]string{"general": "2", "w1": "a", "c1": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"machines/c1", "pools/general"}; !slices.Equal(got, want) {
		t.Errorf("rotated %v, want %v", got, want)
	}
	if _, err := rotatedTokens(c, nil, map[string]string{"gpu": "1"}); err == nil || !strings.Contains(err.Error(), `rotate_bootstrap_tokens["gpu"]`) {
		t.Errorf("an unknown name: %v", err)
	}
}

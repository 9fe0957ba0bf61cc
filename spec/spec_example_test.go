package spec_test

import (
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

func TestExampleSpecIsValid(t *testing.T) {
	c, diags := spec.ReadFile("../examples/demo/cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Controllers) != 3 || len(full.Workers) != 1 || full.Controllers[0].Role != spec.RoleController {
		t.Fatalf("unexpected machines: %+v", full.Machines())
	}
}

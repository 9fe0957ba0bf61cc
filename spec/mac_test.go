package spec_test

import (
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

// TestMACAddressesNormalized checks that a MAC address is accepted in any form Go's net.ParseMAC
// reads and is written lowercase with colons, and that two spellings of one MAC are one MAC.
func TestMACAddressesNormalized(t *testing.T) {
	c := func(macs ...string) *spec.Cluster {
		out := &spec.Cluster{Name: "macs", APIServer: "https://10.0.0.10:6443", AllowEvenControllers: true}
		for i, m := range macs {
			out.Controllers = append(out.Controllers, spec.Node{Name: "c" + string(rune('1'+i)), IP: "10.0.0." + string(rune('1'+i)) + "1", MAC: m})
		}
		return out
	}
	for _, in := range []string{"0C-C4-7A-10-20-32", "0cc4.7a10.2032", "0C:C4:7A:10:20:32", "0c:c4:7a:10:20:32"} {
		full, err := spec.Complete(c(in))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := full.Controllers[0].MAC; got != "0c:c4:7a:10:20:32" {
			t.Errorf("%s became %s, want 0c:c4:7a:10:20:32", in, got)
		}
	}
	_, err := spec.Complete(c("0C-C4-7A-10-20-32", "0c:c4:7a:10:20:32"))
	if err == nil || !strings.Contains(err.Error(), "mac") {
		t.Errorf("one MAC spelled two ways for two machines: %v", err)
	}
	for _, bad := range []string{"0c:c4:7a:10:20", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "zz:c4:7a:10:20:32"} {
		if _, err := spec.Complete(c(bad)); err == nil || !strings.Contains(err.Error(), "Invalid MAC address") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

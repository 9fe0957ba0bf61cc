package harness

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Render renders the spec at specPath into outDir, as `liftoff render` does, with the one change a
// local cluster needs in its spec: the kubelet, etcd and the CNI plugins are downloaded from the
// harness's release host on the cluster's gateway, pinned by sha512 (see local.go). The bootstrap
// tokens of the owners in rotateTokens are replaced, as `liftoff token rotate` does.
func Render(ctx context.Context, specPath, outDir string, rotateTokens ...string) error {
	c, diags := spec.ReadFile(specPath)
	if diags.HasErrors() {
		return fmt.Errorf("%s: %s", specPath, diags.Error())
	}
	u, err := url.Parse(c.APIServer)
	if err != nil {
		return fmt.Errorf("%s: api_server: %w", specPath, err)
	}
	lb, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return fmt.Errorf("%s: api_server %s: the harness needs an IP address: %w", specPath, c.APIServer, err)
	}
	_, gateway, err := gatewayOf(lb)
	if err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	kubelet, etcd, cni, err := releaseArtifacts(ctx)
	if err != nil {
		return err
	}
	localDownloads(c, gateway, kubelet, etcd, cni)
	full, err := spec.Complete(c)
	if err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	if _, err := render.Into(full, outDir, generator.Options{Now: time.Now(), RotateTokens: rotateTokens}); err != nil {
		return fmt.Errorf("rendering %s: %w", specPath, err)
	}
	return nil
}

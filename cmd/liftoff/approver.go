package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liftoff-k8s/liftoff/csrapprover"
	"github.com/liftoff-k8s/liftoff/generator"
)

func kubeletServingApproverCommand() *cobra.Command {
	var kubeconfig, leaseNamespace, leaseName string
	cmd := &cobra.Command{
		Use:   "kubelet-serving-approver",
		Short: "Approve kubelets' serving certificate requests that name only their own node",
		Long: `kubelet-serving-approver watches certificate signing requests for the signer
kubernetes.io/kubelet-serving and approves one only when a node's kubelet (user system:node:NAME in
group system:nodes) asks for a serving certificate whose subject is that node, whose usages are
digital signature and server auth (key encipherment allowed), and whose DNS names and IP addresses
are all that Node's own. Every other such request is denied with the check it failed; requests for
other signers are left alone.

It runs in the cluster (manifests/35-kubelet-serving-approver.yaml) with its service account, or
elsewhere with --kubeconfig. Replicas elect a leader through a Lease; only the leader decides.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := inClusterOrKubeconfig(kubeconfig)
			if err != nil {
				return err
			}
			host, err := os.Hostname()
			if err != nil {
				return err
			}
			// Two processes on one host (or two pods of one name) must not share an identity.
			suffix := make([]byte, 4)
			rand.Read(suffix)
			return csrapprover.Run(cmd.Context(), csrapprover.Options{
				Config: cfg, LeaseNamespace: leaseNamespace, LeaseName: leaseName,
				Identity: host + "_" + hex.EncodeToString(suffix),
			})
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig to reach the API with (default: the pod's service account)")
	cmd.Flags().StringVar(&leaseNamespace, "lease-namespace", "kube-system", "namespace of the leader election Lease")
	cmd.Flags().StringVar(&leaseName, "lease-name", generator.KubeletServingApprover, "name of the leader election Lease")
	return cmd
}

// inClusterOrKubeconfig reaches the API with the kubeconfig, or without one as the pod's service account.
func inClusterOrKubeconfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("not running in a pod with a service account (%w); pass --kubeconfig", err)
	}
	return cfg, nil
}

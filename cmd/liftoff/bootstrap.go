package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/bootstrap"
)

func bootstrapCommand() *cobra.Command {
	var dir, kubeconfig, from, output, secretsListen string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "bootstrap --dir DIR",
		Short: "Bring a rendered cluster's control plane up: apply its manifests and, when self-hosted, pivot",
		Long: `Bootstrap waits until the cluster's API answers, applies the manifests rendered into
DIR/manifests with server-side apply (field manager "liftoff"): namespaces first, then custom
resource definitions (waiting until each is served), then everything else in file order. Then it
watches until the control plane is Ready on every controller and every controller Node is Ready.

For a self-hosted cluster this is the pivot. The first controller's kubelet runs the bootstrap
control plane from static pods; the manifests hold the permanent one (an apiserver DaemonSet,
controller-manager and scheduler Deployments), created through the bootstrap API. Once every
self-hosted replica is Ready, the liftoff agent on that controller removes the bootstrap pods, and
bootstrap proves the API still answers through the endpoint and that the leader leases are held by
self-hosted pods. The two apiservers share one port, so the API is served throughout; a client
calling it all along is measured and reported ("handover"). Nothing is removed when a stage fails.

Stages: wait-for-api, namespaces, crds, manifests, control-plane, teardown (self-hosted only),
verify. Each has its own deadline and is recorded in the ConfigMap kube-system/liftoff-bootstrap
(stage, start, end, result, detail). A failed stage names what was missing and why (pods not Ready
with their conditions, restarts and last exit; Nodes NotReady), says the likeliest cause (API
endpoint unreachable, certificate SAN mismatch, etcd without quorum, image not pullable, a pod
crash-looping with its last log lines) and writes a diagnosis (pods, events, Nodes, the last log
lines of the control plane, etcd's members, the stage records) to DIR.diagnosis/TIME, whose path
it prints. While waiting, a line is printed
whenever the state changes and at least every 10 s. Every stage can be run again: after an
interruption, run bootstrap again (or resume with --from); on a cluster already bootstrapped with
the same manifests it does nothing and says so.

When the machines fetch their secrets (machine_secrets.server), bootstrap serves each machine its
own over HTTPS on that address while it runs, only to the machine's address, and names the machines
that had not fetched theirs when it ends (serve those with ` + "`liftoff serve-secrets`" + `).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := bootstrap.Options{Dir: dir, Kubeconfig: kubeconfig, Timeout: timeout, SecretsListen: secretsListen}
			if from != "" {
				st, err := bootstrap.ParseStage(from)
				if err != nil {
					return fmt.Errorf("--from: %w", err)
				}
				opts.From = st
			}
			switch output {
			case "text":
				opts.Progress = bootstrap.TextProgress(cmd.OutOrStdout())
			case "json":
				opts.Progress = bootstrap.JSONProgress(cmd.OutOrStdout())
			default:
				return fmt.Errorf("--output must be text or json, not %q", output)
			}
			_, err := bootstrap.Run(cmd.Context(), opts)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "rendered output directory")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with cluster-admin rights (default DIR/"+bootstrap.AdminKubeconfig+")")
	cmd.Flags().DurationVar(&timeout, "timeout", bootstrap.DefaultTimeout, "give up after this long, saying what was still missing")
	cmd.Flags().StringVar(&from, "from", "", "resume at this stage (wait-for-api, namespaces, crds, manifests, control-plane, teardown, verify)")
	cmd.Flags().StringVar(&output, "output", "text", "progress format: text or json")
	cmd.Flags().StringVar(&secretsListen, "secrets-listen", "", "where to serve the machines their secrets (default machine_secrets.server), e.g. 0.0.0.0:9443 behind a forwarded port")
	cmd.MarkFlagRequired("dir")
	return cmd
}

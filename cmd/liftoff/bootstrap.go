package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/bootstrap"
)

func bootstrapCommand() *cobra.Command {
	var dir, kubeconfig, from, output string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "bootstrap --dir DIR",
		Short: "Wait for a rendered cluster's API, then apply its manifests",
		Long: `Bootstrap waits until the cluster's API answers, then applies the manifests rendered into
DIR/manifests with server-side apply (field manager "liftoff"): namespaces first, then custom
resource definitions (waiting until each is served), then everything else in file order.

It prints one line per step (stage, object, result). Running it again against a live cluster is
safe: objects already as rendered are reported unchanged. Transient API errors are retried until
--timeout; an object the API rejects stops the run with its file and name. A failed run can resume
at the stage that failed with --from.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := bootstrap.Options{Dir: dir, Kubeconfig: kubeconfig, Timeout: timeout}
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
			return bootstrap.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "rendered output directory")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with cluster-admin rights (default DIR/"+bootstrap.AdminKubeconfig+")")
	cmd.Flags().DurationVar(&timeout, "timeout", bootstrap.DefaultTimeout, "give up after this long, saying what was still missing")
	cmd.Flags().StringVar(&from, "from", "", "resume at this stage (one of wait-for-api, namespaces, crds, manifests)")
	cmd.Flags().StringVar(&output, "output", "text", "progress format: text or json")
	cmd.MarkFlagRequired("dir")
	return cmd
}

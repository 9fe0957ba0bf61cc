package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/bootstrap"
)

func serveSecretsCommand() *cobra.Command {
	var dir, listen string
	cmd := &cobra.Command{
		Use:   "serve-secrets --dir DIR",
		Short: "Serve machines that fetch their secrets (machine_secrets.server) their keys and credentials",
		Long: `Serve-secrets serves each machine of the render in DIR its own private keys and credentials over
HTTPS, as ` + "`liftoff bootstrap`" + ` does while it runs: for machines added or re-provisioned later. A
machine is served only its own, only to its own address, and checks the server against the cluster
CA. It runs until interrupted, printing every request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := bootstrap.ServeSecrets(dir, listen, bootstrap.TextProgress(cmd.OutOrStdout()))
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("the machines of %s carry their secrets in their Ignition configs (no machine_secrets.server): there is nothing to serve", dir)
			}
			<-cmd.Context().Done()
			return s.Close()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "rendered output directory")
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (default machine_secrets.server)")
	cmd.MarkFlagRequired("dir")
	return cmd
}

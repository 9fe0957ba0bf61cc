package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/internal/versions"
)

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print liftoff's version and the versions it renders by default",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "liftoff %s (Kubernetes %s, etcd %s, Ignition spec %s)\n",
				versions.Liftoff, versions.Kubernetes, versions.Etcd, versions.IgnitionSpec)
		},
	}
}

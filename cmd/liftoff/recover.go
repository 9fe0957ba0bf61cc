package main

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/recovery"
)

func recoverCommand() *cobra.Command {
	var opts recovery.Options
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Rebuild a self-hosted cluster's bootstrap control plane from etcd, for the pivot to run again",
		Long: `recover rebuilds the bootstrap control plane of a self-hosted cluster whose control plane cannot
come back by itself: every controller-manager and scheduler gone, or every controller lost together
with its checkpoints. It reads the self-hosted apiserver DaemonSet and the controller-manager and
scheduler Deployments as etcd last stored them, from the controllers' running etcd (the default),
from a copy of a member's data directory (--etcd-data-dir, of a stopped member) or from a snapshot
(--etcd-snapshot, checked against its .sha256), and writes their bootstrap static pods for one
controller under DIR/recovery/, with DIR/recovery/recovery.json.

Then:
  1. copy DIR/recovery/bootstrap-*.yaml into ` + generator.HostStaticPodDir + ` on that controller;
  2. run liftoff bootstrap --dir DIR: it sees the recovery, waits until the self-hosted control plane
     is Ready anew (what etcd says from before the loss does not count) and removes the bootstrap pods.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := log.New(cmd.ErrOrStderr(), "", 0)
			opts.Logf = logger.Printf
			res, err := recovery.Run(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Rebuilt the bootstrap control plane from %s for controller %s:\n", res.Source, res.Controller)
			for _, f := range res.Files {
				fmt.Fprintf(out, "  %s\n", f)
			}
			fmt.Fprintf(out, "Copy them into %s on %s, then run: liftoff bootstrap --dir %s\n", generator.HostStaticPodDir, res.Controller, filepath.Clean(opts.Dir))
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "the cluster's rendered output directory (its PKI reaches etcd)")
	cmd.Flags().StringVar(&opts.DataDir, "etcd-data-dir", "", "read a copy of this etcd data directory (of a stopped member) instead of the running etcd")
	cmd.Flags().StringVar(&opts.Snapshot, "etcd-snapshot", "", "read this etcd snapshot (with its .sha256 beside it) instead of the running etcd")
	cmd.Flags().StringVar(&opts.Controller, "controller", "", "the controller to run the bootstrap control plane on (default: the first)")
	cmd.MarkFlagRequired("dir")
	return cmd
}

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/generator"
)

func etcdCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Back up, restore and replace the etcd members of a rendered cluster",
		Long: `The etcd commands act on the etcd of the cluster rendered in --dir: its members are the
controllers, reached with the apiservers' etcd client certificate from DIR/pki.`,
	}
	cmd.AddCommand(etcdSnapshotCommand(), etcdRestoreCommand(), etcdReplaceCommand())
	return cmd
}

func etcdSnapshotCommand() *cobra.Command {
	var dir, output string
	var endpoints []string
	cmd := &cobra.Command{
		Use:   "snapshot --dir DIR --output FILE",
		Short: "Save a snapshot of etcd into FILE, with its SHA-256 in FILE.sha256",
		Long: `Snapshot streams a snapshot of etcd's data from the first healthy member (one that answers,
knows a leader and raises no alarm) of the rendered controllers, or of --endpoint, into FILE
(mode 0600), and writes FILE.sha256 in sha256sum's format beside it. Both are written whole or
not at all. liftoff etcd restore and etcdutl snapshot restore read the snapshot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := etcdadmin.Open(dir)
			if err != nil {
				return err
			}
			tlsCfg, err := c.TLS()
			if err != nil {
				return err
			}
			if len(endpoints) == 0 {
				endpoints = c.ClientURLs()
			}
			snap, err := etcdadmin.SaveSnapshot(cmd.Context(), tlsCfg, endpoints, output)
			if err != nil {
				return fmt.Errorf("saving a snapshot to %s: %w", output, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved %s from %s: %s, revision %d, %d keys, in %s\nsha256 %s (in %s)\n",
				snap.Path, snap.Endpoint, byteSize(snap.Size), snap.Revision, snap.Keys, snap.Duration.Round(time.Millisecond),
				snap.SHA256, etcdadmin.HashFile(snap.Path))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the cluster's render output directory")
	cmd.Flags().StringVar(&output, "output", "", "snapshot file to write")
	cmd.Flags().StringSliceVar(&endpoints, "endpoint", nil, "etcd client URL to take the snapshot from, instead of the controllers' (repeatable; the first healthy one is used)")
	cmd.MarkFlagRequired("dir")
	cmd.MarkFlagRequired("output")
	return cmd
}

func etcdRestoreCommand() *cobra.Command {
	var dir, snapshot, member, dataDir string
	cmd := &cobra.Command{
		Use:   "restore --snapshot FILE --dir DIR --member NAME --data-dir DATADIR",
		Short: "Restore an etcd member's data directory from a snapshot, after losing quorum",
		Long: `Restore writes the data directory of etcd member NAME (a controller) from the snapshot FILE,
once FILE matches FILE.sha256 (written by liftoff etcd snapshot): without the hash file, or with a
mismatch, it writes nothing. The members restored from one snapshot form a new cluster with the
rendered controllers as members and the cluster's name as token, so the rendered etcd
configuration starts on them. Revisions move on by ` + fmt.Sprint(etcdadmin.RevisionBump) + ` and older ones count as
compacted, so Kubernetes clients watching from before list again. DATADIR must be empty or
missing.

After losing quorum (most members down for good, or their data lost or damaged):

  1. Stop etcd on every controller: systemctl stop etcd.service (the apiservers fail until step 4).
  2. Move each controller's ` + generator.HostEtcdDataDir + `/member aside; do not delete it yet.
  3. Restore every member from the same snapshot where the render is:
       liftoff etcd restore --snapshot FILE --dir DIR --member NAME --data-dir restored/NAME
     and copy restored/NAME/member to ` + generator.HostEtcdDataDir + `/member on controller NAME
     (owned by root, mode 0700); or run this on the controller with --data-dir ` + generator.HostEtcdDataDir + `
     (of the render it needs only index.json and pki/etcd/*/server.crt, no private key).
  4. Start etcd on every controller: systemctl start etcd.service. The members find each other
     and elect a leader; the cluster holds what the snapshot held.

A single member lost while the others keep quorum needs no restore: see liftoff etcd replace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := etcdadmin.Open(dir)
			if err != nil {
				return err
			}
			r, err := c.Restore(snapshot, member, dataDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s (sha256 %s) into %s as etcd member %s\nmembers %s, token %s\n",
				snapshot, r.SHA256, r.DataDir, r.Member, r.InitialCluster, r.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the cluster's render output directory")
	cmd.Flags().StringVar(&snapshot, "snapshot", "", "snapshot file, with FILE.sha256 beside it")
	cmd.Flags().StringVar(&member, "member", "", "the member (controller) whose data directory to write")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the data directory to write; empty or missing")
	for _, f := range []string{"dir", "snapshot", "member", "data-dir"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func etcdReplaceCommand() *cobra.Command {
	var dir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "replace --dir DIR NAME",
		Short: "Replace etcd member NAME, lost for good, while the others keep quorum",
		Long: `Replace removes etcd member NAME (a controller whose etcd data is lost for good: a dead disk, a
destroyed machine) from the cluster and adds a new member with the same name and peer URL, not
started. The replacement machine then joins the running members: boot it with NAME's address and
Ignition config and an empty ` + generator.HostEtcdDataDir + `; before etcd starts, liftoff-etcd-join sees the
member added and not started, and starts it with initial-cluster-state existing.

Replace refuses while NAME still answers, and when too few other members answer to keep quorum
until the replacement has started; after losing quorum, see liftoff etcd restore. Run again before
the replacement has started, it does nothing and prints the same instructions.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := etcdadmin.Open(dir)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			r, err := c.Replace(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if r.AlreadyAdded {
				fmt.Fprintf(out, "etcd member %s was added already (%x) and has not started yet\n", r.Member.Name, r.AddedID)
			} else {
				if r.RemovedID != 0 {
					fmt.Fprintf(out, "removed etcd member %s (%x)\n", r.Member.Name, r.RemovedID)
				}
				fmt.Fprintf(out, "added etcd member %s (%x) at %s, not started\n", r.Member.Name, r.AddedID, r.Member.PeerURL)
			}
			fmt.Fprintf(out, `the cluster has %d members, %d of the others healthy; %d must answer until %s has started

The replacement machine for %s needs:
  - the address of %s (its etcd peer URL is %s) and its Ignition config, %s
  - an empty etcd data directory %s: a new disk, or, with etcd stopped, %s/member moved away
Its etcd then joins the running members (liftoff-etcd-join starts it with initial-cluster-state
existing). Started any other way, etcd needs:
  initial-cluster-state: existing
  initial-cluster: %s
`, r.Members, r.Healthy, r.Quorum, r.Member.Name, r.Member.Name, r.Member.Name, r.Member.PeerURL,
				filepath.Join(dir, generator.OutIgnitionDir, r.Member.Name+".ign"), generator.HostEtcdDataDir, generator.HostEtcdDataDir, r.InitialCluster)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the cluster's render output directory")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	cmd.MarkFlagRequired("dir")
	return cmd
}

// byteSize is n bytes for people: 1.5 MiB.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

package main

import (
	"log"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/hostagent"
)

func agentCommand() *cobra.Command {
	var kubeconfig, node, dir, hostAPIServer string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Act on a controller's host for the pivot: remove the bootstrap control plane when asked",
		Long: `agent runs on each controller of a self-hosted cluster (manifests/15-liftoff-agent.yaml) with the
kubelet's static pod directory mounted. It watches the ConfigMap kube-system/` + generator.PivotRecord + `; when
` + "`liftoff bootstrap`" + ` asks for the bootstrap control plane's teardown there, it removes the static pods named
` + generator.BootstrapPodPrefix + `*.yaml (and no other file) and answers under its node's key. With
--host-apiserver it first waits until two apiservers answer on the host's address, the bootstrap
one and the self-hosted one that shares its port, so removing the first never leaves the host
without an API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := inClusterOrKubeconfig(kubeconfig)
			if err != nil {
				return err
			}
			cfg.UserAgent = "liftoff-agent"
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			logger := log.New(cmd.ErrOrStderr(), "", log.LstdFlags)
			return hostagent.Run(cmd.Context(), hostagent.Options{Client: client, Config: cfg, Node: node, StaticPodDir: dir,
				HostAPIServer: hostAPIServer, Logf: logger.Printf})
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig to reach the API with (default: the pod's service account)")
	cmd.Flags().StringVar(&node, "node", os.Getenv("NODE_NAME"), "the node this agent runs on (default $NODE_NAME)")
	cmd.Flags().StringVar(&hostAPIServer, "host-apiserver", "", "URL of this host's apiserver address: the bootstrap apiserver is removed only once a second apiserver answers there")
	cmd.Flags().StringVar(&dir, "static-pod-dir", generator.HostStaticPodDir, "the kubelet's static pod directory")
	return cmd
}

func checkpointerCommand() *cobra.Command {
	var opts hostagent.CheckpointOptions
	var kubeconfig, runtimeEndpoint string
	cmd := &cobra.Command{
		Use:   "checkpointer",
		Short: "Keep a self-hosted control plane able to start on this controller without an API",
		Long: `checkpointer runs as a static pod on each controller of a self-hosted cluster, with the kubelet's
credentials, so that it runs whenever the kubelet does. It saves each pod of its node that carries the
annotation ` + generator.CheckpointAnnotation + `=true and is Ready as a checkpoint: a static pod
needing nothing from the API (its secrets and config maps as files readable by root only). When such a
pod is not running on the host and the API cannot be reached, as after a reboot or when the only
apiserver was lost, the checkpoint is placed in the kubelet's static pod directory and runs; once the
pod runs again and is Ready for --grace, the checkpoint is removed from there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := log.New(cmd.ErrOrStderr(), "", log.LstdFlags)
			opts.Logf = logger.Printf
			// The kubelet writes its kubeconfig once it has joined; until then there is nothing to save.
			for {
				if _, err := os.Stat(kubeconfig); err == nil {
					break
				}
				logger.Printf("waiting for %s", kubeconfig)
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(5 * time.Second):
				}
			}
			cfg, err := inClusterOrKubeconfig(kubeconfig)
			if err != nil {
				return err
			}
			cfg.UserAgent = "liftoff-checkpointer"
			if opts.Client, err = kubernetes.NewForConfig(cfg); err != nil {
				return err
			}
			cri, err := hostagent.DialCRI(runtimeEndpoint)
			if err != nil {
				return err
			}
			defer cri.Close()
			opts.Runtime = cri
			return hostagent.RunCheckpointer(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", generator.HostKubeletKubeconfig, "the kubelet's kubeconfig: the checkpointer acts as its node")
	cmd.Flags().StringVar(&opts.Node, "node", os.Getenv("NODE_NAME"), "the node this checkpointer runs on (default $NODE_NAME)")
	cmd.Flags().StringVar(&opts.StaticPodDir, "static-pod-dir", generator.HostStaticPodDir, "the kubelet's static pod directory, where active checkpoints go")
	cmd.Flags().StringVar(&opts.CheckpointDir, "checkpoint-dir", generator.HostCheckpointDir, "where checkpoints are kept")
	cmd.Flags().StringVar(&runtimeEndpoint, "runtime-endpoint", generator.ContainerdSocket, "the container runtime's CRI endpoint")
	cmd.Flags().DurationVar(&opts.Interval, "interval", time.Second, "how often to check")
	cmd.Flags().DurationVar(&opts.Grace, "grace", 30*time.Second, "how long a pod must run Ready before its active checkpoint is removed")
	cmd.Flags().DurationVar(&opts.Orphan, "orphan", 2*time.Minute, "how long a pod may be unknown to the API before its checkpoint is removed")
	return cmd
}

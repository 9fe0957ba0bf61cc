package spec

import (
	"strconv"

	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// What each setting of the spec means, in Markdown, by its name: the one description of the spec,
// from which the Terraform provider's schema documents its arguments. A block's own description is
// its parent's entry for it.

// Docs describes the cluster's settings.
func (Cluster) Docs() map[string]string {
	return map[string]string{
		"name":                   "The cluster's name (a DNS label).",
		"kubernetes_version":     "The Kubernetes release, like `" + versions.Kubernetes + "` (the default). liftoff renders v1.33 to v1.37.",
		"os":                     "`flatcar` (default) or `fcos`.",
		"control_plane":          "`static` (default: static pods on every controller) or `self-hosted`.",
		"api_server":             "The API server's URL, `https://HOST:PORT`.",
		"pod_cidr":               "The pods' address range; each node gets a /24. Default `" + DefaultPodCIDR + "`.",
		"service_cidr":           "The services' address range. Default `" + DefaultServiceCIDR + "`.",
		"host_cidrs":             "Ranges the machines' addresses must be in; none means any address outside the pod and service ranges.",
		"cluster_domain":         "The cluster's DNS domain. Default `" + DefaultClusterDomain + "`.",
		"networking":             "`flannel` (default) or `none` to bring your own CNI.",
		"ssh_authorized_keys":    "OpenSSH public keys for the `core` user on every machine.",
		"allow_even_controllers": "Permit an even number of controllers, which tolerates no more failures than one fewer would.",
		"arch":                   "The machines' CPU architecture: `amd64` (default) or `arm64`.",
		"pki":                    "Key and certificate settings.",
		"images": "Container images of the cluster's components; each defaults to the upstream image of the release. " +
			"A digest (`@sha256:...`) pins an image.",
		"kubelet": "How the kubelet reaches each machine. By default the release binary is downloaded at first boot and " +
			"checked against its published sha512.",
		"etcd": "How etcd reaches each machine. By default the release archive of liftoff's pinned etcd (" + versions.Etcd +
			") is downloaded at first boot and checked against its published SHA256SUMS.",
		"cni_plugins": "How the CNI plugins (bridge, portmap, loopback, ...) reach each machine. Neither OS ships them; " +
			"only `download` delivery applies, by default of liftoff's pinned release checked against its published sha512.",
		"etcd_snapshots": "Snapshots each controller takes of its own etcd member with the installed release's etcdctl, " +
			"on by default: every `" + DefaultEtcdSnapshotInterval + "`, keeping the newest " + strconv.Itoa(DefaultEtcdSnapshotKeep) + ". " +
			"They are `" + EtcdSnapshotDir + "/CLUSTER-MEMBER-TIMESTAMP.db` (UTC, mode 0600), each with a `.sha256` beside it, " +
			"taken by `liftoff-etcd-snapshot.timer`. The bootstrap machine takes none.",
		"etcd_restore": "A snapshot of the cluster's etcd (`liftoff etcd snapshot`'s, or one a controller took) for the " +
			"controllers to restore, as `liftoff etcd restore` does, when the cluster is recovered on new machines: with the PKI " +
			"kept, replacing every controller brings the cluster back with the snapshot's data and the same CA. " +
			"`liftoff-etcd-restore.service` runs before etcd on a controller whose etcd data directory holds no member, downloads " +
			"the snapshot, restores it only if it matches `sha256`, and removes the download; it does not restore a member the " +
			"running members have started or added (a replacement, which joins them instead). Remove it once the cluster is back. " +
			"Workers and the bootstrap machine are unaffected.",
		"machine_secrets": "How machines get their private keys and credentials. By default they are in each machine's Ignition " +
			"config. With `server`, no config holds any: at first boot each machine fetches its own over HTTPS from " +
			"`liftoff bootstrap` (or `liftoff serve-secrets`) at that address, which serves a machine only its own and " +
			"only to its address, and the machine checks the server against the cluster CA. Use it wherever configs are " +
			"served to whoever asks, as matchbox does. Worker pools keep their bootstrap token in their config.",
		"role_config_url": "Where machines fetch their role's shared Ignition config, `" + RoleConfigURLRole + "` standing for " +
			"the role (`controller`, `worker`, `bootstrap`), like `https://configs.example.com/prod/" + RoleConfigURLRole + ".ign`. " +
			"Each machine's config then holds only its own files (about 1 KB for a worker) and merges its role's, which " +
			"Ignition applies only if its sha512 is the one the machine's config names. Serve the render's " +
			"`ignition/roles/ROLE.ign` (Terraform: `role_ignition`) there. Needs `machine_secrets.server`: a role's config " +
			"goes to every machine of the role. matchbox serves the roles' configs itself.",
		"controllers": "Settings every controller gets, merged with each controller's own.",
		"workers":     "Settings every worker gets, merged with each worker's own.",
		"bootstrap": "A separate machine for the pivot of a self-hosted cluster (`control_plane = \"self-hosted\"`; " +
			"not on the `aws` platform): it runs the bootstrap control plane and a temporary etcd member, which the " +
			"controllers' members take the data over from. Without it the first controller runs the bootstrap control " +
			"plane. Its Ignition config is rendered like a controller's. Start the pivot once the machine is up, and " +
			"remove the machine once the pivot is complete; keep this setting then: the controllers' configs name the machine. " +
			"Role defaults' labels and taints do not apply to it; `controllers`' snippets do.",
		"controller": "The controllers, by machine name (the node name and hostname).",
		"worker":     "The workers, by machine name (the node name and hostname).",
		"worker_pool": "Groups of identical workers that are not known one by one (autoscaling groups), by pool name. " +
			"A pool has one Ignition config; each of its machines takes its name and address at boot.",
		"platform": "Where the cluster runs: exactly one platform's settings. The platform's files (matchbox groups and " +
			"profiles, EC2 user data, a Vagrantfile, libvirt domains) are rendered beside the machines' configs.",
	}
}

// Docs describes the PKI settings.
func (PKI) Docs() map[string]string {
	return map[string]string{
		"key_algorithm": "`ecdsa-p256` (default), `ecdsa-p384`, `rsa-2048`, `rsa-3072` or `rsa-4096`. " +
			"Changing it re-keys leaf certificates; a CA keeps its key.",
		"ca_validity":   "How long a new CA is valid, like `87600h` or `3650d` (default 10 years).",
		"cert_validity": "How long a leaf certificate is valid (default `" + DefaultCertValidity + "`).",
		"renew_before": "The renewal window, like `720h` or `30d` (default `" + DefaultRenewBefore + "`). " +
			"Every certificate that expires within it is reported, and the next render re-issues those leaf " +
			"certificates with the same CA. CAs are never replaced: see the CA rotation guide.",
		"extra_sans": "DNS names or IPs added to the API server's serving certificate.",
		"bootstrap_token_ttl": "How long the bootstrap token of a machine known one by one (a controller, a worker, " +
			"the bootstrap machine) may be used to join, from the render that created it (default `" + DefaultBootstrapTokenTTL + "`). " +
			"A worker pool's token does not expire; rotating it replaces it.",
	}
}

// Docs describes the images.
func (Images) Docs() map[string]string {
	return map[string]string{
		"kube_apiserver":          "kube-apiserver.",
		"kube_controller_manager": "kube-controller-manager.",
		"kube_scheduler":          "kube-scheduler.",
		"kube_proxy":              "kube-proxy.",
		"coredns":                 "CoreDNS.",
		"flannel":                 "flannel.",
		"flannel_cni_plugin":      "flannel's CNI plugin.",
		"pause":                   "The pod sandbox image.",
		"liftoff":                 "liftoff's own image (checkpointer, bootstrap helpers).",
	}
}

// Docs describes a host program's settings.
func (Program) Docs() map[string]string {
	return map[string]string{
		"delivery": "`download` (default), `container` or `sysext`.",
		"version":  "The release to run.",
		"url":      "Overrides the download or sysext location; `{version}` and `{arch}` are replaced.",
		"sha512":   "Pins the downloaded file (128 hex digits). Required for `sysext`.",
		"image":    "The container image for `container` delivery, pinned by digest (`name@sha256:...`).",
	}
}

// Docs describes the snapshot settings.
func (EtcdSnapshots) Docs() map[string]string {
	return map[string]string{
		"enabled":  "`false` takes no snapshots (default `true`).",
		"interval": "The time between snapshots, like `30m`, `1h` (the default) or `1d`; at least `5m`.",
		"keep": "How many snapshots each controller keeps, the newest; older ones are deleted once a new one is taken " +
			"(default " + strconv.Itoa(DefaultEtcdSnapshotKeep) + ").",
	}
}

// Docs describes how machines get their secrets.
func (MachineSecrets) Docs() map[string]string {
	return map[string]string{
		"server":      "`HOST:PORT` where `liftoff bootstrap` serves the secrets and the machines reach it.",
		"in_ignition": "Keep the secrets in the Ignition configs on a platform that would otherwise require `server`.",
	}
}

// Docs describes the snapshot to restore.
func (EtcdRestore) Docs() map[string]string {
	return map[string]string{
		"url":    "The snapshot's `https` URL.",
		"sha256": "The snapshot's SHA-256: 64 lowercase hex digits, as its `.sha256` file holds them.",
	}
}

// Docs describes a role's defaults.
func (RoleDefaults) Docs() map[string]string {
	return map[string]string{
		"labels":   "Node labels.",
		"taints":   "Node taints as `key=value:Effect` or `key:Effect`.",
		"snippets": "Butane configs merged into the Ignition config of every machine of the role.",
	}
}

// Docs describes a machine's settings.
func (Node) Docs() map[string]string {
	return map[string]string{
		"name": "The machine's name (the node name and hostname).",
		"ip":   "The machine's IPv4 address.",
		"mac":  "The MAC address of the machine's boot interface, like `52:54:00:a1:9c:ae` (platforms match machines by it).",
		"domain": "The machine's DNS name; on a controller or the bootstrap machine it is added to the API server and " +
			"etcd certificates.",
		"labels": "Node labels, added to the role's `labels`.",
		"taints": "Node taints as `key=value:Effect` or `key:Effect`, added to the role's `taints`.",
		"snippets": "Butane configs (same variant as `os`) merged into this machine's Ignition config. " +
			"A snippet that Butane would accept only with a warning is refused, naming the snippet's line.",
		"install_disk": "The disk the OS is installed to on bare metal.",
	}
}

// Docs describes a worker pool's settings.
func (WorkerPool) Docs() map[string]string {
	return map[string]string{
		"size":     "How many machines the pool usually runs.",
		"max_size": "The most machines it may grow to (default `size`); the pod CIDR must have room for them.",
		"labels":   "Node labels, added to the workers' role defaults.",
		"taints":   "Node taints, added to the workers' role defaults.",
		"snippets": "Butane configs merged into the pool's Ignition config.",
	}
}

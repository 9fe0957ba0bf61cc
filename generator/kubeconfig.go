package generator

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/liftoff-k8s/liftoff/generator/pki"
)

// kubeconfig renders a kubeconfig for one user of the cluster at server. Exactly one of kp (a client
// certificate) or token is set.
func kubeconfig(clusterName, server string, caPEM []byte, user string, kp *pki.KeyPair, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	auth := &clientcmdapi.AuthInfo{Token: token}
	if kp != nil {
		keyPEM, err := pki.EncodeKey(kp.Key)
		if err != nil {
			return nil, err
		}
		auth.ClientCertificateData = pki.EncodeCert(kp.Cert)
		auth.ClientKeyData = keyPEM
	}
	cfg.AuthInfos[user] = auth
	ctx := user + "@" + clusterName
	cfg.Contexts[ctx] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user}
	cfg.CurrentContext = ctx
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", user, err)
	}
	return out, nil
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Short-lived certificates: the lab lives for a test run or a working day.
const (
	certLifetime = 72 * time.Hour
	certRenewAt  = 12 * time.Hour // reissue everything when the CA has less left
)

// certSpec is one certificate the lab issues from its CA.
type certSpec struct {
	File   string // base name under pki/: <File>.crt and <File>.key
	CN     string
	Orgs   []string
	DNS    []string
	IPs    []net.IP
	Server bool
}

func (l *lab) certSpecs() []certSpec {
	specs := []certSpec{
		{File: "apiserver", CN: "kube-apiserver", Server: true,
			DNS: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			IPs: []net.IP{net.ParseIP("127.0.0.1"), kubeAPIIP.AsSlice(), nodes[0].IP.AsSlice()}},
		{File: "apiserver-kubelet-client", CN: "kube-apiserver-kubelet-client", Orgs: []string{"system:masters"}},
		{File: "admin", CN: "netsleuth-lab-admin", Orgs: []string{"system:masters"}},
		{File: "controller-manager", CN: "system:kube-controller-manager"},
		{File: "scheduler", CN: "system:kube-scheduler"},
		{File: "kube-proxy", CN: "system:kube-proxy", Orgs: []string{"system:node-proxier"}},
	}
	for _, n := range nodes {
		specs = append(specs,
			certSpec{File: "kubelet-" + n.Name, CN: "system:node:" + n.Name, Orgs: []string{"system:nodes"}},
			certSpec{File: "kubelet-serving-" + n.Name, CN: n.Name, Server: true, DNS: []string{n.Name}, IPs: []net.IP{n.IP.AsSlice()}})
	}
	return specs
}

// ensurePKI creates the CA, every certificate and the service-account key,
// reusing them while the CA has more than certRenewAt left.
func (l *lab) ensurePKI() error {
	dir := l.p.PKI("")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, caKey, err := loadPair(l.p.PKI("ca"))
	if err == nil && time.Until(ca.NotAfter) > certRenewAt {
		return nil
	}
	step("issuing the lab PKI (certificates valid %s)", certLifetime)
	ca, caKey, err = newCA()
	if err != nil {
		return err
	}
	if err := writePair(l.p.PKI("ca"), ca.Raw, caKey); err != nil {
		return err
	}
	for _, s := range l.certSpecs() {
		der, key, err := issue(s, ca, caKey)
		if err != nil {
			return fmt.Errorf("issue %s: %w", s.File, err)
		}
		if err := writePair(l.p.PKI(s.File), der, key); err != nil {
			return err
		}
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	return writeKey(l.p.PKI("sa"), saKey, true)
}

func newCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "netsleuth-lab-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

func issue(s certSpec, ca *x509.Certificate, caKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if s.Server {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.CN, Organization: s.Orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     ca.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
		DNSNames:     s.DNS,
		IPAddresses:  s.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return der, key, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func writePair(base string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.WriteFile(base+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return writeKey(base, key, false)
}

func writeKey(base string, key *ecdsa.PrivateKey, withPub bool) error {
	b, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b}), 0o600); err != nil {
		return err
	}
	if !withPub {
		return nil
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(base+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func loadPair(base string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(base + ".crt")
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(base + ".key")
	if err != nil {
		return nil, nil, err
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, nil, errors.New("bad PEM in " + filepath.Base(base))
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kp.Bytes)
	return cert, key, err
}

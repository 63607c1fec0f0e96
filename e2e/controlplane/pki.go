package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pki holds the files the apiserver is started with and what clients need to trust it.
type pki struct {
	caCertPEM    []byte
	servingCert  string // path of the serving certificate (PEM)
	servingKey   string // path of its key
	saPublicKey  string // path of the service-account verification key
	saSigningKey string // path of the service-account signing key
	tokenFile    string // path of the static token file
	tokensByUser map[string]string
	issuer       string // the --service-account-issuer
}

// writePKI generates, in dir, a CA and a serving certificate valid for hosts, an ECDSA key
// pair for service-account tokens, and a static token file for users. ECDSA P-256 keys take
// a millisecond to generate where RSA keys would take most of the start-up budget.
func writePKI(dir string, hosts []netip.Addr, dnsNames []string, users []User) (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("controlplane: generate CA key: %w", err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald-e2e-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("controlplane: create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("controlplane: parse CA certificate: %w", err)
	}

	servingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("controlplane: generate serving key: %w", err)
	}
	servingTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
	}
	for _, h := range hosts {
		servingTemplate.IPAddresses = append(servingTemplate.IPAddresses, net.IP(h.AsSlice()))
	}
	servingDER, err := x509.CreateCertificate(rand.Reader, servingTemplate, caCert, &servingKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("controlplane: create serving certificate: %w", err)
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("controlplane: generate service-account key: %w", err)
	}

	p := &pki{
		caCertPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		servingCert:  filepath.Join(dir, "apiserver.crt"),
		servingKey:   filepath.Join(dir, "apiserver.key"),
		saPublicKey:  filepath.Join(dir, "sa.pub"),
		saSigningKey: filepath.Join(dir, "sa.key"),
		tokenFile:    filepath.Join(dir, "tokens.csv"),
		tokensByUser: make(map[string]string, len(users)),
		issuer:       "https://kubernetes.default.svc.cluster.local",
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), p.caCertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("controlplane: write CA certificate: %w", err)
	}
	if err := os.WriteFile(p.servingCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: servingDER}), 0o644); err != nil {
		return nil, fmt.Errorf("controlplane: write serving certificate: %w", err)
	}
	if err := writeECKey(p.servingKey, servingKey); err != nil {
		return nil, err
	}
	if err := writeECKey(p.saSigningKey, saKey); err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("controlplane: marshal service-account public key: %w", err)
	}
	if err := os.WriteFile(p.saPublicKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o644); err != nil {
		return nil, fmt.Errorf("controlplane: write service-account public key: %w", err)
	}

	// The static token file is CSV: token,user,uid,"group1,group2".
	var tokens strings.Builder
	for _, u := range users {
		token, err := randomToken()
		if err != nil {
			return nil, err
		}
		p.tokensByUser[u.Name] = token
		fmt.Fprintf(&tokens, "%s,%s,%s", token, u.Name, "uid-"+u.Name)
		if len(u.Groups) > 0 {
			fmt.Fprintf(&tokens, ",%q", strings.Join(u.Groups, ","))
		}
		tokens.WriteByte('\n')
	}
	if err := os.WriteFile(p.tokenFile, []byte(tokens.String()), 0o600); err != nil {
		return nil, fmt.Errorf("controlplane: write token file: %w", err)
	}
	return p, nil
}

func writeECKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("controlplane: marshal key %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("controlplane: write key %s: %w", filepath.Base(path), err)
	}
	return nil
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("controlplane: generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

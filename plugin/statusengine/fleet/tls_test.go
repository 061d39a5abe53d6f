package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/natstest"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir, and returns their paths and a pool that trusts it.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestFeedTLS: against a NATS server that requires TLS, a feed that trusts
// its certificate (the tls property's CA) publishes; one that trusts only
// the system's roots does not, and keeps its record in the outbox.
func TestFeedTLS(t *testing.T) {
	certFile, keyFile, pool := writeCert(t, t.TempDir())
	ns := natstest.Start(t, "--tls", "--tlscert", certFile, "--tlskey", keyFile)
	for _, c := range []struct {
		name      string
		tls       *tls.Config
		published bool
	}{
		{"its CA", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, true},
		{"system roots", &tls.Config{MinVersion: tls.VersionTLS12}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := openStore(t)
			f, err := Start(Config{URLs: []string{strings.Replace(ns.URL(), "nats://", "tls://", 1)}, Name: "ns1",
				Stream: DefaultStream, Replicas: 1, MaxAge: time.Hour, Zones: []string{testZone}, TLS: c.tls}, a)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Stop()
			a.Submit(newRecord(t, 1, time.Now()))
			n := waitOutbox(f, 5*time.Second)
			if published := n == 0; published != c.published {
				t.Errorf("%d records waiting after 5 s; want published %v", n, c.published)
			}
		})
	}
}

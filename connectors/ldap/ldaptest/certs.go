package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throw-away certificate authority and one server certificate signed by it, written
// as PEM files into a directory.
type PKI struct {
	// CAFile is the CA certificate; CertFile and KeyFile are the server's certificate and key.
	CAFile, CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate signed by the same CA.
	ClientCertFile, ClientKeyFile string
}

// NewPKI creates a CA named name in dir and a server certificate for hosts (DNS names or IP
// addresses). The key files are mode 0600, as Samba demands.
func NewPKI(dir, name string, hosts ...string) (*PKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: ca key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: parse ca: %w", err)
	}
	p := &PKI{
		CAFile:         filepath.Join(dir, name+"-ca.pem"),
		CertFile:       filepath.Join(dir, name+"-server.pem"),
		KeyFile:        filepath.Join(dir, name+"-server.key"),
		ClientCertFile: filepath.Join(dir, name+"-client.pem"),
		ClientKeyFile:  filepath.Join(dir, name+"-client.key"),
	}
	if err := writePEM(p.CAFile, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("ldaptest: key: %w", err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			for _, h := range hosts {
				if ip := net.ParseIP(h); ip != nil {
					tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				} else {
					tmpl.DNSNames = append(tmpl.DNSNames, h)
				}
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("ldaptest: certificate %s: %w", cn, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("ldaptest: marshal key: %w", err)
		}
		if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		return writePEM(keyFile, "PRIVATE KEY", keyDER, 0o600)
	}
	if err := leaf(2, hosts[0], x509.ExtKeyUsageServerAuth, p.CertFile, p.KeyFile); err != nil {
		return nil, err
	}
	if err := leaf(3, "scimbridge client", x509.ExtKeyUsageClientAuth, p.ClientCertFile, p.ClientKeyFile); err != nil {
		return nil, err
	}
	return p, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("ldaptest: write %s: %w", path, err)
	}
	return nil
}

// SambaSerial is the serial number of the certificates NewSambaStylePKI makes: the one a Samba
// 4.17 DC gave its self-generated certificates on this project's machine (Samba writes a 32-bit
// time as the serial, so about half of its certificates get a negative one).
const SambaSerial = -0x548df095

// NewSambaStylePKI writes into dir certificates shaped like the ones a Samba AD DC generates for
// itself when smb.conf names none (private/tls/ca.pem, cert.pem and key.pem): a CA and a server
// certificate signed by it, both with the negative serial SambaSerial, and the host named only
// in the common name (no subject alternative names). Go's crypto/x509 will not make such
// certificates, so they are made with a positive serial, which is then replaced and signed again.
func NewSambaStylePKI(dir, host string) (*PKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: ca key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: key: %w", err)
	}
	now := time.Now()
	org := []string{"Samba Administration"}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: org, OrganizationalUnit: []string{"Samba - temporary autogenerated CA certificate"}, CommonName: host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: parse ca: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{Organization: org, OrganizationalUnit: []string{"Samba - temporary autogenerated HOST certificate"}, CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: server certificate: %w", err)
	}
	serial := big.NewInt(SambaSerial)
	if caDER, err = withSerial(caDER, serial, caKey); err != nil {
		return nil, err
	}
	if der, err = withSerial(der, serial, caKey); err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: marshal key: %w", err)
	}
	p := &PKI{
		CAFile:   filepath.Join(dir, "samba-style-ca.pem"),
		CertFile: filepath.Join(dir, "samba-style-cert.pem"),
		KeyFile:  filepath.Join(dir, "samba-style-key.pem"),
	}
	if err := writePEM(p.CAFile, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	if err := writePEM(p.CertFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return p, writePEM(p.KeyFile, "PRIVATE KEY", keyDER, 0o600)
}

// withSerial replaces the serial number of a DER certificate and signs it again (ECDSA with
// SHA-256, the algorithm it was made with) with signer.
func withSerial(der []byte, serial *big.Int, signer *ecdsa.PrivateKey) ([]byte, error) {
	var cert struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		return nil, fmt.Errorf("ldaptest: decode certificate: %w", err)
	}
	var tbs []asn1.RawValue // version, serialNumber, signature, issuer, validity, subject, ...
	if _, err := asn1.Unmarshal(cert.TBS.FullBytes, &tbs); err != nil || len(tbs) < 2 {
		return nil, fmt.Errorf("ldaptest: decode tbsCertificate: %v", err)
	}
	s, err := asn1.Marshal(serial)
	if err != nil {
		return nil, err
	}
	tbs[1] = asn1.RawValue{FullBytes: s}
	newTBS, err := asn1.Marshal(tbs)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(newTBS)
	sig, err := ecdsa.SignASN1(rand.Reader, signer, sum[:])
	if err != nil {
		return nil, err
	}
	cert.TBS = asn1.RawValue{FullBytes: newTBS}
	cert.Signature = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	return asn1.Marshal(cert)
}

package psc

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Loaders for the files the configuration names (client_certificate_file,
// client_key_file, ca_file, userinfo_decryption_key_file), so that wiring
// is one call each. Errors name the file, never its content.

// LoadClientCertificate reads a PEM certificate chain and its key.
func LoadClientCertificate(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("psc: client certificate %s / %s: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

// LoadRootCAs reads PEM certificates to verify PSC with.
func LoadRootCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("psc: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("psc: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// LoadPrivateKey reads a PEM private key (PKCS #8, PKCS #1 or SEC 1), e.g.
// the userinfo decryption key.
func LoadPrivateKey(file string) (crypto.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("psc: private key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("psc: private key file %s holds no PEM block", file)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("psc: private key file " + file + " is not a PKCS #8, PKCS #1 or EC private key")
}

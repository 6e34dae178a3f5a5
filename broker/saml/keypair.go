package saml

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/garde-sso/garde/broker/keys"
	"github.com/garde-sso/garde/broker/store"
)

// keyPairKID is the row of the generated IdP key pair in the signing-key
// store.
const keyPairKID = "saml-idp-1"

// keyPairLifetime is the generated certificate's validity. SAML SPs use
// the certificate as a key container; a long validity spares hospitals a
// metadata update every year. Rotation is by configuring files.
const keyPairLifetime = 10 * 365 * 24 * time.Hour

// LoadKeyPair reads the IdP key pair from PEM files.
func LoadKeyPair(certFile, keyFile string) (*rsa.PrivateKey, *x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("saml key pair: %w", err)
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("saml key pair: the key must be RSA (RSA-SHA256 is what every SP verifies)")
	}
	if key.N.BitLen() < 2048 {
		return nil, nil, fmt.Errorf("saml key pair: %d-bit RSA key is too short; expected at least 2048 bits", key.N.BitLen())
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("saml key pair: %w", err)
	}
	return key, cert, nil
}

type sealedPair struct {
	Key  []byte `json:"key"`  // PKCS#8
	Cert []byte `json:"cert"` // DER
}

// LoadOrCreateKeyPair returns the IdP key pair kept sealed in the durable
// store, generating it on first start. Replicas starting together race on
// the insert; the loser reads the winner's pair, so all sign with one key.
func LoadOrCreateKeyPair(ctx context.Context, st store.SigningKeys, master []byte, entityID string, now time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	for range 2 {
		recs, err := st.ListSigningKeys(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("saml key pair: %w", err)
		}
		for _, r := range recs {
			if r.KID == keyPairKID && r.Alg == keys.AlgSAMLIdP {
				return openPair(master, r)
			}
		}
		rec, err := newPair(master, entityID, now)
		if err != nil {
			return nil, nil, err
		}
		err = st.InsertSigningKey(ctx, rec)
		if err == nil {
			return openPair(master, rec)
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, nil, fmt.Errorf("saml key pair: %w", err)
		}
	}
	return nil, nil, errors.New("saml key pair: could not create or read it")
}

func newPair(master []byte, entityID string, now time.Time) (store.SigningKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return store.SigningKey{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Garde SAML IdP", Organization: []string{entityID}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(keyPairLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return store.SigningKey{}, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return store.SigningKey{}, err
	}
	b, _ := json.Marshal(sealedPair{Key: pk, Cert: der})
	sealed, err := keys.Seal(master, keyPairKID, keys.AlgSAMLIdP, b)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{KID: keyPairKID, Alg: keys.AlgSAMLIdP, Generation: 1, Sealed: sealed, CreatedAt: now.UTC()}, nil
}

func openPair(master []byte, r store.SigningKey) (*rsa.PrivateKey, *x509.Certificate, error) {
	b, err := keys.Open(master, r.KID, r.Alg, r.Sealed)
	if err != nil {
		return nil, nil, fmt.Errorf("saml key pair: %w", err)
	}
	var sp sealedPair
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, nil, fmt.Errorf("saml key pair: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(sp.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("saml key pair: %w", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("saml key pair: not an RSA key")
	}
	cert, err := x509.ParseCertificate(sp.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("saml key pair: %w", err)
	}
	return key, cert, nil
}

package keys

// AlgSAMLIdP marks the SAML identity provider's key pair in the signing
// key store: it is not a JWS key, so the Manager neither publishes nor
// rotates it (broker/saml keeps it).
const AlgSAMLIdP = "SAML-IDP"

// Seal encrypts a key blob under the master key, bound to (kid, alg) as
// the signing keys are: a sealed blob copied to another row does not open.
func Seal(master []byte, kid, alg string, plaintext []byte) ([]byte, error) {
	aead, err := sealingKey(master)
	if err != nil {
		return nil, err
	}
	return seal(aead, plaintext, kid, alg), nil
}

// Open decrypts what Seal sealed; ErrWrongMasterKey if the master key (or
// the row) is not the one it was sealed with.
func Open(master []byte, kid, alg string, sealed []byte) ([]byte, error) {
	aead, err := sealingKey(master)
	if err != nil {
		return nil, err
	}
	return open(aead, sealed, kid, alg)
}
